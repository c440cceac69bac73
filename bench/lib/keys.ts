import { createHash } from 'node:crypto'

/**
 * A provider key shaped like the provider's own: its fixed prefix, then random-looking base64url characters
 * up to the real key's length, the same in every run (derived from `name`). The gateway scans every answer
 * for the keys it sent, and what that scan costs depends on the key's characters: a word such as
 * `sk-bench`, made of the letters JSON text is full of, cost it some four times what a real key's random
 * characters do (2.4 µs against 0.6 a stream request, sampled with perf), a cost no user pays.
 */
export function providerKey(prefix: string, name: string, length: number): string {
  let random = ''
  for (let block = 0; prefix.length + random.length < length; block++)
    random += createHash('sha512').update(`${name} ${block}`).digest('base64url')
  return (prefix + random).slice(0, length)
}

/** OpenAI's project keys: `sk-proj-` and 156 characters. */
export const OPENAI_KEY = providerKey('sk-proj-', 'bench openai', 164)
/** Anthropic's API keys: `sk-ant-api03-` and 95 characters. */
export const ANTHROPIC_KEY = providerKey('sk-ant-api03-', 'bench anthropic', 108)
