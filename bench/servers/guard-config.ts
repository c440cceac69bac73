// The guard step of `gateway-fastify-guard-rules` and `gateway-fastify-guard-model`, and what their requests
// carry, shared by the servers (which configure the step), the upstream (which answers the guard model and
// checks what it was sent) and the runner (which sends the requests and checks the answers). No side
// effects: the runner and the upstream import this module.

/**
 * The one finding the guard rows' requests carry: an email address, which the `pii` profile finds and the
 * policy redacts before the call. The gateway then answers with `cf-aig-dlp`, a header it sets only with
 * findings, so every answer shows that the step scanned its request; the upstream counts any request that
 * reaches it with the address still in it.
 */
export const GUARD_EMAIL = 'bench@example.com'
export const GUARD_PROMPT = `Say hello to the benchmark. Copy ${GUARD_EMAIL} on the answer.`
/** Set by the gateway only when DLP found something. */
export const DLP_HEADER = 'cf-aig-dlp'

/** The guard model as the upstream sees it, and as the classifier names it (on the gateway's `openai`). */
export const GUARD_MODEL = 'llama-guard-3-8b'
export const GUARD_CLASSIFIER_MODEL = `openai/${GUARD_MODEL}`

export type GuardClassifierKind = 'rules' | 'model'

/**
 * The window DLP holds back in a stream is never shorter than this (`holdBackChars` defaults to it, or to
 * the longest finding a profile can report when that is longer: 8192 with `secrets`, a private key block).
 */
export const MIN_HOLD_BACK_CHARS = 256

/**
 * DLP redacting what `financial`, `pii` and `secrets` find, in requests and answers, and guardrails whose
 * categories block in prompts and answers, decided by keyword and pattern rules or by Llama Guard. Nothing
 * in the bench's requests or answers is in any category, so nothing is refused; the email address is the
 * requests' one DLP finding.
 */
export function guardOptions(classifier: GuardClassifierKind) {
  return {
    dlp: {
      policies: [
        {
          id: 'bench-redact',
          profiles: ['financial', 'pii', 'secrets'],
          check: ['request' as const, 'response' as const],
          action: 'redact' as const,
        },
      ],
    },
    guardrails: {
      classifiers: [
        classifier === 'rules'
          ? {
              type: 'rules' as const,
              rules: [
                { category: 'S9' as const, keywords: ['nerve agent', 'sarin', 'enriched uranium'] },
                { category: 'S10' as const, keywords: ['racial slur'] },
                // One RE2 pattern: a case-insensitive phrase with flexible spacing.
                { category: 'S9' as const, patterns: ['(?i)\\bbuild\\s+an?\\s+(?:bomb|explosive)\\b'] },
              ],
            }
          : { type: 'llama-guard' as const, model: GUARD_CLASSIFIER_MODEL },
      ],
      prompt: { S9: 'block' as const, S10: 'block' as const },
      answer: { S9: 'block' as const, S10: 'block' as const },
    },
  }
}
