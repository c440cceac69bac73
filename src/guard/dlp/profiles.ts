import { DETECTORS } from './detectors/index.js'
import type { DlpProfile } from './types.js'

/** Every built-in detector id, for a profile's `detector` entries. */
export const DLP_DETECTOR_IDS: readonly string[] = [...DETECTORS.keys()]

/** Frozen, so that no host can change what a built-in profile means for every other user of the module. */
const builtIn = (id: string, detectors: readonly string[]): DlpProfile =>
  Object.freeze({
    id,
    entries: Object.freeze(
      detectors.map((detector) =>
        Object.freeze({ id: detector, type: 'detector' as const, value: detector }),
      ),
    ),
  })

const CREDENTIALS = [
  'aws_access_key',
  'gcp_api_key',
  'azure_storage_key',
  'openai_key',
  'anthropic_key',
  'github_token',
  'gitlab_token',
  'slack_token',
  'jwt',
] as const

/**
 * The built-in profiles, named after the reference's predefined DLP families; each entry is the detector
 * of the same id. Refer to one by id in `compileDlpProfiles(['financial', ...])`, or copy its entries into
 * a profile of your own.
 * - `financial`: payment cards, IBANs, US routing numbers;
 * - `pii`: email addresses, phone numbers, IP addresses;
 * - `government_ids`: US Social Security numbers;
 * - `credentials`: cloud and service API keys and access tokens (JWTs included);
 * - `secrets`: `credentials` and private key blocks.
 */
export const DLP_PROFILES = {
  financial: builtIn('financial', ['credit_card', 'iban', 'us_routing_number']),
  pii: builtIn('pii', ['email', 'phone', 'ipv4', 'ipv6']),
  government_ids: builtIn('government_ids', ['us_ssn']),
  credentials: builtIn('credentials', CREDENTIALS),
  secrets: builtIn('secrets', [...CREDENTIALS, 'private_key_block']),
} as const satisfies Record<string, DlpProfile>

export type BuiltInDlpProfileId = keyof typeof DLP_PROFILES
