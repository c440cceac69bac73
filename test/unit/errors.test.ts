import { readFileSync } from 'node:fs'
import { describe, expect, it, vi } from 'vitest'
import {
  ERRORS,
  errorBody,
  GatewayError,
  GatewayOptionsError,
  KeyStoreError,
  LIBRARY_ERRORS,
  LogQueryError,
  LogRecordError,
  renderError,
  StoreTimeoutError,
  toGatewayError,
} from '../../src/errors.js'
import * as keyTypes from '../../src/keys/types.js'
import * as options from '../../src/options.js'
import * as storeCall from '../../src/stores/call.js'

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

function readmeLibraryErrors(): Map<string, string> {
  const rows = new Map<string, string>()
  for (const match of README.matchAll(/^\|\s*`(GW_ERR_[A-Z_]+)`\s*\|\s*`([A-Za-z]+)`\s*\|/gm)) {
    rows.set(match[1]!, match[2]!)
  }
  return rows
}

/** One instance of each catalog class, as the library makes them. */
function libraryInstances() {
  const cause = new Error('root')
  return {
    INVALID_OPTIONS: new GatewayOptionsError('Invalid gateway options:\n  - x: wrong', { cause }),
    INVALID_LOG_QUERY: new LogQueryError('log query', [{ path: 'limit', message: 'too big' }]),
    INVALID_LOG_RECORD: new LogRecordError([{ path: '[0].score', message: 'too big' }]),
    STORE_TIMEOUT: new StoreTimeoutError(50),
    KEY_STORE: new KeyStoreError('store-unavailable', 'the store is down', { cause }),
  } satisfies Record<keyof typeof LIBRARY_ERRORS, Error>
}

describe('library errors', () => {
  it('match the README table in both directions', () => {
    const catalog = new Map(Object.values(LIBRARY_ERRORS).map((entry) => [entry.code, entry.name]))
    expect(readmeLibraryErrors()).toEqual(catalog)
  })

  it('have unique, prefixed codes and unique class names', () => {
    const entries = Object.values(LIBRARY_ERRORS)
    expect(new Set(entries.map((e) => e.code)).size).toBe(entries.length)
    expect(new Set(entries.map((e) => e.name)).size).toBe(entries.length)
    for (const entry of entries) expect(entry.code).toMatch(/^GW_ERR_[A-Z_]+$/)
  })

  it('keep the codes hosts may already match on', () => {
    expect(LIBRARY_ERRORS.INVALID_OPTIONS.code).toBe('GW_ERR_INVALID_OPTIONS')
    expect(LIBRARY_ERRORS.INVALID_LOG_QUERY.code).toBe('GW_ERR_INVALID_REQUEST')
  })

  it('share one shape: name, code, message, cause', () => {
    for (const [key, error] of Object.entries(libraryInstances())) {
      const entry = LIBRARY_ERRORS[key as keyof typeof LIBRARY_ERRORS]
      expect(error).toBeInstanceOf(Error)
      expect(error.name).toBe(entry.name)
      expect(error.constructor.name).toBe(entry.name)
      expect(error.code).toBe(entry.code)
      expect(error.message.length).toBeGreaterThan(0)
      expect(String(error)).toBe(`${entry.name}: ${error.message}`)
    }
    const made = libraryInstances()
    expect(made.KEY_STORE.cause).toBeInstanceOf(Error)
    expect(made.KEY_STORE.reason).toBe('store-unavailable')
    expect(made.INVALID_LOG_QUERY.issues).toEqual([{ path: 'limit', message: 'too big' }])
    expect(made.INVALID_LOG_QUERY.message).toBe('Invalid log query: limit: too big')
    expect(made.STORE_TIMEOUT.message).toBe('the store did not answer within 50 ms')
    expect(made.INVALID_OPTIONS).toBeInstanceOf(TypeError)
    expect(made.INVALID_LOG_RECORD).toBeInstanceOf(TypeError)
    expect(made.KEY_STORE).not.toBeInstanceOf(TypeError)
  })

  it('tell the classes apart', () => {
    const made = libraryInstances()
    expect(made.KEY_STORE instanceof LogQueryError).toBe(false)
    expect(made.INVALID_LOG_QUERY instanceof LogRecordError).toBe(false)
    expect(made.STORE_TIMEOUT instanceof KeyStoreError).toBe(false)
    expect({ code: 'GW_ERR_KEY_STORE', name: 'KeyStoreError' } instanceof KeyStoreError).toBe(false)
    expect(made.KEY_STORE instanceof GatewayError).toBe(false)
  })

  it('recognise errors from another copy of the package (ESM and CJS side by side)', async () => {
    vi.resetModules()
    const copy = await import('../../src/errors.js')
    expect(copy.KeyStoreError).not.toBe(KeyStoreError)
    expect(new copy.KeyStoreError('store-full', 'full')).toBeInstanceOf(KeyStoreError)
    expect(new KeyStoreError('store-full', 'full')).toBeInstanceOf(copy.KeyStoreError)
    expect(new copy.GatewayOptionsError('x')).toBeInstanceOf(GatewayOptionsError)
    expect(new copy.StoreTimeoutError(1)).not.toBeInstanceOf(KeyStoreError)
  })

  it("keep the ordinary prototype check for a host's own subclass", () => {
    class VaultError extends KeyStoreError {}
    const vault = new VaultError('store-unavailable', 'vault sealed')
    expect(vault).toBeInstanceOf(KeyStoreError)
    expect(vault.code).toBe('GW_ERR_KEY_STORE')
    expect(new KeyStoreError('store-full', 'full')).not.toBeInstanceOf(VaultError)
  })

  it('are still exported where they used to live', () => {
    expect(options.GatewayOptionsError).toBe(GatewayOptionsError)
    expect(storeCall.StoreTimeoutError).toBe(StoreTimeoutError)
    expect(keyTypes.KeyStoreError).toBe(KeyStoreError)
  })
})

describe('renderError', () => {
  it('answers with the body, status and extra headers of the error', () => {
    const error = new GatewayError('RATE_LIMITED', undefined, { headers: { 'retry-after': '3' } })
    const response = renderError(error)
    expect(response.status).toBe(429)
    expect(response.headers).toEqual({
      'content-type': 'application/json',
      'content-length': String(Buffer.byteLength(response.body as string)),
      'retry-after': '3',
    })
    expect(response.body).toBe(errorBody(error))
    expect(renderError(error, 'openai').body).toBe(errorBody(error, 'openai'))
  })
})
