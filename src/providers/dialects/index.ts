import type { Dialect } from '../types.js'
import { anthropicCodec } from './anthropic.js'
import { geminiCodec } from './gemini.js'
import type { ChatCodec } from './types.js'

/** Codecs for the dialects that are not OpenAI's; OpenAI-compatible providers need none. */
export const CODECS: Partial<Record<Dialect, ChatCodec>> = {
  anthropic: anthropicCodec,
  gemini: geminiCodec,
}
