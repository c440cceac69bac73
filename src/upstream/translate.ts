import { Readable } from 'node:stream'
import { GatewayError } from '../errors.js'
import { parseJson } from '../json.js'
import type { EmbeddingsResponse, OpenAIErrorBody } from '../providers/dialects/openai-types.js'
import { terminalEvent } from '../providers/dialects/terminal.js'
import type { StreamTranslator } from '../providers/dialects/types.js'
import type { Translation } from '../target.js'
import type { GatewayResponse } from '../types.js'
import type { BodyEnd } from './body.js'
import { SSEParser } from './sse.js'
import { wrappedBody } from './wrapped-body.js'

/** A non-streamed provider answer is read whole for translation, up to this size. */
const MAX_TRANSLATED_BODY_BYTES = 25 * 1024 * 1024

const SSE_HEADERS = {
  'content-type': 'text/event-stream; charset=utf-8',
  'cache-control': 'no-cache, no-transform',
  'x-accel-buffering': 'no',
}

/**
 * Turns a provider's answer into the OpenAI shape the compat client asked for: errors into OpenAI error
 * bodies with the provider's status, JSON into `chat.completion` / embeddings, and streams into
 * `chat.completion.chunk` events that end in `[DONE]` only when the provider's stream really finished.
 */
export async function translateResponse(
  response: GatewayResponse,
  translation: Translation,
  requestId: string,
): Promise<GatewayResponse> {
  const { codec } = translation
  const created = Math.floor(Date.now() / 1000)
  const id = `chatcmpl-${requestId.replaceAll('-', '')}`
  if (response.status >= 400) {
    const json = parseJson(await readWhole(response))
    return jsonResponse(response.status, codec.fromProviderError(response.status, json))
  }
  if (translation.stream && response.body instanceof Readable) {
    const translator = codec.streamTranslator({
      id,
      created,
      model: translation.model,
      includeUsage: translation.includeUsage,
    })
    let outcome: BodyEnd | undefined
    const body = wrappedBody(
      translateEvents(response.body, translator, (end) => {
        outcome = end
      }),
      response.body,
    )
    return { status: 200, headers: { ...SSE_HEADERS }, body, outcome: () => outcome }
  }
  const json = parseJson(await readWhole(response))
  if (json === undefined)
    throw new GatewayError('INVALID_PROVIDER_RESPONSE', 'the provider did not answer with JSON')
  if (translation.operation === 'embeddings' && codec.embeddings) {
    const embeddings = codec.embeddings.fromProviderResponse(json, translation.model)
    return jsonResponse(200, translation.base64Embeddings ? toBase64Embeddings(embeddings) : embeddings)
  }
  return jsonResponse(200, codec.fromProviderResponse(json, { id, created, model: translation.model }))
}

/**
 * Re-frames the provider's events as OpenAI chunks. What one upstream read carried goes out as one write:
 * those events arrived together, so joining them delays nothing and saves a write per event. A failed
 * provider stream ends in the OpenAI terminal error event, never `[DONE]`; a client that stopped reading
 * gets nothing more (the error ends the stream, which cuts its connection).
 */
async function* translateEvents(
  upstream: Readable,
  translator: StreamTranslator,
  settle: (end: BodyEnd) => void,
): AsyncGenerator<string> {
  const parser = new SSEParser()
  const send = (chunk: unknown) => `data: ${JSON.stringify(chunk)}\n\n`
  const fail = (error: GatewayError) => {
    settle({ complete: false, error })
    return terminalEvent('openai', error) ?? ''
  }
  try {
    for await (const bytes of upstream) {
      let out = ''
      for (const event of parser.push(bytes as Buffer)) {
        const { chunks, error } = translator.push(event)
        for (const chunk of chunks) out += send(chunk)
        if (error !== undefined) {
          settle({ complete: false, error: new GatewayError('UPSTREAM_INTERRUPTED', error.message) })
          yield out + send({ error } satisfies OpenAIErrorBody)
          return
        }
      }
      if (out !== '') yield out
    }
    let out = ''
    for (const event of parser.end()) for (const chunk of translator.push(event).chunks) out += send(chunk)
    if (out !== '') yield out
  } catch (error) {
    const failure = error instanceof GatewayError ? error : new GatewayError('UPSTREAM_INTERRUPTED')
    if (failure.key === 'CLIENT_CLOSED') {
      settle({ complete: false, error: failure })
      throw failure
    }
    yield fail(failure)
    return
  }
  if (!translator.complete) {
    yield fail(new GatewayError('UPSTREAM_INTERRUPTED', 'the stream ended before its last event'))
    return
  }
  let tail = ''
  for (const chunk of translator.finish()) tail += send(chunk)
  settle({ complete: true })
  yield `${tail}data: [DONE]\n\n`
}

async function readWhole(response: GatewayResponse): Promise<string> {
  const { body } = response
  if (body === null) return ''
  if (!(body instanceof Readable)) return typeof body === 'string' ? body : Buffer.from(body).toString('utf8')
  const chunks: Buffer[] = []
  let size = 0
  for await (const chunk of body) {
    size += (chunk as Buffer).length
    if (size > MAX_TRANSLATED_BODY_BYTES) {
      body.destroy()
      throw new GatewayError(
        'INVALID_PROVIDER_RESPONSE',
        `the answer exceeded ${MAX_TRANSLATED_BODY_BYTES} bytes`,
      )
    }
    chunks.push(chunk as Buffer)
  }
  return Buffer.concat(chunks).toString('utf8')
}

/** OpenAI's base64 embeddings: each vector as little-endian float32 bytes, base64-encoded. */
function toBase64Embeddings(response: EmbeddingsResponse): unknown {
  return {
    ...response,
    data: response.data.map((item) => ({
      ...item,
      embedding: Buffer.from(new Float32Array(item.embedding).buffer).toString('base64'),
    })),
  }
}

function jsonResponse(status: number, value: unknown): GatewayResponse {
  const body = JSON.stringify(value)
  return {
    status,
    headers: { 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(body)) },
    body,
  }
}
