/** UTF-16 surrogate halves: a text cut or joined between the two of a pair holds a character no more. */

export function isHighSurrogate(code: number): boolean {
  return code >= 0xd800 && code <= 0xdbff
}

export function isLowSurrogate(code: number): boolean {
  return code >= 0xdc00 && code <= 0xdfff
}

// ES2024's String.prototype.isWellFormed (Node 20 and later), not yet in the ES2023 lib the build targets.
type WellFormedCheck = string & { isWellFormed(): boolean }

/** Whether `text` holds no surrogate half without its other half: a native check, no pattern run. */
export function isWellFormed(text: string): boolean {
  return (text as WellFormedCheck).isWellFormed()
}
