/**
 * The `curl` commands the demos print. test/integration/examples.test.ts runs each printed command
 * against the running demo, so a command listed here has to work as printed.
 */
export interface DemoCommand {
  /** What the command shows, printed above it as a shell comment. */
  readonly title: string
  /** The command's lines; printed joined by ` \` and an indent, so a copied block runs as is. */
  readonly lines: readonly string[]
}

const JSON_HEADER = "-H 'content-type: application/json'"
const hello = (fields: string) => `'{${fields}"messages":[{"role":"user","content":"Hello!"}]}'`

/** Requests every example gateway answers: each provider's own API, a stream, the OpenAI-compatible API. */
export function tryCommands(base: string): DemoCommand[] {
  return [
    {
      title: 'OpenAI chat completion',
      lines: [
        `curl -s ${base}/openai/chat/completions ${JSON_HEADER}`,
        `-d ${hello('"model":"gpt-4o-mini",')}`,
      ],
    },
    {
      title: 'The same, streamed',
      lines: [
        `curl -sN ${base}/openai/chat/completions ${JSON_HEADER}`,
        `-d ${hello('"model":"gpt-4o-mini","stream":true,')}`,
      ],
    },
    {
      title: "Anthropic's Messages API",
      lines: [
        `curl -s ${base}/anthropic/v1/messages ${JSON_HEADER}`,
        `-d ${hello('"model":"claude-sonnet-4-5","max_tokens":64,')}`,
      ],
    },
    {
      title: "Google AI Studio's generateContent",
      lines: [
        `curl -s ${base}/google-ai-studio/v1beta/models/gemini-2.5-flash:generateContent`,
        `${JSON_HEADER} -d '{"contents":[{"parts":[{"text":"Hello!"}]}]}'`,
      ],
    },
    {
      title: `OpenAI-compatible API, answered by Anthropic (OpenAI SDKs: baseURL ${base}/compat)`,
      lines: [
        `curl -s ${base}/compat/chat/completions ${JSON_HEADER}`,
        `-d ${hello('"model":"anthropic/claude-sonnet-4-5",')}`,
      ],
    },
  ]
}

/** A request that asks to be cached, sent twice: the first answer comes from the provider, the second not. */
export function cacheCommand(base: string): DemoCommand {
  return {
    title: 'Cached for an hour: sent twice, the first answer is a MISS, the second a HIT',
    lines: [
      `for i in 1 2; do curl -si ${base}/openai/chat/completions -H 'cf-aig-cache-ttl: 3600'`,
      `${JSON_HEADER} -d ${hello('"model":"gpt-4o-mini",')} | grep -i cf-aig-cache-status; done`,
    ],
  }
}

/** The admin API: the request log the commands above wrote, and the stored provider keys. */
export function adminCommands(base: string, token: string | undefined): DemoCommand[] {
  const auth = token === undefined ? '' : ` -H "authorization: Bearer ${token}"`
  return [
    { title: 'The last five requests, as logged', lines: [`curl -s '${base}/logs?limit=5'${auth}`] },
    { title: 'Stored provider keys (masked)', lines: [`curl -s ${base}/keys${auth}`] },
  ]
}

/** The commands as printed: each under its title, indented. */
export function formatCommands(commands: readonly DemoCommand[]): string {
  return commands.map(({ title, lines }) => `  # ${title}\n  ${lines.join(' \\\n    ')}`).join('\n')
}
