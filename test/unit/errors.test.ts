import { readFileSync } from 'node:fs'
import { describe, expect, it } from 'vitest'
import { ERRORS, errorBody, GatewayError, toGatewayError } from '../../src/errors.js'

const README = readFileSync(new URL('../../README.md', import.meta.url), 'utf8')

function readmeCodes(): Map<string, { code: number; status: number }> {
  const rows = new Map<string, { code: number; status: number }>()
  for (const match of README.matchAll(/^\|\s*(\d{4})\s*\|\s*(\d{3})\s*\|\s*`([A-Z_]+)`\s*\|/gm)) {
    rows.set(match[3]!, { code: Number(match[1]), status: Number(match[2]) })
  }
  return rows
}

describe('error catalog', () => {
  it('matches the README table in both directions', () => {
    const documented = readmeCodes()
    const catalog = new Map(
      Object.entries(ERRORS).map(([name, e]) => [name, { code: e.code, status: e.status }]),
    )
    expect(documented).toEqual(catalog)
  })

  it('never gives two errors the same code', () => {
    const codes = Object.values(ERRORS).map((e) => e.code)
    expect(new Set(codes).size).toBe(codes.length)
  })

  it("renders the reference's body", () => {
    const error = new GatewayError('INVALID_PROVIDER', "'x' is not a known provider")
    expect(JSON.parse(errorBody(error))).toEqual({
      success: false,
      result: [],
      messages: [],
      error: [{ code: 2008, message: "Invalid provider: 'x' is not a known provider" }],
      name: 'AiGatewayError',
      httpCode: 400,
      internalCode: 2008,
      message: "Invalid provider: 'x' is not a known provider",
    })
  })

  it('recognises gateway errors by brand and wraps anything else as INTERNAL', () => {
    const error = new GatewayError('BODY_TOO_LARGE')
    expect(error instanceof GatewayError).toBe(true)
    expect({ message: 'look-alike' } instanceof GatewayError).toBe(false)
    expect(toGatewayError(error)).toBe(error)
    const cause = new Error('boom')
    const wrapped = toGatewayError(cause)
    expect([wrapped.key, wrapped.status, wrapped.cause]).toEqual(['INTERNAL', 500, cause])
  })
})
