import { abaValid, cardScheme, IBAN_LENGTHS, ibanValid, luhn } from '../checks.js'
import {
  type Detector,
  detector,
  hasContextBefore,
  NUMBER_AFTER,
  NUMBER_BEFORE,
  settledAfter,
} from './define.js'

/**
 * Payment card numbers: 13-19 digits, bare or in the groups cards are printed in (4-4-4-4, 4-4-4-4-3,
 * 4-6-5, 4-6-4, 4-4-4-x) with one kind of separator, space or dash, and not followed by another group
 * of four. Kept only when a scheme issues the
 * prefix at that length and the Luhn digit is right; one random digit run in about forty passes both.
 */
export const creditCard = detector({
  id: 'credit_card',
  description: 'Payment card numbers with a known IIN prefix and length and a valid Luhn check digit.',
  reach: 32,
  // A candidate is at most 23 digits and separators (4-4-4-4-3), all of them growing it.
  opening: String.raw`${NUMBER_BEFORE}\d[\d \-]{0,21}`,
  startReach: 23,
  // NUMBER_AFTER reads a separator and a digit (two units if astral) past the last digit.
  settled: settledAfter(String.raw`0-9 \-`, 3),
  pattern: new RegExp(
    NUMBER_BEFORE +
      // Grouped forms, not followed by a further group of four (a 20-digit serial), or 13-19 bare digits.
      String.raw`(?:(?:\d{4}([ \-])\d{4}\1\d{4}\1\d{4}(?:\1\d{3})?|\d{4}([ \-])\d{6}\2\d{4,5}|\d{4}([ \-])\d{4}\3\d{4}\3\d{1,3})(?![ \-]\d{4})|\d{13,19})` +
      NUMBER_AFTER,
    'gu',
  ),
  accept: (found) => {
    const digits = found.replace(/[ -]/g, '')
    return cardScheme(digits) !== undefined && luhn(digits)
  },
})

/**
 * IBANs, compact or printed in groups of four: the country's registered length and the mod-97 check.
 * Country code and letters must be upper case, as IBANs are printed.
 */
export const iban: Detector = {
  id: 'iban',
  description: 'IBANs of registered countries with the right length and a valid mod-97 check.',
  // 4 + 30 characters each with an optional space before it, then one character looked at.
  reach: 72,
  // Country, check digits, then up to 30 characters, each with an optional space: at most 64.
  opening: String.raw`(?<![\p{L}\p{N}_])[A-Z](?:[A-Z](?:\d(?:\d[ A-Z0-9]{0,59})?)?)?`,
  startReach: 64,
  // The groups grow by letters, digits and spaces; validation reads two characters past the number.
  settled: settledAfter('A-Z0-9 ', 2),
  pattern: /(?<![\p{L}\p{N}_])[A-Z]{2}\d{2}(?: ?[A-Z0-9]){11,30}/gu,
  validate: (match, text) => {
    const found = match[0]
    const length = IBAN_LENGTHS[found.slice(0, 2)]
    if (length === undefined) return undefined
    // Take exactly the country's length, with spaces only between groups of four, all or none of them.
    let compact = ''
    let spaces = 0
    let index = 0
    for (; index < found.length && compact.length < length; index++) {
      const char = found[index]!
      if (char === ' ') {
        if (compact.length % 4 !== 0) return undefined
        spaces++
      } else {
        compact += char
      }
    }
    if (compact.length !== length) return undefined
    if (spaces !== 0 && spaces !== Math.floor((length - 1) / 4)) return undefined
    const end = match.index + index
    if (/^[\p{L}\p{N}_]/u.test(text.slice(end, end + 2))) return undefined
    return ibanValid(compact) ? { start: match.index, end } : undefined
  },
}

/** Words that say a nine-digit number nearby is a routing number, also in names (`routing_number`). */
const ROUTING_WORDS = /(?<![a-z])(?:routing|aba|rtn|ach|transit|fedwire|wire)(?![a-z])/i

/**
 * ABA routing transit numbers: nine digits with an assigned first two digits and the 3-7-1 checksum, and a
 * routing word ("routing", "ABA", "RTN", "ACH", "transit", "wire") in the 48 characters before. About one
 * nine-digit number in 27 passes the checks alone, so without the words order numbers, zip+4 codes and
 * account numbers would be reported: the words trade recall on bare numbers for precision.
 */
export const usRoutingNumber = detector({
  id: 'us_routing_number',
  description: 'US ABA routing numbers (prefix ranges and 3-7-1 checksum) preceded by a routing word.',
  reach: 16,
  opening: String.raw`${NUMBER_BEFORE}\d{1,8}`,
  startReach: 9,
  // Nine digits exactly; NUMBER_AFTER reads up to three units past them.
  settled: settledAfter('', 3),
  pattern: new RegExp(`${NUMBER_BEFORE}\\d{9}${NUMBER_AFTER}`, 'gu'),
  accept: (found, match, text) => abaValid(found) && hasContextBefore(text, match.index, ROUTING_WORDS),
})
