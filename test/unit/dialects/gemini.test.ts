import { describe, expect, it } from 'vitest'
import { GatewayError } from '../../../src/errors.js'
import { checkModel, geminiCodec } from '../../../src/providers/dialects/gemini.js'
import { toGeminiSchema } from '../../../src/providers/dialects/gemini-tools.js'
import type {
  ChatCompletion,
  ChatCompletionChunk,
  ChatRequest,
  EmbeddingsRequest,
  FinishReason,
  ToolCall,
  Usage,
} from '../../../src/providers/dialects/openai-types.js'
import type { StreamOptions } from '../../../src/providers/dialects/types.js'
import * as fx from './fixtures/gemini.js'

const MODEL = 'gemini-2.5-flash'
const GENERATE = `/v1beta/models/${MODEL}:generateContent`
const STREAM = `/v1beta/models/${MODEL}:streamGenerateContent?alt=sse`
const UNSUPPORTED = 'Request cannot be translated for this provider: '
const INVALID = 'Invalid request body: '
const UNREADABLE = 'Provider response could not be read: '

/** Requests arrive as parsed JSON, so tables may hold shapes the types would not allow. */
function chat(fields: Record<string, unknown>): ChatRequest {
  return { model: MODEL, ...fields } as ChatRequest
}

function embed(fields: Record<string, unknown>): EmbeddingsRequest {
  return { model: 'gemini-embedding-001', ...fields } as EmbeddingsRequest
}

function thrown(run: () => unknown): { key: string; message: string } {
  try {
    run()
  } catch (error) {
    if (error instanceof GatewayError) return { key: error.key, message: error.message }
    throw error
  }
  throw new Error('expected a GatewayError')
}

const user = (content: unknown) => ({ role: 'user', content })
const call = (id: string, name: string, args: string) => ({
  id,
  type: 'function',
  function: { name, arguments: args },
})
const weatherTool = {
  type: 'function',
  function: {
    name: 'get_weather',
    description: 'Current weather',
    parameters: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] },
  },
}
const weatherDeclaration = {
  name: 'get_weather',
  description: 'Current weather',
  parameters: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] },
}

describe('gemini requests', () => {
  it.each<[string, ChatRequest, { path: string; body: unknown }]>([
    [
      'a single user message',
      chat({ messages: [user('Hi')] }),
      { path: GENERATE, body: { contents: [{ role: 'user', parts: [{ text: 'Hi' }] }] } },
    ],
    [
      'system and developer messages, streaming and sampling settings',
      chat({
        stream: true,
        stream_options: { include_usage: true },
        messages: [
          { role: 'system', content: 'Be brief.' },
          user('Capital of France?'),
          { role: 'developer', content: [{ type: 'text', text: 'Answer in French.' }] },
        ],
        temperature: 0.2,
        top_p: 0.9,
        max_tokens: 256,
        stop: 'END',
        seed: 7,
        presence_penalty: 0.5,
        frequency_penalty: -0.5,
      }),
      {
        path: STREAM,
        body: {
          contents: [{ role: 'user', parts: [{ text: 'Capital of France?' }] }],
          systemInstruction: { parts: [{ text: 'Be brief.' }, { text: 'Answer in French.' }] },
          generationConfig: {
            temperature: 0.2,
            topP: 0.9,
            maxOutputTokens: 256,
            stopSequences: ['END'],
            seed: 7,
            presencePenalty: 0.5,
            frequencyPenalty: -0.5,
          },
        },
      },
    ],
    [
      'text and data-URL images',
      chat({
        messages: [
          user([
            { type: 'text', text: 'What is in these?' },
            { type: 'image_url', image_url: { url: 'data:image/png;base64,iVBORw0KGgo=', detail: 'auto' } },
            { type: 'image_url', image_url: { url: 'data:image/jpeg;name=cat.jpg;base64,/9j/4AAQ' } },
            // `image/jpg` is how many clients name JPEG, and OpenAI takes it; Gemini knows `image/jpeg`.
            { type: 'image_url', image_url: { url: 'data:image/jpg;base64,/9j/4AAR' } },
          ]),
        ],
      }),
      {
        path: GENERATE,
        body: {
          contents: [
            {
              role: 'user',
              parts: [
                { text: 'What is in these?' },
                { inlineData: { mimeType: 'image/png', data: 'iVBORw0KGgo=' } },
                { inlineData: { mimeType: 'image/jpeg', data: '/9j/4AAQ' } },
                { inlineData: { mimeType: 'image/jpeg', data: '/9j/4AAR' } },
              ],
            },
          ],
        },
      },
    ],
    [
      'a tool round trip: calls, results by name, merged turns, cleaned schemas',
      chat({
        messages: [
          user('Weather and time in Paris?'),
          {
            role: 'assistant',
            content: null,
            tool_calls: [
              call('call_a', 'get_weather', '{"city":"Paris"}'),
              call('call_b', 'get_time', '{"timezone":"Europe/Paris"}'),
            ],
          },
          { role: 'tool', tool_call_id: 'call_a', content: '{"temp_c":18,"sky":"clear"}' },
          { role: 'tool', tool_call_id: 'call_b', content: '14:05' },
          user('Thanks! And tomorrow?'),
        ],
        tools: [
          {
            type: 'function',
            function: {
              name: 'get_weather',
              description: 'Current weather',
              parameters: {
                $schema: 'http://json-schema.org/draft-07/schema#',
                type: 'object',
                properties: { city: { type: 'string', description: 'City name' } },
                required: ['city'],
                additionalProperties: false,
              },
              strict: false,
            },
          },
          {
            type: 'function',
            function: {
              name: 'get_time',
              description: 'Local time',
              parameters: { type: 'object', properties: { timezone: { type: ['string', 'null'] } } },
            },
          },
        ],
        tool_choice: 'auto',
      }),
      {
        path: GENERATE,
        body: {
          contents: [
            { role: 'user', parts: [{ text: 'Weather and time in Paris?' }] },
            {
              role: 'model',
              parts: [
                { functionCall: { name: 'get_weather', args: { city: 'Paris' } } },
                { functionCall: { name: 'get_time', args: { timezone: 'Europe/Paris' } } },
              ],
            },
            {
              role: 'user',
              parts: [
                { functionResponse: { name: 'get_weather', response: { temp_c: 18, sky: 'clear' } } },
                { functionResponse: { name: 'get_time', response: { content: '14:05' } } },
                { text: 'Thanks! And tomorrow?' },
              ],
            },
          ],
          tools: [
            {
              functionDeclarations: [
                {
                  name: 'get_weather',
                  description: 'Current weather',
                  parameters: {
                    type: 'object',
                    properties: { city: { type: 'string', description: 'City name' } },
                    required: ['city'],
                  },
                },
                {
                  name: 'get_time',
                  description: 'Local time',
                  parameters: {
                    type: 'object',
                    properties: { timezone: { type: 'string', nullable: true } },
                  },
                },
              ],
            },
          ],
          toolConfig: { functionCallingConfig: { mode: 'AUTO' } },
        },
      },
    ],
    [
      'merged user turns, text-part assistant content, argument-less calls and functions',
      chat({
        messages: [
          user('a'),
          user([{ type: 'text', text: 'b' }]),
          {
            role: 'assistant',
            content: [{ type: 'text', text: 'Listing.' }],
            tool_calls: [call('c1', 'list_alarms', '')],
          },
          {
            role: 'tool',
            tool_call_id: 'c1',
            content: [
              { type: 'text', text: '["07:00",' },
              { type: 'text', text: '"08:30"]' },
            ],
          },
        ],
        tools: [
          {
            type: 'function',
            function: { name: 'list_alarms', parameters: { type: 'object', properties: {} } },
          },
        ],
      }),
      {
        path: GENERATE,
        body: {
          contents: [
            { role: 'user', parts: [{ text: 'a' }, { text: 'b' }] },
            {
              role: 'model',
              parts: [{ text: 'Listing.' }, { functionCall: { name: 'list_alarms', args: {} } }],
            },
            {
              role: 'user',
              parts: [
                { functionResponse: { name: 'list_alarms', response: { content: '["07:00","08:30"]' } } },
              ],
            },
          ],
          tools: [{ functionDeclarations: [{ name: 'list_alarms' }] }],
        },
      },
    ],
    [
      'empty text left out, as Gemini refuses empty parts: beside calls, a silent turn, an empty system prompt',
      chat({
        messages: [
          { role: 'system', content: '' },
          user('Alarms?'),
          { role: 'assistant', content: '', tool_calls: [call('c1', 'list_alarms', '')] },
          { role: 'tool', tool_call_id: 'c1', content: '[]' },
          { role: 'assistant', content: [{ type: 'text', text: '' }] },
          user('Set one for 7.'),
          {
            role: 'developer',
            content: [
              { type: 'text', text: '' },
              { type: 'text', text: 'Be brief.' },
            ],
          },
        ],
      }),
      {
        path: GENERATE,
        body: {
          contents: [
            { role: 'user', parts: [{ text: 'Alarms?' }] },
            { role: 'model', parts: [{ functionCall: { name: 'list_alarms', args: {} } }] },
            {
              role: 'user',
              parts: [
                { functionResponse: { name: 'list_alarms', response: { content: '[]' } } },
                { text: 'Set one for 7.' },
              ],
            },
          ],
          systemInstruction: { parts: [{ text: 'Be brief.' }] },
        },
      },
    ],
    [
      "a call's thought signature, sent back where Gemini 3 wants it",
      chat({
        messages: [
          user('Weather in Paris?'),
          {
            role: 'assistant',
            content: null,
            tool_calls: [
              {
                ...call('call_0', 'get_weather', '{"city":"Paris"}'),
                extra_content: { google: { thought_signature: 'CtwBAVSoXO4pQ1w==' } },
              },
              call('call_1', 'get_weather', '{"city":"Lyon"}'),
            ],
          },
          { role: 'tool', tool_call_id: 'call_0', content: 'sunny' },
          { role: 'tool', tool_call_id: 'call_1', content: 'rain' },
        ],
      }),
      {
        path: GENERATE,
        body: {
          contents: [
            { role: 'user', parts: [{ text: 'Weather in Paris?' }] },
            {
              role: 'model',
              parts: [
                {
                  functionCall: { name: 'get_weather', args: { city: 'Paris' } },
                  thoughtSignature: 'CtwBAVSoXO4pQ1w==',
                },
                { functionCall: { name: 'get_weather', args: { city: 'Lyon' } } },
              ],
            },
            {
              role: 'user',
              parts: [
                { functionResponse: { name: 'get_weather', response: { content: 'sunny' } } },
                { functionResponse: { name: 'get_weather', response: { content: 'rain' } } },
              ],
            },
          ],
        },
      },
    ],
    [
      "a tool result that names its function, as OpenAI's guides once wrote it",
      chat({
        messages: [
          user('Weather?'),
          { role: 'assistant', content: null, tool_calls: [call('c1', 'get_weather', '{}')] },
          { role: 'tool', tool_call_id: 'c1', name: 'get_weather', content: 'sunny' },
        ],
      }),
      {
        path: GENERATE,
        body: {
          contents: [
            { role: 'user', parts: [{ text: 'Weather?' }] },
            { role: 'model', parts: [{ functionCall: { name: 'get_weather', args: {} } }] },
            {
              role: 'user',
              parts: [{ functionResponse: { name: 'get_weather', response: { content: 'sunny' } } }],
            },
          ],
        },
      },
    ],
    [
      'a function whose description and parameters are null',
      chat({
        messages: [user('Ping?')],
        tools: [{ type: 'function', function: { name: 'ping', description: null, parameters: null } }],
      }),
      {
        path: GENERATE,
        body: {
          contents: [{ role: 'user', parts: [{ text: 'Ping?' }] }],
          tools: [{ functionDeclarations: [{ name: 'ping' }] }],
        },
      },
    ],
    [
      'default values and nulls are accepted and not sent',
      chat({
        messages: [user('Hi')],
        n: 1,
        logprobs: false,
        top_logprobs: 0,
        logit_bias: {},
        store: false,
        parallel_tool_calls: true,
        user: 'end-user-17',
        temperature: null,
        metadata: null,
        stream: false,
        max_completion_tokens: 100,
        max_tokens: 100,
        stop: ['a', 'b'],
        response_format: { type: 'text' },
      }),
      {
        path: GENERATE,
        body: {
          contents: [{ role: 'user', parts: [{ text: 'Hi' }] }],
          generationConfig: { maxOutputTokens: 100, stopSequences: ['a', 'b'] },
        },
      },
    ],
    [
      'response_format json_object',
      chat({ messages: [user('List three colours as JSON.')], response_format: { type: 'json_object' } }),
      {
        path: GENERATE,
        body: {
          contents: [{ role: 'user', parts: [{ text: 'List three colours as JSON.' }] }],
          generationConfig: { responseMimeType: 'application/json' },
        },
      },
    ],
    [
      'response_format json_schema: cleaned responseSchema, description carried over',
      chat({
        messages: [user('A recipe, please.')],
        response_format: {
          type: 'json_schema',
          json_schema: {
            name: 'recipe',
            description: 'One recipe',
            strict: true,
            schema: {
              type: 'object',
              properties: {
                title: { type: 'string' },
                steps: {
                  type: 'array',
                  items: {
                    type: 'object',
                    properties: { text: { type: 'string' } },
                    additionalProperties: false,
                  },
                },
              },
              required: ['title', 'steps'],
              additionalProperties: false,
            },
          },
        },
      }),
      {
        path: GENERATE,
        body: {
          contents: [{ role: 'user', parts: [{ text: 'A recipe, please.' }] }],
          generationConfig: {
            responseMimeType: 'application/json',
            responseSchema: {
              type: 'object',
              properties: {
                title: { type: 'string' },
                steps: { type: 'array', items: { type: 'object', properties: { text: { type: 'string' } } } },
              },
              required: ['title', 'steps'],
              description: 'One recipe',
            },
          },
        },
      },
    ],
  ])('%s', (_name, request, expected) => {
    expect(geminiCodec.toProviderRequest(request)).toEqual(expected)
  })

  it.each<[string, unknown, unknown]>([
    ['auto', 'auto', { functionCallingConfig: { mode: 'AUTO' } }],
    ['none', 'none', { functionCallingConfig: { mode: 'NONE' } }],
    ['required', 'required', { functionCallingConfig: { mode: 'ANY' } }],
    [
      'a named function',
      { type: 'function', function: { name: 'get_weather' } },
      { functionCallingConfig: { mode: 'ANY', allowedFunctionNames: ['get_weather'] } },
    ],
  ])('tool_choice %s', (_name, toolChoice, toolConfig) => {
    const request = chat({ messages: [user('Weather?')], tools: [weatherTool], tool_choice: toolChoice })
    expect(geminiCodec.toProviderRequest(request).body).toEqual({
      contents: [{ role: 'user', parts: [{ text: 'Weather?' }] }],
      tools: [{ functionDeclarations: [weatherDeclaration] }],
      toolConfig,
    })
  })

  it.each(['gemini-2.5-flash', 'gemini-2.0-flash-001', 'gemma-3_27b-it', 'learnlm-2.0-flash-experimental'])(
    'takes model %s into the path as it is',
    (model) => {
      expect(geminiCodec.toProviderRequest(chat({ model, messages: [user('Hi')] })).path).toBe(
        `/v1beta/models/${model}:generateContent`,
      )
      expect(checkModel(model)).toBe(model)
    },
  )

  it.each<unknown>([
    '../files',
    'gemini/../x',
    'a..b',
    'models/gemini-2.5-flash',
    'gemini-2.5-flash:generateContent',
    'gemini 2.5',
    'gemini%2F',
    'gemini?alt=json',
    'gémini',
    '',
    42,
  ])('refuses model %j, which would land in the URL path', (model) => {
    const shown = typeof model === 'string' ? `'${model}'` : typeof model
    expect(thrown(() => geminiCodec.toProviderRequest(chat({ model, messages: [user('Hi')] })))).toEqual({
      key: 'INVALID_REQUEST_BODY',
      message: `${INVALID}model ${shown} must use only A-Z a-z 0-9 . _ - and no '..', as it becomes part of the URL path`,
    })
  })
})

describe('gemini request refusals', () => {
  const toolTurn = [
    user('Weather?'),
    { role: 'assistant', tool_calls: [call('call_1', 'get_weather', '{}')] },
  ]

  it.each<[string, Record<string, unknown>, string]>([
    ['n > 1', { n: 2 }, 'n: 2 asks for several choices; the Gemini translation returns one, so send n: 1'],
    [
      'logprobs',
      { logprobs: true },
      'logprobs and top_logprobs: token log probabilities are not translated for Gemini',
    ],
    [
      'top_logprobs',
      { top_logprobs: 3 },
      'logprobs and top_logprobs: token log probabilities are not translated for Gemini',
    ],
    [
      'parallel_tool_calls: false',
      { parallel_tool_calls: false },
      'parallel_tool_calls: false: Gemini cannot be limited to one function call per turn',
    ],
    ['an unknown parameter', { reasoning_effort: 'low' }, "'reasoning_effort' has no Gemini equivalent"],
    ['legacy functions', { functions: [{ name: 'f' }] }, "'functions' has no Gemini equivalent"],
    ['a logit bias', { logit_bias: { '50256': -100 } }, "'logit_bias' has no Gemini equivalent"],
    ['stored completions', { store: true }, "'store' has no Gemini equivalent"],
    ['audio output', { modalities: ['text', 'audio'] }, "'modalities' has no Gemini equivalent"],
    [
      'an http image URL',
      {
        messages: [
          user([
            { type: 'text', text: 'What?' },
            { type: 'image_url', image_url: { url: 'https://example.com/cat.png' } },
          ]),
        ],
      },
      'messages[0].content[1].image_url: http(s) image URLs are not fetched; Gemini needs the bytes inline, so send a base64 data URL',
    ],
    [
      'a Google Cloud Storage image URI',
      { messages: [user([{ type: 'image_url', image_url: { url: 'gs://bucket/cat.png' } }])] },
      'messages[0].content[0].image_url: only base64 data URLs are translated',
    ],
    [
      'a percent-encoded data URL',
      { messages: [user([{ type: 'image_url', image_url: { url: 'data:image/svg+xml,%3Csvg%2F%3E' } }])] },
      'messages[0].content[0].image_url: only base64 data URLs are translated',
    ],
    [
      'an image detail setting',
      {
        messages: [
          user([{ type: 'image_url', image_url: { url: 'data:image/png;base64,AA==', detail: 'high' } }]),
        ],
      },
      "messages[0].content[0].image_url.detail 'high': Gemini has no per-image detail setting",
    ],
    [
      'an audio part',
      { messages: [user([{ type: 'input_audio', input_audio: { data: 'UklGRg==', format: 'wav' } }])] },
      "messages[0].content[0]: 'input_audio' parts are not translated for Gemini",
    ],
    [
      'a file part',
      { messages: [user([{ type: 'file', file: { file_id: 'file-abc' } }])] },
      "messages[0].content[0]: 'file' parts are not translated for Gemini",
    ],
    [
      'an image in a system message',
      {
        messages: [
          {
            role: 'system',
            content: [{ type: 'image_url', image_url: { url: 'data:image/png;base64,AA==' } }],
          },
          user('Hi'),
        ],
      },
      'messages[0].content[0]: system messages take text parts only',
    ],
    [
      'a refusal part in an assistant message',
      { messages: [user('Hi'), { role: 'assistant', content: [{ type: 'refusal', refusal: 'No.' }] }] },
      'messages[1].content[0]: assistant messages take text parts only',
    ],
    [
      'a participant name',
      { messages: [{ role: 'user', name: 'alice', content: 'Hi' }] },
      'messages[0].name: Gemini has no participant names',
    ],
    [
      'a non-function tool',
      { messages: [user('Hi')], tools: [{ type: 'custom', custom: { name: 'grammar' } }] },
      "tools[0]: 'custom' tools are not translated for Gemini, only 'function'",
    ],
    [
      'a strict function',
      {
        messages: [user('Hi')],
        tools: [{ ...weatherTool, function: { ...weatherTool.function, strict: true } }],
      },
      'tools[0].function.strict: Gemini has no strict mode for function declarations',
    ],
  ])('refuses %s', (_name, fields, detail) => {
    const request = chat({ messages: [user('Hi')], ...fields })
    expect(thrown(() => geminiCodec.toProviderRequest(request))).toEqual({
      key: 'UNSUPPORTED_PARAMETER',
      message: UNSUPPORTED + detail,
    })
  })

  it.each<[string, Record<string, unknown>, string]>([
    ['no messages', { messages: [] }, 'messages must be a non-empty array'],
    ['messages that are not a list', { messages: 'Hi' }, 'messages must be a non-empty array'],
    [
      'a message without a role',
      { messages: [{ content: 'Hi' }] },
      'messages[0] must be an object with a role',
    ],
    [
      'an unknown role',
      { messages: [{ role: 'function', name: null, content: '{}' }] },
      "messages[0].role 'function' is not one of system, developer, user, assistant, tool",
    ],
    [
      'a user message without content',
      { messages: [{ role: 'user' }] },
      'messages[0].content must be a string or an array of parts',
    ],
    [
      'a system message without content',
      { messages: [{ role: 'system', content: null }, user('Hi')] },
      'messages[0].content is required',
    ],
    [
      'a part without a type',
      { messages: [user([{ text: 'Hi' }])] },
      'messages[0].content[0] must be an object with a type',
    ],
    [
      'a text part without text',
      { messages: [user([{ type: 'text' }])] },
      'messages[0].content[0].text must be a string',
    ],
    [
      'a malformed data URL',
      { messages: [user([{ type: 'image_url', image_url: { url: 'data:;base64,AA==' } }])] },
      'messages[0].content[0].image_url.url is not a well-formed data URL',
    ],
    [
      'an image part without a URL',
      { messages: [user([{ type: 'image_url', image_url: 'data:image/png;base64,AA==' }])] },
      'messages[0].content[0].image_url.url must be a string',
    ],
    [
      'an empty assistant message',
      { messages: [user('Hi'), { role: 'assistant', content: null }] },
      'messages[1]: an assistant message needs content or tool_calls',
    ],
    [
      'tool-call arguments that are not JSON',
      { messages: [user('Hi'), { role: 'assistant', tool_calls: [call('c', 'f', '{city: Paris}')] }] },
      'messages[1].tool_calls[0].function.arguments is not valid JSON',
    ],
    [
      'tool-call arguments that are not an object',
      { messages: [user('Hi'), { role: 'assistant', tool_calls: [call('c', 'f', '["Paris"]')] }] },
      'messages[1].tool_calls[0].function.arguments must be a JSON object',
    ],
    [
      'a tool call without an id',
      {
        messages: [
          user('Hi'),
          { role: 'assistant', tool_calls: [{ type: 'function', function: { name: 'f', arguments: '{}' } }] },
        ],
      },
      'messages[1].tool_calls[0] must be an object with an id and a function',
    ],
    [
      'a tool result for an unknown call',
      { messages: [...toolTurn, { role: 'tool', tool_call_id: 'call_9', content: 'sunny' }] },
      "messages[2].tool_call_id 'call_9' matches no earlier assistant tool call",
    ],
    [
      'a tool result without a call id',
      { messages: [...toolTurn, { role: 'tool', content: 'sunny' }] },
      'messages[2].tool_call_id must be a string',
    ],
    [
      'a tool result without content',
      { messages: [...toolTurn, { role: 'tool', tool_call_id: 'call_1' }] },
      'messages[2].content is required',
    ],
    ['a temperature that is not a number', { temperature: '0.5' }, 'temperature must be a number'],
    ['n: 0', { n: 0 }, 'n must be an integer of at least 1'],
    ['a fractional max_tokens', { max_tokens: 10.5 }, 'max_tokens must be an integer of at least 1'],
    [
      'disagreeing token limits',
      { max_tokens: 10, max_completion_tokens: 20 },
      'max_tokens and max_completion_tokens disagree; send one of them',
    ],
    ['a numeric stop', { stop: 5 }, 'stop must be a string or an array of strings'],
    ['a stop list with a number', { stop: ['a', 1] }, 'stop must be a string or an array of strings'],
    ['a non-boolean stream', { stream: 'yes' }, 'stream must be a boolean'],
    ['tools that are not a list', { tools: weatherTool }, 'tools must be an array'],
    [
      'an unknown tool_choice',
      { tools: [weatherTool], tool_choice: 'any' },
      "tool_choice must be 'auto', 'none', 'required' or {type: 'function', function: {name}}",
    ],
    [
      'a tool_choice naming a missing function',
      { tools: [weatherTool], tool_choice: { type: 'function', function: { name: 'nope' } } },
      "tool_choice names function 'nope', which is not among tools",
    ],
    [
      'an unknown response_format',
      { response_format: { type: 'xml' } },
      "response_format.type 'xml' is not known",
    ],
    [
      'a json_schema format without its object',
      { response_format: { type: 'json_schema' } },
      'response_format.json_schema must be an object',
    ],
  ])('refuses %s as malformed', (_name, fields, detail) => {
    const request = chat({ messages: [user('Hi')], ...fields })
    expect(thrown(() => geminiCodec.toProviderRequest(request))).toEqual({
      key: 'INVALID_REQUEST_BODY',
      message: INVALID + detail,
    })
  })
})

describe('gemini schemas', () => {
  it.each<[string, unknown, unknown]>([
    [
      'strips annotations and additionalProperties at every level',
      {
        $schema: 'https://json-schema.org/draft/2020-12/schema',
        $id: 'urn:order',
        $comment: 'v2',
        type: 'object',
        additionalProperties: false,
        properties: {
          lines: {
            type: 'array',
            items: { type: 'object', additionalProperties: false, properties: { sku: { type: 'string' } } },
          },
          note: { anyOf: [{ type: 'string' }, { type: 'object', additionalProperties: { type: 'string' } }] },
        },
      },
      {
        type: 'object',
        properties: {
          lines: { type: 'array', items: { type: 'object', properties: { sku: { type: 'string' } } } },
          note: { anyOf: [{ type: 'string' }, { type: 'object' }] },
        },
      },
    ],
    [
      'keeps properties whose names are keywords',
      {
        type: 'object',
        properties: { additionalProperties: { type: 'boolean' }, $schema: { type: 'string' } },
      },
      {
        type: 'object',
        properties: { additionalProperties: { type: 'boolean' }, $schema: { type: 'string' } },
      },
    ],
    [
      'turns [T, null] into a nullable T',
      { type: 'object', properties: { age: { type: ['null', 'integer'], minimum: 0 } } },
      { type: 'object', properties: { age: { type: 'integer', nullable: true, minimum: 0 } } },
    ],
    [
      'leaves enum, default and example values untouched',
      { type: 'string', enum: ['a', 'b'], default: 'a', example: { additionalProperties: 1 } },
      { type: 'string', enum: ['a', 'b'], default: 'a', example: { additionalProperties: 1 } },
    ],
    [
      'keeps keywords that change what is valid, for Gemini to name',
      {
        type: 'object',
        properties: { kind: { const: 'x' } },
        $defs: { a: { $comment: 'c', type: 'string' } },
      },
      { type: 'object', properties: { kind: { const: 'x' } }, $defs: { a: { type: 'string' } } },
    ],
  ])('%s', (_name, schema, expected) => {
    expect(toGeminiSchema(schema)).toEqual(expected)
  })
})

const OPTIONS = { id: 'chatcmpl-gem1', created: 1_760_000_000, model: MODEL }

function completion(
  message: { content: string | null; tool_calls?: ToolCall[] },
  finishReason: FinishReason | null,
  usage?: Usage,
): ChatCompletion {
  return {
    id: OPTIONS.id,
    object: 'chat.completion',
    created: OPTIONS.created,
    model: MODEL,
    choices: [
      {
        index: 0,
        message: { role: 'assistant', ...message, refusal: null },
        finish_reason: finishReason,
        logprobs: null,
      },
    ],
    ...(usage ? { usage } : {}),
  }
}

function toolCall(id: string, name: string, args: string, signature?: string): ToolCall {
  const call: ToolCall = { id, type: 'function', function: { name, arguments: args } }
  return signature === undefined
    ? call
    : { ...call, extra_content: { google: { thought_signature: signature } } }
}

function candidate(finishReason: string): unknown {
  return { candidates: [{ content: { parts: [{ text: 'x' }], role: 'model' }, finishReason, index: 0 }] }
}

describe('gemini responses', () => {
  it.each<[string, unknown, ChatCompletion]>([
    [
      'text, with thinking tokens counted as completion',
      fx.textAnswer,
      completion({ content: 'Paris is the capital of France.' }, 'stop', {
        prompt_tokens: 8,
        completion_tokens: 38,
        total_tokens: 46,
      }),
    ],
    [
      'text and two function calls, the first with the thought signature Gemini 3 wants back',
      fx.functionCallAnswer,
      completion(
        {
          content: 'Checking both.',
          tool_calls: [
            toolCall('call_0', 'get_weather', '{"city":"Paris","unit":"celsius"}', 'CtwBAVSoXO4pQ1w=='),
            toolCall('call_1', 'get_time', '{"timezone":"Europe/Paris"}'),
          ],
        },
        'tool_calls',
        { prompt_tokens: 61, completion_tokens: 91, total_tokens: 152 },
      ),
    ],
    [
      "Gemini's own call id, and a call without args",
      fx.functionCallWithIdAnswer,
      completion(
        {
          content: null,
          tool_calls: [
            toolCall('fc-7d2a', 'get_weather', '{"city":"Oslo"}'),
            toolCall('call_1', 'list_alarms', '{}'),
          ],
        },
        'tool_calls',
      ),
    ],
    [
      'a blocked prompt',
      fx.blockedPrompt,
      completion({ content: null }, 'content_filter', {
        prompt_tokens: 12,
        completion_tokens: 0,
        total_tokens: 12,
      }),
    ],
    [
      'a safety stop without content',
      fx.safetyStop,
      completion({ content: null }, 'content_filter', {
        prompt_tokens: 15,
        completion_tokens: 0,
        total_tokens: 15,
      }),
    ],
    [
      'MAX_TOKENS with cached prompt tokens',
      fx.maxTokensCached,
      completion({ content: 'The first three' }, 'length', {
        prompt_tokens: 4120,
        completion_tokens: 3,
        total_tokens: 4123,
        prompt_tokens_details: { cached_tokens: 4096 },
      }),
    ],
    [
      'thought summaries left out of the content',
      fx.withThoughtSummary,
      completion({ content: '42' }, 'stop', { prompt_tokens: 5, completion_tokens: 15, total_tokens: 20 }),
    ],
  ])('%s', (_name, json, expected) => {
    expect(geminiCodec.fromProviderResponse(json, OPTIONS)).toEqual(expected)
  })

  it.each<[string, FinishReason]>([
    ['STOP', 'stop'],
    ['MAX_TOKENS', 'length'],
    ['SAFETY', 'content_filter'],
    ['RECITATION', 'content_filter'],
    ['BLOCKLIST', 'content_filter'],
    ['PROHIBITED_CONTENT', 'content_filter'],
    ['SPII', 'content_filter'],
    ['IMAGE_SAFETY', 'content_filter'],
    ['IMAGE_PROHIBITED_CONTENT', 'content_filter'],
    ['IMAGE_RECITATION', 'content_filter'],
    ['IMAGE_OTHER', 'stop'],
    ['NO_IMAGE', 'stop'],
    ['LANGUAGE', 'stop'],
    ['MALFORMED_FUNCTION_CALL', 'stop'],
    ['OTHER', 'stop'],
    ['FINISH_REASON_UNSPECIFIED', 'stop'],
  ])('finishReason %s → %s', (reason, expected) => {
    expect(geminiCodec.fromProviderResponse(candidate(reason), OPTIONS).choices[0]?.finish_reason).toBe(
      expected,
    )
  })

  it.each<[string, unknown, string]>([
    ['a body that is not an object', 'upstream connect error', 'Gemini response is not a JSON object'],
    [
      'no candidates and no block reason',
      { modelVersion: MODEL },
      'Gemini sent no candidates and no promptFeedback.blockReason',
    ],
    ['candidates that are not a list', { candidates: {} }, 'Gemini candidates is not an array'],
    ['a candidate that is not an object', { candidates: ['x'] }, 'Gemini candidates[0] is not an object'],
    [
      'parts that are not a list',
      { candidates: [{ content: { parts: 'hi' } }] },
      'Gemini candidates[0].content.parts is not an array',
    ],
    [
      'an inline image in the answer',
      fx.imageAnswer,
      'Gemini candidates[0].content.parts[1] is inlineData, which an OpenAI chat message cannot carry',
    ],
    [
      'executable code in the answer',
      {
        candidates: [{ content: { parts: [{ executableCode: { language: 'PYTHON', code: 'print(1)' } }] } }],
      },
      'Gemini candidates[0].content.parts[0] is executableCode, which an OpenAI chat message cannot carry',
    ],
    [
      'a function call without a name',
      { candidates: [{ content: { parts: [{ functionCall: { args: {} } }] } }] },
      'Gemini candidates[0].content.parts[0].functionCall has no name',
    ],
    [
      'function call args that are not an object',
      { candidates: [{ content: { parts: [{ functionCall: { name: 'f', args: [1] } }] } }] },
      'Gemini candidates[0].content.parts[0].functionCall.args is not an object',
    ],
  ])('refuses %s', (_name, json, detail) => {
    expect(thrown(() => geminiCodec.fromProviderResponse(json, OPTIONS))).toEqual({
      key: 'INVALID_PROVIDER_RESPONSE',
      message: UNREADABLE + detail,
    })
  })
})

type Delta = ChatCompletionChunk['choices'][number]['delta']

function streamOptions(includeUsage: boolean): StreamOptions {
  return { id: 'chatcmpl-gem2', created: 1_760_000_001, model: MODEL, includeUsage }
}

function chunkOf(
  includeUsage: boolean,
  delta: Delta,
  finishReason: FinishReason | null = null,
): ChatCompletionChunk {
  return {
    id: 'chatcmpl-gem2',
    object: 'chat.completion.chunk',
    created: 1_760_000_001,
    model: MODEL,
    choices: [{ index: 0, delta, finish_reason: finishReason, logprobs: null }],
    ...(includeUsage ? { usage: null } : {}),
  }
}

function usageChunk(usage: Usage): ChatCompletionChunk {
  return {
    id: 'chatcmpl-gem2',
    object: 'chat.completion.chunk',
    created: 1_760_000_001,
    model: MODEL,
    choices: [],
    usage,
  }
}

const sse = (json: unknown) => ({ event: undefined, data: JSON.stringify(json) })

describe('gemini streams', () => {
  it('translates text, a function call and the final event, then owes the usage chunk', () => {
    const translator = geminiCodec.streamTranslator(streamOptions(true))
    const [first, second, last] = fx.toolStreamEvents
    const role = chunkOf(true, { role: 'assistant', content: '' })

    expect(translator.push(sse(first))).toEqual({
      chunks: [role, chunkOf(true, { content: 'Let me check' })],
    })
    expect(translator.complete).toBe(false)
    expect(translator.push(sse(second))).toEqual({
      chunks: [chunkOf(true, { content: ' the weather in Paris.' })],
    })
    expect(translator.complete).toBe(false)
    expect(translator.push(sse(last))).toEqual({
      chunks: [
        chunkOf(true, {
          tool_calls: [
            {
              index: 0,
              id: 'call_0',
              type: 'function',
              function: { name: 'get_weather', arguments: '{"city":"Paris"}' },
              extra_content: { google: { thought_signature: 'CiIBVKhc7pHm5g==' } },
            },
          ],
        }),
        chunkOf(true, {}, 'tool_calls'),
      ],
    })
    expect(translator.complete).toBe(true)
    expect(translator.finish()).toEqual([
      usageChunk({ prompt_tokens: 52, completion_tokens: 69, total_tokens: 121 }),
    ])
  })

  it('skips the empty final text, maps MAX_TOKENS, and owes nothing without include_usage', () => {
    const translator = geminiCodec.streamTranslator(streamOptions(false))
    const steps = fx.textStreamEvents.map((event) => translator.push(sse(event)))
    expect(steps).toEqual([
      {
        chunks: [
          chunkOf(false, { role: 'assistant', content: '' }),
          chunkOf(false, { content: 'One, two,' }),
        ],
      },
      { chunks: [chunkOf(false, {}, 'length')] },
    ])
    expect(translator.complete).toBe(true)
    expect(translator.finish()).toEqual([])
  })

  it('numbers calls across events and keeps ids Gemini sends', () => {
    const translator = geminiCodec.streamTranslator(streamOptions(false))
    const callEvent = (functionCall: unknown, finishReason?: string) => ({
      candidates: [
        {
          content: { parts: [{ functionCall }], role: 'model' },
          index: 0,
          ...(finishReason ? { finishReason } : {}),
        },
      ],
    })
    const chunks = [
      ...translator.push(sse(callEvent({ name: 'a', args: { x: 1 } }))).chunks,
      ...translator.push(sse(callEvent({ id: 'fc-2', name: 'b', args: {} }, 'STOP'))).chunks,
    ]
    expect(chunks).toEqual([
      chunkOf(false, { role: 'assistant', content: '' }),
      chunkOf(false, {
        tool_calls: [
          { index: 0, id: 'call_0', type: 'function', function: { name: 'a', arguments: '{"x":1}' } },
        ],
      }),
      chunkOf(false, {
        tool_calls: [{ index: 1, id: 'fc-2', type: 'function', function: { name: 'b', arguments: '{}' } }],
      }),
      chunkOf(false, {}, 'tool_calls'),
    ])
  })

  it('ends a blocked prompt with content_filter and its usage', () => {
    const translator = geminiCodec.streamTranslator(streamOptions(true))
    expect(translator.push(sse(fx.blockedPrompt))).toEqual({
      chunks: [chunkOf(true, { role: 'assistant', content: '' }), chunkOf(true, {}, 'content_filter')],
    })
    expect(translator.complete).toBe(true)
    expect(translator.finish()).toEqual([
      usageChunk({ prompt_tokens: 12, completion_tokens: 0, total_tokens: 12 }),
    ])
  })

  it('keeps the latest usage even from events after the finish', () => {
    const translator = geminiCodec.streamTranslator(streamOptions(true))
    translator.push(sse(fx.textStreamEvents[1]))
    const late = { usageMetadata: { promptTokenCount: 6, candidatesTokenCount: 6, totalTokenCount: 12 } }
    expect(
      translator.push(sse({ ...late, candidates: [{ content: { parts: [{ text: 'late' }] } }] })),
    ).toEqual({
      chunks: [],
    })
    expect(translator.finish()).toEqual([
      usageChunk({ prompt_tokens: 6, completion_tokens: 6, total_tokens: 12 }),
    ])
  })

  it.each<[string, string, unknown]>([
    [
      'an error object',
      JSON.stringify(fx.streamedError),
      {
        message: 'The model is overloaded. Please try again later.',
        type: 'api_error',
        param: null,
        code: 'UNAVAILABLE',
      },
    ],
    [
      'data that is not JSON',
      '{"candidates": [{"content": {"parts": [{"text": "Hel',
      {
        message:
          'Gemini sent a stream event that is not JSON: {"candidates": [{"content": {"parts": [{"text": "Hel',
        type: 'api_error',
        param: null,
        code: null,
      },
    ],
    [
      'a part OpenAI cannot carry',
      JSON.stringify(fx.imageAnswer),
      {
        message: `${UNREADABLE}Gemini candidates[0].content.parts[1] is inlineData, which an OpenAI chat message cannot carry`,
        type: 'api_error',
        param: null,
        code: null,
      },
    ],
  ])('reports %s as an error without throwing, and goes on as before', (_name, data, error) => {
    const translator = geminiCodec.streamTranslator(streamOptions(false))
    expect(translator.push({ event: undefined, data })).toEqual({ chunks: [], error })
    expect(translator.complete).toBe(false)
    expect(translator.push(sse(fx.textStreamEvents[0])).chunks[0]).toEqual(
      chunkOf(false, { role: 'assistant', content: '' }),
    )
  })

  it('ignores events without data', () => {
    const translator = geminiCodec.streamTranslator(streamOptions(true))
    expect(translator.push({ event: undefined, data: '' })).toEqual({ chunks: [] })
    expect(translator.finish()).toEqual([])
  })
})

describe('gemini errors', () => {
  it.each<[number, unknown, unknown]>([
    [
      400,
      fx.errors.badKey,
      {
        message: 'API key not valid. Please pass a valid API key.',
        type: 'invalid_request_error',
        param: null,
        code: 'INVALID_ARGUMENT',
      },
    ],
    [
      401,
      fx.errors.unauthenticated,
      {
        message: 'Request had invalid authentication credentials.',
        type: 'authentication_error',
        param: null,
        code: 'UNAUTHENTICATED',
      },
    ],
    [
      403,
      fx.errors.permission,
      {
        message: "Method doesn't allow unregistered callers (callers without established identity).",
        type: 'permission_error',
        param: null,
        code: 'PERMISSION_DENIED',
      },
    ],
    [
      404,
      fx.errors.notFound,
      {
        message:
          'models/gemini-9-ultra is not found for API version v1beta, or is not supported for generateContent.',
        type: 'invalid_request_error',
        param: null,
        code: 'NOT_FOUND',
      },
    ],
    [
      429,
      fx.errors.quota,
      {
        message: 'You exceeded your current quota, please check your plan and billing details.',
        type: 'rate_limit_error',
        param: null,
        code: 'RESOURCE_EXHAUSTED',
      },
    ],
    [
      500,
      fx.errors.internal,
      { message: 'An internal error has occurred.', type: 'api_error', param: null, code: 'INTERNAL' },
    ],
    [
      503,
      fx.errors.overloaded,
      {
        message: 'The model is overloaded. Please try again later.',
        type: 'api_error',
        param: null,
        code: 'UNAVAILABLE',
      },
    ],
    [
      400,
      [fx.errors.badKey],
      {
        message: 'API key not valid. Please pass a valid API key.',
        type: 'invalid_request_error',
        param: null,
        code: 'INVALID_ARGUMENT',
      },
    ],
    [
      418,
      { error: { code: 418, message: 'teapot' } },
      { message: 'teapot', type: 'invalid_request_error', param: null, code: null },
    ],
    [
      502,
      '<html><body>Bad Gateway</body></html>',
      {
        message: 'Gemini answered HTTP 502 without a readable error body',
        type: 'api_error',
        param: null,
        code: null,
      },
    ],
    [
      429,
      null,
      {
        message: 'Gemini answered HTTP 429 without a readable error body',
        type: 'rate_limit_error',
        param: null,
        code: null,
      },
    ],
    [
      401,
      { message: 'nope' },
      {
        message: 'Gemini answered HTTP 401 without a readable error body',
        type: 'authentication_error',
        param: null,
        code: null,
      },
    ],
  ])('HTTP %i %j', (status, json, error) => {
    expect(geminiCodec.fromProviderError(status, json)).toEqual({ error })
  })
})

describe('gemini embeddings', () => {
  const codec = geminiCodec.embeddings!

  it.each<[string, EmbeddingsRequest, unknown]>([
    [
      'one string',
      embed({ input: 'hello world' }),
      {
        path: '/v1beta/models/gemini-embedding-001:batchEmbedContents',
        body: {
          requests: [{ model: 'models/gemini-embedding-001', content: { parts: [{ text: 'hello world' }] } }],
        },
      },
    ],
    [
      'several strings, dimensions, float format and a user',
      embed({ input: ['a', 'b'], dimensions: 768, encoding_format: 'float', user: 'end-user-17' }),
      {
        path: '/v1beta/models/gemini-embedding-001:batchEmbedContents',
        body: {
          requests: [
            {
              model: 'models/gemini-embedding-001',
              content: { parts: [{ text: 'a' }] },
              outputDimensionality: 768,
            },
            {
              model: 'models/gemini-embedding-001',
              content: { parts: [{ text: 'b' }] },
              outputDimensionality: 768,
            },
          ],
        },
      },
    ],
  ])('%s', (_name, request, expected) => {
    expect(codec.toProviderRequest(request)).toEqual(expected)
  })

  it('reads embeddings in order, with zero usage as Gemini counts none', () => {
    expect(codec.fromProviderResponse(fx.embeddings, 'gemini-embedding-001')).toEqual({
      object: 'list',
      data: [
        { object: 'embedding', index: 0, embedding: [0.0132, -0.0081, 0.0442] },
        { object: 'embedding', index: 1, embedding: [-0.0207, 0.0154, 0.0019] },
      ],
      model: 'gemini-embedding-001',
      usage: { prompt_tokens: 0, total_tokens: 0 },
    })
  })

  it.each<[string, Record<string, unknown>, string, string]>([
    [
      'token ids',
      { input: [101, 2023] },
      'UNSUPPORTED_PARAMETER',
      'input: token-id input is not translated; Gemini embeds text only',
    ],
    [
      'lists of token ids',
      { input: [[101], [2023]] },
      'UNSUPPORTED_PARAMETER',
      'input: token-id input is not translated; Gemini embeds text only',
    ],
    [
      'an unknown parameter',
      { input: 'a', input_type: 'query' },
      'UNSUPPORTED_PARAMETER',
      "'input_type' has no Gemini equivalent",
    ],
    [
      'an unknown format',
      { input: 'a', encoding_format: 'hex' },
      'INVALID_REQUEST_BODY',
      "encoding_format must be 'float' or 'base64'",
    ],
    ['no input', { input: [] }, 'INVALID_REQUEST_BODY', 'input must be a string or a non-empty array'],
    [
      'mixed input',
      { input: ['a', 1] },
      'INVALID_REQUEST_BODY',
      'input must be a string or an array of strings',
    ],
    [
      'zero dimensions',
      { input: 'a', dimensions: 0 },
      'INVALID_REQUEST_BODY',
      'dimensions must be an integer of at least 1',
    ],
    [
      'a model outside the URL-safe set',
      { model: 'models/../files', input: 'a' },
      'INVALID_REQUEST_BODY',
      "model 'models/../files' must use only A-Z a-z 0-9 . _ - and no '..', as it becomes part of the URL path",
    ],
  ])('refuses %s', (_name, fields, key, detail) => {
    const prefix = key === 'UNSUPPORTED_PARAMETER' ? UNSUPPORTED : INVALID
    expect(thrown(() => codec.toProviderRequest(embed(fields)))).toEqual({ key, message: prefix + detail })
  })

  it.each<[string, unknown, string]>([
    ['no embeddings list', { error: 'x' }, 'Gemini sent no embeddings list'],
    [
      'values that are not numbers',
      { embeddings: [{ values: ['0.1'] }] },
      'Gemini embeddings[0].values is not a list of numbers',
    ],
    [
      'an embedding without values',
      { embeddings: [{}] },
      'Gemini embeddings[0].values is not a list of numbers',
    ],
  ])('refuses a response with %s', (_name, json, detail) => {
    expect(thrown(() => codec.fromProviderResponse(json, 'gemini-embedding-001'))).toEqual({
      key: 'INVALID_PROVIDER_RESPONSE',
      message: UNREADABLE + detail,
    })
  })
})
