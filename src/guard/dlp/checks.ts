/**
 * Check digits and number rules that turn a digit run into a finding. Pure functions over strings of
 * ASCII digits (separators already removed); each answers `false` rather than throwing.
 */

/**
 * The Luhn (mod 10) check that every payment card number carries in its last digit.
 *
 * @example
 * luhn('4111111111111111') // true
 * luhn('4111111111111112') // false
 */
export function luhn(digits: string): boolean {
  let sum = 0
  let double = false
  for (let index = digits.length - 1; index >= 0; index--) {
    let digit = digits.charCodeAt(index) - 48
    if (digit < 0 || digit > 9) return false
    if (double) {
      digit *= 2
      if (digit > 9) digit -= 9
    }
    sum += digit
    double = !double
  }
  return digits.length > 0 && sum % 10 === 0
}

/**
 * A payment card's scheme from its issuer identification number (IIN) prefix and length, or `undefined`
 * when no scheme issues that prefix at that length. Most 13-19 digit numbers that pass Luhn by chance
 * (order numbers, timestamps in milliseconds) start with a prefix no scheme uses, or have the wrong length.
 *
 * @example
 * cardScheme('378282246310005') // 'amex'
 * cardScheme('9111111111111111') // undefined
 */
export function cardScheme(digits: string): string | undefined {
  const length = digits.length
  const p2 = Number(digits.slice(0, 2))
  const p3 = Number(digits.slice(0, 3))
  const p4 = Number(digits.slice(0, 4))
  const p6 = Number(digits.slice(0, 6))
  if (digits[0] === '4') return length === 13 || length === 16 || length === 19 ? 'visa' : undefined
  if ((p2 >= 51 && p2 <= 55) || (p4 >= 2221 && p4 <= 2720)) return length === 16 ? 'mastercard' : undefined
  if (p2 === 34 || p2 === 37) return length === 15 ? 'amex' : undefined
  if (p4 >= 2200 && p4 <= 2204) return length >= 16 && length <= 19 ? 'mir' : undefined
  if (p4 === 6011 || (p3 >= 644 && p3 <= 649) || p2 === 65 || (p6 >= 622126 && p6 <= 622925)) {
    return length >= 16 && length <= 19 ? 'discover' : undefined
  }
  if (p2 === 62) return length >= 16 && length <= 19 ? 'unionpay' : undefined
  if (p4 >= 3528 && p4 <= 3589) return length >= 16 && length <= 19 ? 'jcb' : undefined
  if ((p3 >= 300 && p3 <= 305) || p2 === 36 || p2 === 38 || p2 === 39) {
    return length >= 14 && length <= 19 ? 'diners' : undefined
  }
  if ([5018, 5020, 5038, 5893, 6304, 6759, 6761, 6762, 6763].includes(p4)) {
    return length >= 13 && length <= 19 ? 'maestro' : undefined
  }
  return undefined
}

/**
 * IBAN lengths by country code, from the SWIFT IBAN registry. A country not listed issues no IBANs, so a
 * code such as `US` or `XX` is refused before the checksum.
 */
// biome-ignore format: a table reads better in rows
export const IBAN_LENGTHS: Readonly<Record<string, number>> = {
  AD: 24, AE: 23, AL: 28, AT: 20, AZ: 28, BA: 20, BE: 16, BG: 22, BH: 22, BI: 27, BR: 29, BY: 28,
  CH: 21, CR: 22, CY: 28, CZ: 24, DE: 22, DJ: 27, DK: 18, DO: 28, EE: 20, EG: 29, ES: 24, FI: 18,
  FK: 18, FO: 18, FR: 27, GB: 22, GE: 22, GI: 23, GL: 18, GR: 27, GT: 28, HN: 28, HR: 21, HU: 28,
  IE: 22, IL: 23, IQ: 23, IS: 26, IT: 27, JO: 30, KW: 30, KZ: 20, LB: 28, LC: 32, LI: 21, LT: 20,
  LU: 20, LV: 21, LY: 25, MC: 27, MD: 24, ME: 22, MK: 19, MN: 20, MR: 27, MT: 31, MU: 30, NI: 28,
  NL: 18, NO: 15, OM: 23, PK: 24, PL: 28, PS: 29, PT: 25, QA: 29, RO: 24, RS: 22, RU: 33, SA: 24,
  SC: 31, SD: 18, SE: 24, SI: 19, SK: 24, SM: 27, SO: 23, ST: 25, SV: 28, TL: 23, TN: 24, TR: 26,
  UA: 29, VA: 22, VG: 24, XK: 20, YE: 30,
}

/**
 * The ISO 13616 check of an IBAN without spaces: its country's length, then mod 97 of the rearranged
 * number (first four characters moved to the end, letters as 10-35) equal to 1.
 *
 * @example
 * ibanValid('GB82WEST12345698765432') // true
 * ibanValid('GB82WEST12345698765433') // false
 */
export function ibanValid(iban: string): boolean {
  if (IBAN_LENGTHS[iban.slice(0, 2)] !== iban.length) return false
  const rearranged = iban.slice(4) + iban.slice(0, 4)
  let remainder = 0
  for (const char of rearranged) {
    const code = char.charCodeAt(0)
    if (code >= 48 && code <= 57) remainder = (remainder * 10 + (code - 48)) % 97
    else if (code >= 65 && code <= 90) remainder = (remainder * 100 + (code - 55)) % 97
    else return false
  }
  return remainder === 1
}

/** Numbers printed in advertisements and on sample cards, or used as placeholders, never issued as SSNs. */
const REFUSED_SSNS = new Set(['078051120', '219099999', '457555462', '123456789'])

/**
 * The SSA's rules for a US Social Security number (nine digits): no area 000, 666 or 900-999, no group
 * 00, no serial 0000, and none of the numbers known from advertising.
 *
 * @example
 * ssnValid('536225489') // true
 * ssnValid('078051120') // false (the Woolworth wallet card)
 */
export function ssnValid(digits: string): boolean {
  if (!/^\d{9}$/.test(digits)) return false
  const area = Number(digits.slice(0, 3))
  if (area === 0 || area === 666 || area >= 900) return false
  if (digits.slice(3, 5) === '00' || digits.slice(5) === '0000') return false
  return !REFUSED_SSNS.has(digits)
}

/**
 * An ABA routing transit number: a first two digits the Federal Reserve assigns (00-12 banks, 21-32
 * thrifts, 61-72 electronic, 80 traveller's cheques) and the 3-7-1 weighted checksum.
 *
 * @example
 * abaValid('021000021') // true
 * abaValid('021000022') // false
 */
export function abaValid(digits: string): boolean {
  if (!/^\d{9}$/.test(digits) || digits === '000000000') return false
  const prefix = Number(digits.slice(0, 2))
  const prefixOk =
    prefix <= 12 || (prefix >= 21 && prefix <= 32) || (prefix >= 61 && prefix <= 72) || prefix === 80
  if (!prefixOk) return false
  const d = (index: number) => digits.charCodeAt(index) - 48
  const sum = 3 * (d(0) + d(3) + d(6)) + 7 * (d(1) + d(4) + d(7)) + (d(2) + d(5) + d(8))
  return sum % 10 === 0
}

/**
 * Decodes base64url (no padding needed) to text, or `undefined` when it is not base64url.
 *
 * @example
 * base64UrlDecode('eyJhbGciOiJIUzI1NiJ9') // '{"alg":"HS256"}'
 */
export function base64UrlDecode(text: string): string | undefined {
  if (!/^[A-Za-z0-9_-]*$/.test(text) || text.length % 4 === 1) return undefined
  return Buffer.from(text, 'base64url').toString('utf8')
}
