import { describe, expect, it } from 'vitest'
import { GatewayError } from '../../../src/errors.js'
import { anthropicCodec } from '../../../src/providers/dialects/anthropic.js'
import type {
  ChatCompletion,
  ChatCompletionChunk,
  ChatRequest,
  FinishReason,
  OpenAIErrorBody,
  ToolCallDelta,
  Usage,
} from '../../../src/providers/dialects/openai-types.js'
import type { SSEEvent } from '../../../src/providers/dialects/types.js'
import * as recorded from './fixtures/anthropic.js'

const MODEL = 'claude-sonnet-4-5'
const META = { id: 'chatcmpl-abc123', created: 1_764_000_000, model: MODEL }
const PNG = 'iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg=='
const WEATHER_TOOL = {
  type: 'function' as const,
  function: {
    name: 'get_weather',
    description: 'Current weather for a city',
    parameters: { type: 'object', properties: { location: { type: 'string' } }, required: ['location'] },
  },
}
const WEATHER_SCHEMA = WEATHER_TOOL.function.parameters
const WEATHER_TOOL_OUT = {
  name: 'get_weather',
  description: 'Current weather for a city',
  input_schema: WEATHER_SCHEMA,
}

/** Requests as a client would send them, some on purpose outside what the OpenAI types allow. */
function chat(
  extra: Record<string, unknown>,
  messages: unknown[] = [{ role: 'user', content: 'Hi' }],
): ChatRequest {
  return { model: MODEL, messages, ...extra } as ChatRequest
}

function body(
  extra: Record<string, unknown>,
  messages: unknown[] = [{ role: 'user', content: 'Hi' }],
): unknown {
  return { model: MODEL, max_tokens: 4096, messages, ...extra }
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

/** Splits a raw SSE stream into events the way the gateway's reader hands them over. */
function events(raw: string): SSEEvent[] {
  return raw
    .split('\n\n')
    .filter((block) => block.trim() !== '')
    .map((block) => {
      const lines = block.split('\n')
      const event = lines.find((line) => line.startsWith('event: '))?.slice('event: '.length)
      const data = lines
        .filter((line) => line.startsWith('data: '))
        .map((line) => line.slice('data: '.length))
        .join('\n')
      return { event, data }
    })
}

describe('anthropicCodec.toProviderRequest', () => {
  const cases: { name: string; request: ChatRequest; body: unknown }[] = [
    {
      name: 'a single user turn gets the required max_tokens',
      request: chat({}),
      body: body({}),
    },
    {
      name: 'one system message becomes the system string',
      request: chat({}, [
        { role: 'system', content: 'You are terse.' },
        { role: 'user', content: 'Hi' },
      ]),
      body: body({ system: 'You are terse.' }),
    },
    {
      name: 'system and developer messages, wherever they are, become system text blocks',
      request: chat({}, [
        { role: 'system', content: 'You are terse.' },
        { role: 'user', content: 'Hi' },
        { role: 'developer', content: [{ type: 'text', text: 'Answer in French.' }] },
      ]),
      body: body({
        system: [
          { type: 'text', text: 'You are terse.' },
          { type: 'text', text: 'Answer in French.' },
        ],
      }),
    },
    {
      name: 'empty system prompts are left out, as Anthropic refuses empty system text blocks',
      request: chat({}, [
        { role: 'system', content: '' },
        { role: 'user', content: 'Hi' },
        {
          role: 'developer',
          content: [
            { type: 'text', text: '' },
            { type: 'text', text: 'Be terse.' },
          ],
        },
      ]),
      body: body({ system: 'Be terse.' }),
    },
    {
      name: 'consecutive same-role messages merge; names are dropped as Anthropic has none',
      request: chat({}, [
        { role: 'user', content: 'First question.', name: 'ann' },
        { role: 'user', content: [{ type: 'text', text: 'Second question.' }], name: 'bob' },
        { role: 'assistant', content: 'First answer.' },
        { role: 'assistant', content: [{ type: 'text', text: 'Second answer.' }] },
        { role: 'user', content: 'Thanks' },
      ]),
      body: body({}, [
        {
          role: 'user',
          content: [
            { type: 'text', text: 'First question.' },
            { type: 'text', text: 'Second question.' },
          ],
        },
        {
          role: 'assistant',
          content: [
            { type: 'text', text: 'First answer.' },
            { type: 'text', text: 'Second answer.' },
          ],
        },
        { role: 'user', content: 'Thanks' },
      ]),
    },
    {
      name: 'images as base64 data URLs and as https URLs',
      request: chat({}, [
        {
          role: 'user',
          content: [
            { type: 'text', text: 'Compare these.' },
            { type: 'image_url', image_url: { url: `data:image/png;base64,${PNG}` } },
            { type: 'image_url', image_url: { url: 'https://example.com/cat.jpg', detail: 'auto' } },
            // `image/jpg` is how many clients name JPEG, and OpenAI takes it; Anthropic knows `image/jpeg`.
            { type: 'image_url', image_url: { url: 'data:image/jpg;base64,/9j/4AAQ' } },
          ],
        },
      ]),
      body: body({}, [
        {
          role: 'user',
          content: [
            { type: 'text', text: 'Compare these.' },
            { type: 'image', source: { type: 'base64', media_type: 'image/png', data: PNG } },
            { type: 'image', source: { type: 'url', url: 'https://example.com/cat.jpg' } },
            { type: 'image', source: { type: 'base64', media_type: 'image/jpeg', data: '/9j/4AAQ' } },
          ],
        },
      ]),
    },
    {
      name: 'sampling, limits, stream and user; parameters at their defaults and nulls ask for nothing',
      request: chat({
        temperature: 0.2,
        top_p: 0.9,
        stop: 'END',
        max_tokens: 100,
        max_completion_tokens: 512,
        stream: true,
        stream_options: { include_usage: true },
        user: 'user-123',
        n: 1,
        presence_penalty: 0,
        frequency_penalty: 0,
        logprobs: false,
        seed: null,
        logit_bias: {},
        store: false,
      }),
      body: body({
        max_tokens: 512,
        temperature: 0.2,
        top_p: 0.9,
        stop_sequences: ['END'],
        stream: true,
        metadata: { user_id: 'user-123' },
      }),
    },
    {
      name: 'max_tokens alone, and a list of stop sequences',
      request: chat({ max_tokens: 64, stop: ['\n\n', 'Human:'], stream: false }),
      body: body({ max_tokens: 64, stop_sequences: ['\n\n', 'Human:'] }),
    },
    {
      name: 'tools without tool_choice leave the choice to Anthropic',
      request: chat({ tools: [WEATHER_TOOL] }),
      body: body({ tools: [WEATHER_TOOL_OUT] }),
    },
    {
      name: 'tool_choice auto',
      request: chat({ tools: [WEATHER_TOOL], tool_choice: 'auto' }),
      body: body({ tools: [WEATHER_TOOL_OUT], tool_choice: { type: 'auto' } }),
    },
    {
      name: 'tool_choice required is any',
      request: chat({ tools: [WEATHER_TOOL], tool_choice: 'required' }),
      body: body({ tools: [WEATHER_TOOL_OUT], tool_choice: { type: 'any' } }),
    },
    {
      name: 'a named tool_choice',
      request: chat({
        tools: [WEATHER_TOOL],
        tool_choice: { type: 'function', function: { name: 'get_weather' } },
      }),
      body: body({ tools: [WEATHER_TOOL_OUT], tool_choice: { type: 'tool', name: 'get_weather' } }),
    },
    {
      name: 'tool_choice none',
      request: chat({ tools: [WEATHER_TOOL], tool_choice: 'none', parallel_tool_calls: false }),
      body: body({ tools: [WEATHER_TOOL_OUT], tool_choice: { type: 'none' } }),
    },
    {
      name: 'parallel_tool_calls false disables parallel use on the default choice',
      request: chat({ tools: [WEATHER_TOOL], parallel_tool_calls: false }),
      body: body({
        tools: [WEATHER_TOOL_OUT],
        tool_choice: { type: 'auto', disable_parallel_tool_use: true },
      }),
    },
    {
      name: 'parallel_tool_calls false on a forced choice; true is the default',
      request: chat({ tools: [WEATHER_TOOL], tool_choice: 'required', parallel_tool_calls: false }),
      body: body({
        tools: [WEATHER_TOOL_OUT],
        tool_choice: { type: 'any', disable_parallel_tool_use: true },
      }),
    },
    {
      name: 'a tool without parameters takes an empty object; strict carries over',
      request: chat({
        tools: [{ type: 'function', function: { name: 'get_time', strict: true } }],
        parallel_tool_calls: true,
      }),
      body: body({
        tools: [{ name: 'get_time', input_schema: { type: 'object', properties: {} }, strict: true }],
      }),
    },
    {
      name: 'parallel tool calls and their results, followed by user text, in alternating turns',
      request: chat({ tools: [WEATHER_TOOL] }, [
        { role: 'user', content: 'Weather in Paris and Tokyo?' },
        {
          role: 'assistant',
          content: null,
          tool_calls: [
            {
              id: 'toolu_01Paris',
              type: 'function',
              function: { name: 'get_weather', arguments: '{"location":"Paris"}' },
            },
            {
              id: 'toolu_01Tokyo',
              type: 'function',
              function: { name: 'get_weather', arguments: '{"location":"Tokyo"}' },
            },
          ],
        },
        { role: 'tool', tool_call_id: 'toolu_01Paris', content: '18°C, cloudy' },
        { role: 'tool', tool_call_id: 'toolu_01Tokyo', content: [{ type: 'text', text: '24°C, clear' }] },
        { role: 'user', content: 'Which is warmer?' },
      ]),
      body: body({ tools: [WEATHER_TOOL_OUT] }, [
        { role: 'user', content: 'Weather in Paris and Tokyo?' },
        {
          role: 'assistant',
          content: [
            { type: 'tool_use', id: 'toolu_01Paris', name: 'get_weather', input: { location: 'Paris' } },
            { type: 'tool_use', id: 'toolu_01Tokyo', name: 'get_weather', input: { location: 'Tokyo' } },
          ],
        },
        {
          role: 'user',
          content: [
            { type: 'tool_result', tool_use_id: 'toolu_01Paris', content: '18°C, cloudy' },
            {
              type: 'tool_result',
              tool_use_id: 'toolu_01Tokyo',
              content: [{ type: 'text', text: '24°C, clear' }],
            },
            { type: 'text', text: 'Which is warmer?' },
          ],
        },
      ]),
    },
    {
      name: "an assistant's text before its call is kept; empty content and empty arguments are not blocks",
      request: chat({}, [
        { role: 'user', content: 'What time is it?' },
        {
          role: 'assistant',
          content: 'Let me look.',
          tool_calls: [
            { id: 'toolu_01Clock', type: 'function', function: { name: 'get_time', arguments: '' } },
          ],
        },
        { role: 'tool', tool_call_id: 'toolu_01Clock', content: '12:00' },
        {
          role: 'assistant',
          content: '',
          refusal: null,
          tool_calls: [
            { id: 'toolu_02Clock', type: 'function', function: { name: 'get_time', arguments: '{}' } },
          ],
        },
      ]),
      body: body({}, [
        { role: 'user', content: 'What time is it?' },
        {
          role: 'assistant',
          content: [
            { type: 'text', text: 'Let me look.' },
            { type: 'tool_use', id: 'toolu_01Clock', name: 'get_time', input: {} },
          ],
        },
        { role: 'user', content: [{ type: 'tool_result', tool_use_id: 'toolu_01Clock', content: '12:00' }] },
        {
          role: 'assistant',
          content: [{ type: 'tool_use', id: 'toolu_02Clock', name: 'get_time', input: {} }],
        },
      ]),
    },
    {
      name: 'response_format text asks for nothing',
      request: chat({ response_format: { type: 'text' } }),
      body: body({}),
    },
    {
      name: 'response_format json_object becomes a forced tool taking any object',
      request: chat({ response_format: { type: 'json_object' } }),
      body: body({
        tools: [
          {
            name: 'json_response',
            description: 'Respond with a JSON object.',
            input_schema: { type: 'object' },
          },
        ],
        tool_choice: { type: 'tool', name: 'json_response', disable_parallel_tool_use: true },
      }),
    },
    {
      name: 'response_format json_schema becomes a forced tool with that schema',
      request: chat({
        response_format: {
          type: 'json_schema',
          json_schema: {
            name: 'weather',
            description: 'A city forecast.',
            schema: WEATHER_SCHEMA,
            strict: true,
          },
        },
      }),
      body: body({
        tools: [
          {
            name: 'json_response',
            description: "Respond with the 'weather' JSON object. A city forecast.",
            input_schema: WEATHER_SCHEMA,
            strict: true,
          },
        ],
        tool_choice: { type: 'tool', name: 'json_response', disable_parallel_tool_use: true },
      }),
    },
    {
      name: 'response_format json_schema without a schema takes any object',
      request: chat({ response_format: { type: 'json_schema', json_schema: { name: 'anything' } } }),
      body: body({
        tools: [
          {
            name: 'json_response',
            description: "Respond with the 'anything' JSON object.",
            input_schema: { type: 'object' },
          },
        ],
        tool_choice: { type: 'tool', name: 'json_response', disable_parallel_tool_use: true },
      }),
    },
  ]

  it.each(cases)('$name', ({ request, body: expected }) => {
    expect(anthropicCodec.toProviderRequest(request)).toStrictEqual({ path: '/v1/messages', body: expected })
  })

  const USER_PARTS = (part: unknown) => [{ role: 'user', content: [part] }]
  const unsupported = 'Request cannot be translated for this provider: '
  const refusals: { name: string; request: ChatRequest; message: string }[] = [
    { name: 'n above 1', request: chat({ n: 2 }), message: 'n: Anthropic returns one choice per request' },
    {
      name: 'seed',
      request: chat({ seed: 42 }),
      message: 'seed: Anthropic has no sampling seed, so results cannot be reproduced',
    },
    {
      name: 'logprobs',
      request: chat({ logprobs: true }),
      message: 'logprobs: Anthropic does not return log probabilities',
    },
    {
      name: 'top_logprobs',
      request: chat({ top_logprobs: 3 }),
      message: 'top_logprobs: Anthropic does not return log probabilities',
    },
    {
      name: 'presence_penalty',
      request: chat({ presence_penalty: 0.5 }),
      message: 'presence_penalty: Anthropic has no presence penalty',
    },
    {
      name: 'frequency_penalty',
      request: chat({ frequency_penalty: -1 }),
      message: 'frequency_penalty: Anthropic has no frequency penalty',
    },
    {
      name: 'logit_bias',
      request: chat({ logit_bias: { '50256': -100 } }),
      message: 'logit_bias: Anthropic has no logit bias',
    },
    { name: 'store', request: chat({ store: true }), message: 'store: Anthropic does not store completions' },
    {
      name: 'an OpenAI parameter with no counterpart',
      request: chat({ reasoning_effort: 'high' }),
      message: 'reasoning_effort: has no Anthropic equivalent',
    },
    {
      name: 'temperature above 1',
      request: chat({ temperature: 1.5 }),
      message: "temperature 1.5 is above Anthropic's maximum of 1",
    },
    {
      name: 'audio input',
      request: chat({}, USER_PARTS({ type: 'input_audio', input_audio: { data: 'UklGR', format: 'wav' } })),
      message: 'messages[0].content[0]: Anthropic does not accept audio input',
    },
    {
      name: 'file parts',
      request: chat({}, USER_PARTS({ type: 'file', file: { file_id: 'file-abc' } })),
      message: 'messages[0].content[0]: file parts are not translated to Anthropic documents',
    },
    {
      name: 'an unknown part type',
      request: chat({}, USER_PARTS({ type: 'video_url', video_url: { url: 'https://example.com/v.mp4' } })),
      message: "messages[0].content[0]: content part type 'video_url' has no Anthropic equivalent",
    },
    {
      name: 'image detail',
      request: chat(
        {},
        USER_PARTS({ type: 'image_url', image_url: { url: 'https://example.com/a.png', detail: 'high' } }),
      ),
      message: "messages[0].content[0].image_url.detail 'high': Anthropic has no image detail setting",
    },
    {
      name: 'an image type Anthropic cannot read',
      request: chat({}, USER_PARTS({ type: 'image_url', image_url: { url: 'data:image/bmp;base64,Qk0=' } })),
      message:
        "messages[0].content[0]: image type 'image/bmp' is not one Anthropic reads (jpeg, png, gif, webp)",
    },
    {
      name: 'a data URL that is not base64',
      request: chat(
        {},
        USER_PARTS({ type: 'image_url', image_url: { url: 'data:image/svg+xml,%3Csvg%3E' } }),
      ),
      message: 'messages[0].content[0]: only base64 data URLs can be sent to Anthropic',
    },
    {
      name: 'an image in a system message',
      request: chat({}, [
        { role: 'system', content: [{ type: 'image_url', image_url: { url: 'https://example.com/a.png' } }] },
        { role: 'user', content: 'Hi' },
      ]),
      message: 'messages[0].content[0]: system prompts take text parts only',
    },
    {
      name: 'a refusal part in an assistant message',
      request: chat({}, [
        { role: 'user', content: 'Hi' },
        { role: 'assistant', content: [{ type: 'refusal', refusal: 'No.' }] },
      ]),
      message: 'messages[1].content[0]: assistant messages take text parts only',
    },
    {
      name: 'a legacy function_call on an assistant message',
      request: chat({}, [
        { role: 'user', content: 'Hi' },
        { role: 'assistant', content: null, function_call: { name: 'f', arguments: '{}' } },
      ]),
      message: 'messages[1].function_call has no Anthropic equivalent',
    },
    {
      name: 'a tool call that is not a function call',
      request: chat({}, [
        { role: 'user', content: 'Hi' },
        {
          role: 'assistant',
          tool_calls: [{ id: 'c1', type: 'custom', custom: { name: 'f', input: 'x' }, function: {} }],
        },
      ]),
      message: "messages[1].tool_calls[0]: tool call type 'custom' has no Anthropic equivalent",
    },
    {
      name: 'a tool that is not a function',
      request: chat({ tools: [{ type: 'custom', custom: { name: 'grammar' } }] }),
      message: "tools[0]: tool type 'custom' has no Anthropic equivalent",
    },
    {
      name: 'a tool named like the JSON-mode tool',
      request: chat({ tools: [{ type: 'function', function: { name: 'json_response' } }] }),
      message: "tools[0]: the name 'json_response' is reserved for JSON mode",
    },
    {
      name: 'tool_choice allowed_tools',
      request: chat({
        tools: [WEATHER_TOOL],
        tool_choice: { type: 'allowed_tools', allowed_tools: { mode: 'auto', tools: [] } },
      }),
      message:
        'tool_choice {"type":"allowed_tools","allowed_tools":{"mode":"auto","tools":[]}} has no Anthropic equivalent',
    },
    {
      name: 'JSON mode together with tools',
      request: chat({ tools: [WEATHER_TOOL], response_format: { type: 'json_object' } }),
      message:
        'response_format: JSON mode is a forced tool on Anthropic, so it cannot be combined with tools',
    },
    {
      name: 'a JSON schema whose root is not an object',
      request: chat({
        response_format: { type: 'json_schema', json_schema: { name: 'list', schema: { type: 'array' } } },
      }),
      message: 'response_format.json_schema.schema must have type object: Anthropic tool inputs are objects',
    },
    {
      name: 'an unknown response_format type',
      request: chat({ response_format: { type: 'grammar' } }),
      message: "response_format type 'grammar' has no Anthropic equivalent",
    },
  ]

  it.each(refusals)('refuses $name', ({ request, message }) => {
    expect(thrown(() => anthropicCodec.toProviderRequest(request))).toStrictEqual({
      key: 'UNSUPPORTED_PARAMETER',
      message: `${unsupported}${message}`,
    })
  })

  const invalidBodies: { name: string; request: ChatRequest; message: string }[] = [
    {
      name: 'a tool message without tool_call_id',
      request: chat({}, [{ role: 'tool', content: '12:00' }]),
      message: 'messages[0]: a tool message needs a tool_call_id',
    },
    {
      name: 'tool call arguments that are not JSON',
      request: chat({}, [
        {
          role: 'assistant',
          tool_calls: [{ id: 'c1', type: 'function', function: { name: 'f', arguments: '{loc' } }],
        },
      ]),
      message: 'messages[0].tool_calls[0].function.arguments is not valid JSON',
    },
    {
      name: 'tool call arguments that are not an object',
      request: chat({}, [
        {
          role: 'assistant',
          tool_calls: [{ id: 'c1', type: 'function', function: { name: 'f', arguments: '[1]' } }],
        },
      ]),
      message: 'messages[0].tool_calls[0].function.arguments must be a JSON object',
    },
    { name: 'no messages', request: chat({}, []), message: 'messages must be a non-empty array' },
    {
      name: 'an unknown role',
      request: chat({}, [{ role: 'function', content: 'x' }]),
      message: "messages[0].role 'function' is not a chat role",
    },
    {
      name: 'user content that is neither text nor parts',
      request: chat({}, [{ role: 'user', content: null }]),
      message: 'messages[0].content must be a string or an array of parts',
    },
    {
      name: 'an image URL that is neither http(s) nor data',
      request: chat({}, USER_PARTS({ type: 'image_url', image_url: { url: 'ftp://example.com/a.png' } })),
      message: 'messages[0].content[0].image_url.url must be an http(s) or data URL',
    },
    {
      name: 'a stop that is not text',
      request: chat({ stop: 5 }),
      message: 'stop must be a string or an array of strings',
    },
    {
      name: 'a json_schema without a name',
      request: chat({ response_format: { type: 'json_schema', json_schema: {} } }),
      message: 'response_format.json_schema.name must be a string',
    },
    {
      name: 'a named tool_choice without a name',
      request: chat({ tools: [WEATHER_TOOL], tool_choice: { type: 'function', function: {} } }),
      message: 'tool_choice.function.name must be a string',
    },
  ]

  it.each(invalidBodies)('rejects $name', ({ request, message }) => {
    expect(thrown(() => anthropicCodec.toProviderRequest(request))).toStrictEqual({
      key: 'INVALID_REQUEST_BODY',
      message: `Invalid request body: ${message}`,
    })
  })
})

function completion(
  message: ChatCompletion['choices'][number]['message'],
  finish_reason: FinishReason,
  usage: Usage,
): ChatCompletion {
  return {
    ...META,
    object: 'chat.completion',
    choices: [{ index: 0, message, finish_reason, logprobs: null }],
    usage,
  }
}

function usage(prompt: number, completionTokens: number, cached = 0): Usage {
  return {
    prompt_tokens: prompt,
    completion_tokens: completionTokens,
    total_tokens: prompt + completionTokens,
    prompt_tokens_details: { cached_tokens: cached },
  }
}

describe('anthropicCodec.fromProviderResponse', () => {
  const text = (content: string | null) => ({ role: 'assistant' as const, content, refusal: null })
  const cases: { name: string; json: unknown; completion: ChatCompletion }[] = [
    {
      name: 'a text answer',
      json: recorded.textMessage,
      completion: completion(text('Hello! How can I help you today?'), 'stop', usage(12, 12)),
    },
    {
      name: 'text blocks join; cache reads and writes count as prompt tokens',
      json: recorded.cachedTextMessage,
      completion: completion(text('The contract ends on 31 March.'), 'stop', usage(21 + 188 + 2051, 9, 2051)),
    },
    {
      name: 'text and a tool call',
      json: recorded.toolUseMessage,
      completion: completion(
        {
          ...text("I'll check the current weather in San Francisco for you."),
          tool_calls: [
            {
              id: 'toolu_01A09q90qw90lq917835lq9',
              type: 'function',
              function: {
                name: 'get_weather',
                arguments: '{"location":"San Francisco, CA","unit":"celsius"}',
              },
            },
          ],
        },
        'tool_calls',
        usage(384, 92),
      ),
    },
    {
      name: 'parallel tool calls without text have null content',
      json: recorded.parallelToolUseMessage,
      completion: completion(
        {
          ...text(null),
          tool_calls: [
            {
              id: 'toolu_01Paris',
              type: 'function',
              function: { name: 'get_weather', arguments: '{"location":"Paris"}' },
            },
            {
              id: 'toolu_01Tokyo',
              type: 'function',
              function: { name: 'get_weather', arguments: '{"location":"Tokyo"}' },
            },
            { id: 'toolu_01Clock', type: 'function', function: { name: 'get_time', arguments: '{}' } },
          ],
        },
        'tool_calls',
        usage(420, 151),
      ),
    },
    {
      name: "the JSON-mode tool's input is the content, and the answer simply stopped",
      json: recorded.jsonModeMessage,
      completion: completion(
        text('{"city":"Paris","population":2102650,"landmarks":["Eiffel Tower","Louvre"]}'),
        'stop',
        usage(530, 48),
      ),
    },
    {
      name: 'max_tokens is length; thinking blocks are not content',
      json: recorded.maxTokensMessage,
      completion: completion(text('Here are the first'), 'length', usage(10, 5)),
    },
    {
      name: 'stop_sequence is stop',
      json: recorded.withStop('stop_sequence', 'END'),
      completion: completion(text('Hello! How can I help you today?'), 'stop', usage(12, 12)),
    },
    {
      name: 'refusal is content_filter',
      json: recorded.withStop('refusal'),
      completion: completion(text('Hello! How can I help you today?'), 'content_filter', usage(12, 12)),
    },
    {
      name: 'pause_turn is stop',
      json: recorded.withStop('pause_turn'),
      completion: completion(text('Hello! How can I help you today?'), 'stop', usage(12, 12)),
    },
    {
      name: 'model_context_window_exceeded is length',
      json: recorded.withStop('model_context_window_exceeded'),
      completion: completion(text('Hello! How can I help you today?'), 'length', usage(12, 12)),
    },
    {
      name: 'an empty answer has empty content',
      json: { ...recorded.textMessage, content: [] },
      completion: completion(text(''), 'stop', usage(12, 12)),
    },
  ]

  it.each(cases)('$name', ({ json, completion: expected }) => {
    expect(anthropicCodec.fromProviderResponse(json, META)).toStrictEqual(expected)
  })

  const unusable: { name: string; json: unknown; message: string }[] = [
    { name: 'not an object', json: 'Bad Gateway', message: 'the body is not a JSON object' },
    {
      name: 'an error body',
      json: recorded.errorBodies.overloaded,
      message: 'overloaded_error: Overloaded',
    },
    {
      name: 'no content array',
      json: { ...recorded.textMessage, content: null },
      message: 'there is no content array',
    },
    {
      name: 'a tool_use block without input',
      json: { ...recorded.textMessage, content: [{ type: 'tool_use', id: 'toolu_1', name: 'f' }] },
      message: 'a tool_use block lacks id, name or input',
    },
    {
      name: 'a text block without text',
      json: { ...recorded.textMessage, content: [{ type: 'text' }] },
      message: 'a text block has no text',
    },
  ]

  it.each(unusable)('refuses $name', ({ json, message }) => {
    expect(thrown(() => anthropicCodec.fromProviderResponse(json, META))).toStrictEqual({
      key: 'INVALID_PROVIDER_RESPONSE',
      message: `Provider response could not be read: Anthropic message: ${message}`,
    })
  })
})

describe('anthropicCodec.fromProviderError', () => {
  const kept = (message: string, type: string, code = type): OpenAIErrorBody => ({
    error: { message, type, param: null, code },
  })
  const cases: { name: string; status: number; json: unknown; body: OpenAIErrorBody }[] = [
    {
      name: 'invalid_request_error',
      status: 400,
      json: recorded.errorBodies.invalidRequest,
      body: kept('max_tokens: Field required', 'invalid_request_error'),
    },
    {
      name: 'authentication_error',
      status: 401,
      json: recorded.errorBodies.authentication,
      body: kept('invalid x-api-key', 'authentication_error'),
    },
    {
      name: 'permission_error',
      status: 403,
      json: recorded.errorBodies.permission,
      body: kept('Your API key does not have permission to use the specified resource.', 'permission_error'),
    },
    {
      name: 'not_found_error',
      status: 404,
      json: recorded.errorBodies.notFound,
      body: kept('model: claude-sonnet-9', 'not_found_error'),
    },
    {
      name: 'request_too_large reads as an invalid request',
      status: 413,
      json: recorded.errorBodies.tooLarge,
      body: kept(
        'Request exceeds the maximum allowed number of bytes.',
        'invalid_request_error',
        'request_too_large',
      ),
    },
    {
      name: 'rate_limit_error',
      status: 429,
      json: recorded.errorBodies.rateLimit,
      body: kept(
        'This request would exceed the rate limit for your organization of 50 requests per minute.',
        'rate_limit_error',
      ),
    },
    {
      name: 'api_error',
      status: 500,
      json: recorded.errorBodies.api,
      body: kept('Internal server error', 'api_error'),
    },
    {
      name: 'overloaded_error',
      status: 529,
      json: recorded.errorBodies.overloaded,
      body: kept('Overloaded', 'overloaded_error'),
    },
    {
      name: 'an Anthropic type unknown here takes its type from the status',
      status: 402,
      json: recorded.errorBodies.billing,
      body: kept(
        'Your credit balance is too low to access the Anthropic API.',
        'invalid_request_error',
        'billing_error',
      ),
    },
    {
      name: 'a body that is not an Anthropic error',
      status: 502,
      json: '<html>Bad Gateway</html>',
      body: {
        error: {
          message: 'Anthropic answered HTTP 502 without a readable error',
          type: 'api_error',
          param: null,
          code: null,
        },
      },
    },
    {
      name: 'no body at all on 503',
      status: 503,
      json: undefined,
      body: {
        error: {
          message: 'Anthropic answered HTTP 503 without a readable error',
          type: 'overloaded_error',
          param: null,
          code: null,
        },
      },
    },
  ]

  it.each(cases)('$name', ({ status, json, body: expected }) => {
    expect(anthropicCodec.fromProviderError(status, json)).toStrictEqual(expected)
  })
})

describe('anthropicCodec.streamTranslator', () => {
  type Delta = ChatCompletionChunk['choices'][number]['delta']
  type ErrorDetail = OpenAIErrorBody['error']

  function chunk(delta: Delta, finish_reason: FinishReason | null = null): ChatCompletionChunk {
    return {
      ...META,
      object: 'chat.completion.chunk',
      choices: [{ index: 0, delta, finish_reason, logprobs: null }],
    }
  }
  const role = chunk({ role: 'assistant', content: '' })
  const content = (text: string) => chunk({ content: text })
  const call = (index: number, id: string, name: string) =>
    chunk({
      tool_calls: [
        { index, id, type: 'function', function: { name, arguments: '' } } satisfies ToolCallDelta,
      ],
    })
  const args = (index: number, piece: string) =>
    chunk({ tool_calls: [{ index, function: { arguments: piece } }] })
  const finish = (reason: FinishReason) => chunk({}, reason)
  const usageChunk = (prompt: number, completionTokens: number, cached = 0): ChatCompletionChunk => ({
    ...META,
    object: 'chat.completion.chunk',
    choices: [],
    usage: usage(prompt, completionTokens, cached),
  })

  function withoutMessageStop(sse: string): string {
    const cut = sse.replace(/event: message_stop\r?\ndata: [^\n]*\r?\n\r?\n/, '')
    if (cut === sse) throw new Error('the recorded stream has no message_stop to take out')
    return cut
  }

  const cases: {
    name: string
    sse: string
    chunks: ChatCompletionChunk[]
    errors?: ErrorDetail[]
    complete: boolean
    usage: ChatCompletionChunk
  }[] = [
    {
      name: 'a text answer; ping says nothing',
      sse: recorded.textStream,
      chunks: [role, content('Hello'), content('! How can I help?'), finish('stop')],
      complete: true,
      usage: usageChunk(125, 15, 100),
    },
    {
      name: 'a text answer that ends cleanly after its stop reason, without message_stop, is whole',
      sse: withoutMessageStop(recorded.textStream),
      chunks: [role, content('Hello'), content('! How can I help?'), finish('stop')],
      complete: true,
      usage: usageChunk(125, 15, 100),
    },
    {
      name: 'text then a tool call whose input arrives split',
      sse: recorded.toolStream,
      chunks: [
        role,
        content('Okay, let me check.'),
        call(0, 'toolu_01T1x1fJ34qAmk2tNTrN7Up6', 'get_weather'),
        args(0, '{"location":'),
        args(0, ' "San Fra'),
        args(0, 'ncisco, CA"}'),
        finish('tool_calls'),
      ],
      complete: true,
      usage: usageChunk(472, 89),
    },
    {
      name: 'parallel tool calls are numbered among tool calls; a call without input gets {}',
      sse: recorded.parallelToolStream,
      chunks: [
        role,
        call(0, 'toolu_01Paris', 'get_weather'),
        args(0, '{"locat'),
        args(0, 'ion": "Paris"}'),
        call(1, 'toolu_01Tokyo', 'get_weather'),
        args(1, '{"location": "Tokyo"}'),
        call(2, 'toolu_01Clock', 'get_time'),
        args(2, '{}'),
        finish('tool_calls'),
      ],
      complete: true,
      usage: usageChunk(420, 151),
    },
    {
      name: "the JSON-mode tool's input streams as content and the answer simply stops",
      sse: recorded.jsonModeStream,
      chunks: [role, content('{"city": "Pa'), content('ris"}'), finish('stop')],
      complete: true,
      usage: usageChunk(530, 20),
    },
    {
      name: 'thinking and unknown events say nothing; refusal is content_filter',
      sse: recorded.thinkingRefusalStream,
      chunks: [role, content("I can't help with that."), finish('content_filter')],
      complete: true,
      usage: usageChunk(30, 12),
    },
    {
      name: 'an error event becomes an OpenAI error and the stream stays incomplete',
      sse: recorded.overloadedStream,
      chunks: [role, content('Partial')],
      errors: [{ message: 'Overloaded', type: 'overloaded_error', param: null, code: 'overloaded_error' }],
      complete: false,
      usage: usageChunk(9, 1),
    },
    {
      name: 'data that is not JSON becomes an error, never a throw',
      sse: recorded.brokenStream,
      chunks: [role],
      errors: [
        {
          message:
            'Anthropic stream could not be read: event data is not a JSON object: {"type":"content_block_delta","index":0,"delta":{"type":"text_del',
          type: 'invalid_provider_response',
          param: null,
          code: null,
        },
      ],
      complete: false,
      usage: usageChunk(4, 1),
    },
  ]

  function run(sse: string, includeUsage: boolean) {
    const translator = anthropicCodec.streamTranslator({ ...META, includeUsage })
    const steps = events(sse).map((event) => translator.push(event))
    return {
      chunks: steps.flatMap((step) => step.chunks),
      errors: steps.flatMap((step) => (step.error ? [step.error] : [])),
      complete: translator.complete,
      finish: translator.finish(),
    }
  }

  it.each(cases)('$name', ({ sse, chunks, errors = [], complete }) => {
    expect(run(sse, false)).toStrictEqual({ chunks, errors, complete, finish: [] })
  })

  it.each(cases)('$name, with usage asked for', ({ sse, chunks, errors = [], complete, usage: last }) => {
    const withNullUsage = chunks.map((c) => ({ ...c, usage: null }))
    expect(run(sse, true)).toStrictEqual({ chunks: withNullUsage, errors, complete, finish: [last] })
  })

  it('reads the event type from the data when the event line is missing', () => {
    const translator = anthropicCodec.streamTranslator({ ...META, includeUsage: false })
    const step = translator.push({ event: undefined, data: '{"type":"message_stop"}' })
    expect(step).toStrictEqual({ chunks: [] })
    expect(translator.complete).toBe(true)
  })
})

describe('anthropicCodec', () => {
  it('has no embeddings, as Anthropic has none', () => {
    expect(anthropicCodec.embeddings).toBeUndefined()
  })
})
