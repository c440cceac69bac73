import { ssnValid } from '../checks.js'
import type { DlpSpan } from '../types.js'
import {
  type Detector,
  detector,
  hasContextBefore,
  NUMBER_AFTER,
  NUMBER_BEFORE,
  settledAfter,
} from './define.js'

/** Words that say a bare nine-digit number nearby is a Social Security number. */
const SSN_WORDS = /(?<![a-z])(?:ssn|ss#|social\s+security|soc\.?\s*sec)(?![a-z])/i

/**
 * US Social Security numbers: `123-45-6789` or `123 45 6789` (one separator, used twice), or nine bare
 * digits after an SSN word ("SSN", "social security") in the 48 characters before. The SSA's rules refuse
 * areas 000, 666 and 900-999, group 00, serial 0000 and the numbers known from advertising.
 */
export const usSsn = detector({
  id: 'us_ssn',
  description: 'US Social Security numbers that follow the SSA rules; bare nine digits need an SSN word.',
  reach: 16,
  opening: String.raw`${NUMBER_BEFORE}\d[\d \-]{0,9}`,
  startReach: 11,
  // The grouped form is tried first and fails within the number when the bare one matches.
  settled: settledAfter('', 3),
  pattern: new RegExp(`${NUMBER_BEFORE}(?:\\d{3}([ \\-])\\d{2}\\1\\d{4}|\\d{9})${NUMBER_AFTER}`, 'gu'),
  accept: (found, match, text) => {
    const digits = found.replace(/[ -]/g, '')
    if (!ssnValid(digits)) return false
    return found.length === 11 || hasContextBefore(text, match.index, SSN_WORDS)
  },
})

const EMAIL_TAIL = /^[\p{L}\p{N}_@]|^[.-][A-Za-z0-9]/u

/**
 * Email addresses with an ASCII local part (at most 64 characters, apostrophes allowed) and a domain of
 * dot-separated labels ending in a letters-only top-level domain. The domain is matched as one character run and checked in
 * code, which keeps the pattern free of nested quantifiers. Refused: consecutive or trailing dots in the
 * local part, labels starting or ending with `-`, and image names such as `icon@2x.png`. Domains longer
 * than 185 characters and internationalised addresses are not reported.
 */
export const email: Detector = {
  id: 'email',
  description: 'Email addresses with a valid local part and a dotted domain ending in a top-level domain.',
  reach: 256,
  // A local part and its `@`; once a domain character follows, the pattern matches.
  opening: String.raw`(?<![\p{L}\p{N}_.%+-])[A-Za-z0-9][A-Za-z0-9._%+'-]{0,63}@?`,
  startReach: 66,
  // The local part ends at the first `@`, so only the domain run can grow; validation reads two past it.
  settled: settledAfter(String.raw`A-Za-z0-9.\-`, 2),
  pattern: /(?<![\p{L}\p{N}_.%+-])[A-Za-z0-9][A-Za-z0-9._%+'-]{0,63}@[A-Za-z0-9][A-Za-z0-9.-]{0,184}/gu,
  validate: (match, text) => {
    const found = match[0]
    const at = found.indexOf('@')
    const local = found.slice(0, at)
    if (local.includes('..') || local.endsWith('.')) return undefined
    // A domain ends where its run does, less the punctuation that ends a sentence.
    let domain = found.slice(at + 1)
    while (domain.endsWith('.') || domain.endsWith('-')) domain = domain.slice(0, -1)
    const end = match.index + at + 1 + domain.length
    if (EMAIL_TAIL.test(text.slice(end, end + 2))) return undefined
    const labels = domain.split('.')
    const tld = labels.at(-1)!
    if (labels.length < 2 || !/^[A-Za-z]{2,24}$/.test(tld)) return undefined
    for (const label of labels) {
      if (label === '' || label.length > 63 || label.startsWith('-') || label.endsWith('-')) return undefined
    }
    if (/^\d+x$/.test(labels[0]!)) return undefined
    return { start: match.index, end }
  },
}

/**
 * Phone numbers in E.164 (`+14155552671`) and common written forms: international (`+44 20 7946 0958`,
 * `+1 (415) 555-2671`, `+44 (0)20 ...`), North American (`(415) 555-2671`, `415-555-2671`, `1-800-555-0199`)
 * and trunk-prefixed national forms (`020 7946 0958`, `01 42 68 53 00`). National forms need separators,
 * so bare digit runs (timestamps, order and card numbers) never match. A number right after a digit and a
 * separator is refused, as it is more often a group of a longer number (a card number, a serial) than a
 * phone number; so is the second of two numbers separated only by a space.
 * North American numbers follow the NANP rules (area and exchange start with 2-9, no N11 area).
 */
/** Not after a word character or `+`, nor a word character and a separator, nor a digit and a space. */
const PHONE_BEFORE = String.raw`(?<![\p{L}\p{N}_+]|[\p{L}\p{N}][.\-/]|\p{N} )`

export const phone: Detector = {
  id: 'phone',
  description: 'Phone numbers in E.164, international, North American and trunk-prefixed national forms.',
  reach: 64,
  // The longest form, international with a bracketed area and five more groups, is 54 characters.
  opening: String.raw`${PHONE_BEFORE}[+(\d][\d .\-()]{0,52}`,
  startReach: 54,
  // Every form is made of digits, `+`, brackets and separators; the lookahead reads three units past.
  settled: settledAfter(String.raw`0-9 .\-()+`, 3),
  pattern: new RegExp(
    PHONE_BEFORE +
      '(?:' +
      String.raw`(?<e164>\+[1-9]\d{7,14})` +
      String.raw`|(?<intl>\+[1-9]\d{0,3}(?:[ .\-]?\(\d{1,4}\)[ .\-]?\d{1,6}|[ .\-]\d{1,6})(?:[ .\-]\d{1,6}){0,5})` +
      String.raw`|(?<nanp>(?:1[ .\-])?(?:\(\d{3}\) ?|\d{3}[ .\-])\d{3}[ .\-]\d{4})` +
      String.raw`|(?<trunk>0[1-9]\d{0,3}[ \-]\d{3,4}[ \-]?\d{3,4}|0[1-9](?:[ .]\d{2}){4})` +
      String.raw`)(?![\p{L}\p{N}_]|[.\-/][\p{L}\p{N}])`,
    'gu',
  ),
  validate: (match) => {
    const found = match[0]
    const digits = found.replace(/\D/g, '')
    const groups = match.groups!
    const span: DlpSpan = { start: match.index, end: match.index + found.length }
    if (groups.e164 !== undefined || groups.intl !== undefined) {
      if (digits.length < 9 || digits.length > 15) return undefined
      if (digits.startsWith('1')) return digits.length === 11 && nanpValid(digits.slice(1)) ? span : undefined
      return span
    }
    if (groups.nanp !== undefined) {
      const national = digits.length === 11 ? digits.slice(1) : digits
      if (!nanpValid(national)) return undefined
      // 415-555-2671, 415.555.2671, 415 555-2671; not 415.555-2671.
      const separators = found.replace(/^1[ .-]/, '').replace(/[\d()]/g, '')
      const [first, second] = [separators.at(-2), separators.at(-1)]
      if (!found.includes('(') && first !== second && !(first === ' ' && second === '-')) return undefined
      return span
    }
    if (digits.length < 9 || digits.length > 11) return undefined
    const separators = new Set(found.replace(/\d/g, ''))
    return separators.size === 1 ? span : undefined
  },
}

/** NANP: area code and exchange start with 2-9; N11 codes are service numbers, not areas. */
function nanpValid(ten: string): boolean {
  return /^[2-9]\d{2}[2-9]\d{6}$/.test(ten) && ten.slice(1, 3) !== '11'
}

const OCTET = String.raw`(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)`
const IPV4_BEFORE = String.raw`(?<![\p{L}\p{N}_.]|\p{L}-)`

/**
 * IPv4 addresses in dotted-quad form: four octets of at most 255 without leading zeros, not part of a
 * longer dotted number (version strings such as `1.2.3.4.5`, OIDs) nor after a letter (`v1.2.3.4`) or a
 * word and a dash (`release-1.2.3.4`).
 */
export const ipv4 = detector({
  id: 'ipv4',
  description: 'IPv4 dotted quads with octets up to 255, not inside longer dotted numbers.',
  reach: 20,
  opening: String.raw`${IPV4_BEFORE}\d[\d.]{0,13}`,
  startReach: 15,
  settled: settledAfter('0-9.', 3),
  pattern: new RegExp(String.raw`${IPV4_BEFORE}(?:${OCTET}\.){3}${OCTET}(?![\p{L}\p{N}_]|\.\p{N})`, 'gu'),
})

/**
 * IPv6 addresses: eight groups of one to four hex digits, or fewer with one `::`, optionally ending in a
 * dotted quad (`::ffff:192.0.2.1`). Refused, as they are more often something else: times (`10:30:45`),
 * MAC and EUI-64 addresses (every group two digits), and compressed forms without a decimal digit or with
 * a single group (`dead::beef`, `a::b` in code), except the loopback `::1`.
 */
export const ipv6 = detector({
  id: 'ipv6',
  description: 'IPv6 addresses (full, compressed, or with an IPv4 tail), not times or MAC addresses.',
  reach: 56,
  // Up to seven groups with their colons and a dotted quad: 50 characters; a colon within the first five.
  opening: String.raw`(?<![\p{L}\p{N}_:.])(?:[0-9A-Fa-f]{1,4}|[0-9A-Fa-f]{0,4}:[0-9A-Fa-f:.]{0,44})`,
  startReach: 50,
  settled: settledAfter('0-9A-Fa-f:.', 3),
  pattern: new RegExp(
    String.raw`(?<![\p{L}\p{N}_:.])(?:[0-9A-Fa-f]{0,4}:){2,7}(?:(?:${OCTET}\.){3}${OCTET}|[0-9A-Fa-f]{1,4})?(?![\p{L}\p{N}_:]|\.\p{N})`,
    'gu',
  ),
  accept: (found) => ipv6Valid(found),
})

/**
 * Whether a candidate is an IPv6 address worth reporting; see `ipv6`.
 *
 * @example
 * ipv6Valid('2001:db8::1') // true
 * ipv6Valid('10:30:45') // false
 */
export function ipv6Valid(text: string): boolean {
  if (text === '::1') return true
  let body = text
  let extra = 0
  const lastColon = text.lastIndexOf(':')
  if (text.includes('.')) {
    body = text.slice(0, lastColon + 1)
    if (!body.endsWith('::')) body = body.slice(0, -1)
    extra = 2
  }
  if (body.includes(':::')) return false
  const halves = body.split('::')
  if (halves.length > 2) return false
  const groupsOf = (half: string) => (half === '' ? [] : half.split(':'))
  const groups = halves.flatMap(groupsOf)
  if (groups.some((group) => !/^[0-9A-Fa-f]{1,4}$/.test(group))) return false
  const count = groups.length + extra
  if (halves.length === 1) {
    if (count !== 8) return false
    // Colon-separated bytes: a MAC or EUI-64 address.
    return !groups.every((group) => group.length === 2)
  }
  if (count > 7) return false
  return count >= 2 && /\d/.test(text)
}
