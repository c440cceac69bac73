import type { IncomingMessage, Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { request } from 'undici'

export interface RunningApp {
  /** Origin of the host app, e.g. `http://127.0.0.1:41234`. */
  url: string
  close(): Promise<void>
}

export function serverUrl(server: Server): string {
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`
}

export function closeServer(server: Server): Promise<void> {
  server.closeAllConnections()
  return new Promise((resolve) => server.close(() => resolve()))
}

/**
 * Reads a request's body to its end and keeps it to itself, as a host's request logger might: the stream
 * is spent, and neither `req.body` nor `req.rawBody` holds what it carried.
 */
export function readWhole(req: IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = []
    req.on('data', (chunk: Buffer) => chunks.push(chunk))
    req.once('end', () => resolve(Buffer.concat(chunks)))
    req.once('error', reject)
  })
}

/** Sends a JSON body (or a raw string) and returns status, headers and the whole body as text. */
export async function send(
  url: string,
  init: { method?: string; body?: unknown; headers?: Record<string, string> } = {},
): Promise<{ status: number; headers: Record<string, string>; text: string; json: () => unknown }> {
  const body =
    init.body === undefined || typeof init.body === 'string' || init.body instanceof Uint8Array
      ? init.body
      : JSON.stringify(init.body)
  const response = await request(url, {
    method: (init.method ?? (body === undefined ? 'GET' : 'POST')) as 'GET',
    headers: { ...(body === undefined ? {} : { 'content-type': 'application/json' }), ...init.headers },
    body: body ?? null,
  })
  const text = await response.body.text()
  const headers: Record<string, string> = {}
  for (const [name, value] of Object.entries(response.headers)) {
    if (value !== undefined) headers[name] = Array.isArray(value) ? value.join(', ') : value
  }
  return { status: response.statusCode, headers, text, json: () => JSON.parse(text) }
}
