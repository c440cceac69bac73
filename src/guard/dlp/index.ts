/**
 * Data loss prevention: finding payment cards, bank and government numbers, personal data and secrets in
 * text, by built-in detectors (a pattern plus a validation such as Luhn or mod 97), keywords and RE2
 * patterns grouped in profiles, as the reference's DLP profiles are. Pure functions over strings: which
 * bodies to scan and what to do with findings (flag, block, redact) is the caller's.
 *
 * Limits, each documented where it is enforced:
 * - `scanText` reads at most `maxScanChars` (default 1 Mi characters) and reports `truncated` beyond.
 * - RE2 patterns: at most 1,024 characters and 10,000 compiled instructions; RE2 syntax only (no
 *   lookaround, no backreferences), so matching is linear in the input.
 * - Keywords: at most 256 characters; whole words only, case-insensitive.
 * - Stream scanner: text is released as soon as no finding can start in it; a candidate that has begun
 *   holds the text from its start until it is decided, for at most `holdBackChars` (at least the longest
 *   finding a built-in detector or keyword can report: 256 characters by default; 8,192 with private key
 *   blocks, 4,224 with JWTs). With an RE2 pattern the last `holdBackChars - 1` characters are held, and a
 *   match longer than that may be missed or cut short across chunks.
 * - Detectors report bounded spans: private key blocks up to 8,192 characters, JWTs up to about 4,200,
 *   email domains up to 185 characters; longer ones are cut short or not reported (see each detector).
 * - Detection is ASCII-centred: internationalised email addresses and non-ASCII digits are not reported.
 */
export { compileDlpProfiles, DEFAULT_MAX_SCAN_CHARS, MAX_DLP_ENTRIES, MAX_DLP_PROFILES } from './compile.js'
export { PRIVATE_KEY_MAX_CHARS } from './detectors/index.js'
export { type BuiltInDlpProfileId, DLP_DETECTOR_IDS, DLP_PROFILES } from './profiles.js'
export { redactText } from './redact.js'
export { scanText } from './scan.js'
export {
  createStreamScanner,
  DEFAULT_HOLD_BACK_CHARS,
  type DlpStreamOptions,
  type DlpStreamOutput,
  type DlpStreamScanner,
} from './stream.js'
export type {
  CompileDlpOptions,
  CompiledDlpProfiles,
  DlpEntry,
  DlpFinding,
  DlpMask,
  DlpProfile,
  DlpScanResult,
} from './types.js'
