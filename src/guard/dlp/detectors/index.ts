import type { Detector } from './define.js'
import { creditCard, iban, usRoutingNumber } from './financial.js'
import { email, ipv4, ipv6, phone, usSsn } from './personal.js'
import {
  anthropicKey,
  awsAccessKey,
  azureStorageKey,
  gcpApiKey,
  githubToken,
  gitlabToken,
  jwt,
  openaiKey,
  privateKeyBlock,
  slackToken,
} from './secrets.js'

export { CONTEXT_CHARS, type Detector } from './define.js'
export { PRIVATE_KEY_MAX_CHARS } from './secrets.js'

/** Every built-in detector by id. */
export const DETECTORS: ReadonlyMap<string, Detector> = new Map(
  [
    creditCard,
    iban,
    usRoutingNumber,
    usSsn,
    email,
    phone,
    ipv4,
    ipv6,
    awsAccessKey,
    gcpApiKey,
    azureStorageKey,
    openaiKey,
    anthropicKey,
    githubToken,
    gitlabToken,
    slackToken,
    privateKeyBlock,
    jwt,
  ].map((detector) => [detector.id, detector]),
)
