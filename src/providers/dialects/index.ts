import type { Dialect } from '../types.js'
import { anthropicCodec } from './anthropic.js'
import { anthropicDialect } from './anthropic-dialect.js'
import { geminiCodec } from './gemini.js'
import { geminiDialect } from './gemini-dialect.js'
import { opaqueDialect, openaiDialect, workersAiDialect } from './openai-dialect.js'
import type { ChatCodec, DialectSpec } from './types.js'

export type { DialectSpec, UsageReader } from './types.js'

/** Every dialect's spec, built once at load. */
export const DIALECT_SPECS: Readonly<Record<Dialect, DialectSpec>> = {
  openai: openaiDialect,
  anthropic: anthropicDialect,
  gemini: geminiDialect,
  cohere: opaqueDialect('cohere'),
  'workers-ai': workersAiDialect,
  native: opaqueDialect('native'),
}

const NATIVE = DIALECT_SPECS.native

/**
 * What the gateway knows of a dialect. A name it does not know (a spec written as plain JavaScript) is
 * treated as `native`: nothing is read from or checked in its answers.
 *
 * @example
 * dialectOf('anthropic').stream('/v1/messages')?.terminator // 'event: message_stop'
 */
export function dialectOf(dialect: Dialect): DialectSpec {
  return DIALECT_SPECS[dialect] ?? NATIVE
}

/** Codecs for the dialects that are not OpenAI's; OpenAI-compatible providers need none. */
export const CODECS: Partial<Record<Dialect, ChatCodec>> = {
  anthropic: anthropicCodec,
  gemini: geminiCodec,
}
