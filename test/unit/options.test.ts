import { describe, expect, it } from 'vitest'
import { createGateway } from '../../src/gateway.js'
import { GatewayOptionsError, parseOptions } from '../../src/options.js'

describe('parseOptions()', () => {
  it('fills defaults', () => {
    const options = parseOptions({})
    expect(options.name).toBe('default')
    expect(options.maxBodyBytes).toBe(10 * 1024 * 1024)
    expect(options.timeouts).toEqual({
      connectMs: 10_000,
      firstByteMs: 300_000,
      idleMs: 120_000,
      totalMs: 600_000,
      writeStallMs: 30_000,
    })
    expect(options.maxResponseBytes).toBe(100 * 1024 * 1024)
    expect(options.maxStreamBytes).toBe(256 * 1024 * 1024)
    expect(options.maxEventBytes).toBe(1024 * 1024)
  })

  it('keeps defaults for clocks that were not given', () => {
    expect(parseOptions({ timeouts: { idleMs: 5 } }).timeouts).toEqual({
      connectMs: 10_000,
      firstByteMs: 300_000,
      idleMs: 5,
      totalMs: 600_000,
      writeStallMs: 30_000,
    })
  })

  it.each([
    [{ providers: { opneai: {} } }, /providers\.opneai: unknown provider 'opneai' \(known: openai,/],
    [{ timeouts: { idleMs: -1 } }, /timeouts\.idleMs: /],
    [
      { providers: { openai: { baseURL: 'ftp://x' } } },
      /providers\.openai\.baseURL: expected an http\(s\) URL/,
    ],
    [
      { providers: { openai: { apiKey: 'sk\r\nx-evil: 1' } } },
      /providers\.openai\.apiKey: expected a header value/,
    ],
    [{ customProviders: { 'My Lab': { baseURL: 'http://x' } } }, /customProviders\.My Lab/],
    [{ maxBodyBytes: '10mb' }, /maxBodyBytes: /],
    [{ steps: ['nope'] }, /steps: expected an array of step functions/],
    [{ surprise: true }, /surprise/],
    [
      { fallbacks: { 'gpt-4o': ['anthropic/claude'] } },
      /fallbacks\.gpt-4o: expected '\{provider\}\/\{model\}'/,
    ],
    [{ fallbacks: { 'openai/gpt-4o': [] } }, /fallbacks\.openai\/gpt-4o: /],
    [{ fallbackOn: ['timeouts'] }, /fallbackOn\.0: /],
    [{ streams: { commit: 'later' } }, /streams\.commit: /],
    [{ retries: { timeoutAttempts: 6 } }, /retries\.timeoutAttempts: /],
    [{ prices: { mylab: 0.5 } }, /prices\.mylab: /],
    [
      { forwardHeaders: ['x-trace-id', 'cf-aig-authorization'] },
      /forwardHeaders\.1: 'cf-aig-authorization' is never forwarded: the gateway token stays/,
    ],
    [{ forwardHeaders: ['transfer-encoding'] }, /forwardHeaders\.0: 'transfer-encoding' is never forwarded/],
    [{ forwardHeaders: ['host'] }, /forwardHeaders\.0: 'host' is never forwarded/],
    // Options of several shapes: the field that is wrong, or the shapes the option takes.
    [{ rateLimit: { limit: 5, window: 60, technique: 'fixed-window' } }, /rateLimit\.technique: /],
    [{ rateLimit: [{ limit: 5, window: '1m' }] }, /rateLimit\.0\.window: /],
    [{ rateLimit: { limit: 5, window: 60, key: 'team' } }, /rateLimit\.key: expected 'gateway', /],
    [{ logs: { store: 5 } }, /logs\.store: expected a LogStore/],
    [{ telemetry: 'yes' }, /telemetry: expected boolean or object/],
    [{ identify: 'x' }, /identify: expected a function/],
    [{ prices: { openai: { 'gpt-4o': { input: -1, output: 10 } } } }, /prices\.openai\.gpt-4o\.input: /],
    [{ prices: { openai: { 'gpt-4o': { input: 2.5 } } } }, /prices\.openai\.gpt-4o\.output: /],
  ])('names the wrong option: %j', (options, message) => {
    expect(() => parseOptions(options)).toThrow(GatewayOptionsError)
    expect(() => parseOptions(options)).toThrow(message)
  })

  it('is what createGateway validates with', () => {
    expect(() => createGateway({ timeouts: { connectMs: 0 } })).toThrow(/timeouts\.connectMs/)
  })
})
