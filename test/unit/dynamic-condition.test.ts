import { describe, expect, it } from 'vitest'
import { type ConditionInput, compileCondition, compilePath, readPath } from '../../src/dynamic/condition.js'

const BODY = {
  model: 'gpt-4o',
  temperature: 0.7,
  max_tokens: 500,
  stream: false,
  user: null,
  tags: ['a', 'b'],
  messages: [
    { role: 'system', content: 'be brief' },
    { role: 'user', content: 'hi' },
  ],
  metadata: { team: 'search' },
  response_format: { type: 'json_object' },
}

function request(parts: Partial<ConditionInput> = {}): ConditionInput {
  return {
    metadata: { plan: 'pro', user_id: 42, beta: true },
    body: BODY,
    headers: { 'x-tier': 'gold', 'x-count': '5', 'x.dotted.name': 'yes', 'x-unset': undefined },
    principal: { id: 'u1', tenant: { id: 't1', region: 'eu' }, roles: ['admin'] },
    ...parts,
  }
}

function matches(condition: unknown, parts: Partial<ConditionInput> = {}): boolean {
  return compileCondition(condition, 'test: ').matches(request(parts))
}

/** The message a condition is refused with, `undefined` when it compiles. */
function refusal(condition: unknown, at = 'test: '): string | undefined {
  try {
    compileCondition(condition, at)
    return undefined
  } catch (error) {
    return (error as Error).message
  }
}

/** `levels` filters nested in one another through `$and`, the innermost testing the model. */
function nested(levels: number): unknown {
  let filter: unknown = { model: 'gpt-4o' }
  for (let i = 1; i < levels; i++) filter = { $and: [filter] }
  return filter
}

function keys(count: number): Record<string, number> {
  return Object.fromEntries(Array.from({ length: count }, (_, i) => [`k${i}`, i]))
}

describe('compileCondition: comparison operators', () => {
  it.each([
    // equality, implicit and $eq
    [{ model: 'gpt-4o' }, true],
    [{ model: 'gpt-4' }, false],
    [{ 'body.model': 'gpt-4o' }, true],
    [{ model: { $eq: 'gpt-4o' } }, true],
    [{ model: { $eq: 'GPT-4o' } }, false],
    [{ max_tokens: 500 }, true],
    [{ max_tokens: '500' }, false],
    [{ stream: false }, true],
    [{ stream: 0 }, false],
    [{ user: null }, true],
    [{ user: { $eq: null } }, true],
    [{ absent: null }, false],
    [{ absent: { $eq: null } }, false],
    // $ne: the negation of $eq, so a missing value matches
    [{ model: { $ne: 'gpt-4' } }, true],
    [{ model: { $ne: 'gpt-4o' } }, false],
    [{ max_tokens: { $ne: '500' } }, true],
    [{ absent: { $ne: 'x' } }, true],
    [{ user: { $ne: null } }, false],
    // numbers
    [{ max_tokens: { $gt: 499 } }, true],
    [{ max_tokens: { $gt: 500 } }, false],
    [{ max_tokens: { $gte: 500 } }, true],
    [{ max_tokens: { $gte: 501 } }, false],
    [{ max_tokens: { $lt: 501 } }, true],
    [{ max_tokens: { $lt: 500 } }, false],
    [{ max_tokens: { $lte: 500 } }, true],
    [{ max_tokens: { $lte: 499 } }, false],
    [{ temperature: { $lt: 1 } }, true],
    [{ temperature: { $gt: -1.5 } }, true],
    // strings, lexicographic
    [{ model: { $gt: 'gpt-3' } }, true],
    [{ model: { $gt: 'gpt-4o' } }, false],
    [{ model: { $gte: 'gpt-4o' } }, true],
    [{ model: { $lt: 'gpt-5' } }, true],
    [{ model: { $lt: 'claude' } }, false],
    [{ model: { $lte: 'gpt-4o' } }, true],
    // type mismatches and missing values are false, never errors
    [{ max_tokens: { $gt: '1' } }, false],
    [{ max_tokens: { $lt: '9' } }, false],
    [{ model: { $gt: 1 } }, false],
    [{ stream: { $gte: 0 } }, false],
    [{ user: { $lte: 0 } }, false],
    [{ tags: { $gt: 0 } }, false],
    [{ response_format: { $lt: 'z' } }, false],
    [{ absent: { $lt: 10 } }, false],
    [{ absent: { $gte: '' } }, false],
    [{ 'headers.x-count': { $gt: 3 } }, false],
    [{ 'headers.x-count': { $gt: '3' } }, true],
    // $in / $nin: strict per value, structural for lists and objects, no array membership
    [{ model: { $in: ['gpt-4o', 'gpt-4o-mini'] } }, true],
    [{ model: { $in: ['gpt-4', 'gpt-4o-mini'] } }, false],
    [{ model: { $in: [] } }, false],
    [{ max_tokens: { $in: ['500'] } }, false],
    [{ max_tokens: { $in: [100, 500] } }, true],
    [{ user: { $in: [null] } }, true],
    [{ absent: { $in: [null] } }, false],
    [{ response_format: { $in: ['text', { type: 'json_object' }] } }, true],
    [{ response_format: { $in: [{ type: 'text' }] } }, false],
    [{ tags: { $in: ['a'] } }, false],
    [{ tags: { $in: [['a', 'b']] } }, true],
    [{ model: { $nin: ['gpt-4', 'claude'] } }, true],
    [{ model: { $nin: ['gpt-4o'] } }, false],
    [{ model: { $nin: [] } }, true],
    [{ absent: { $nin: ['x'] } }, true],
    [{ response_format: { $nin: [{ type: 'json_object' }] } }, false],
    // $exists: null exists, undefined does not
    [{ model: { $exists: true } }, true],
    [{ model: { $exists: false } }, false],
    [{ absent: { $exists: true } }, false],
    [{ absent: { $exists: false } }, true],
    [{ user: { $exists: true } }, true],
    // several operators on one path must all hold
    [{ max_tokens: { $gt: 100, $lt: 1000 } }, true],
    [{ max_tokens: { $gt: 100, $lt: 200 } }, false],
    [{ max_tokens: { $exists: true, $ne: 500 } }, false],
    [{ model: { $gte: 'gpt', $lt: 'gpu', $nin: ['gpt-4'] } }, true],
  ])('%j → %s', (condition, expected) => {
    expect(matches(condition)).toBe(expected)
  })
})

describe('compileCondition: structural equality', () => {
  it.each([
    [{ response_format: { type: 'json_object' } }, true],
    [{ response_format: { $eq: { type: 'json_object' } } }, true],
    [{ response_format: { type: 'text' } }, false],
    [{ response_format: { type: 'json_object', strict: true } }, false],
    [{ response_format: {} }, false],
    [{ 'messages.0': { content: 'be brief', role: 'system' } }, true], // key order does not matter
    [{ 'messages.0': { role: 'system' } }, false],
    [{ tags: ['a', 'b'] }, true],
    [{ tags: ['b', 'a'] }, false],
    [{ tags: ['a'] }, false],
    [{ tags: { $ne: ['a'] } }, true],
    [{ tags: 'a' }, false], // no implicit array membership
    [{ 'tags.0': 'a' }, true],
    [
      {
        messages: [
          { role: 'system', content: 'be brief' },
          { role: 'user', content: 'hi' },
        ],
      },
      true,
    ],
    [
      {
        messages: [
          { role: 'system', content: 'be brief' },
          { role: 'user', content: 'hello' },
        ],
      },
      false,
    ],
    [{ 'metadata.plan': ['pro'] }, false],
    [{ 'principal.tenant': { region: 'eu', id: 't1' } }, true],
  ])('%j → %s', (condition, expected) => {
    expect(matches(condition)).toBe(expected)
  })

  it('reads no inherited property of the value it compares with', () => {
    const inherited = Object.create({ type: 'json_object' }) as Record<string, unknown>
    expect(
      matches({ response_format: { type: 'json_object' } }, { body: { response_format: inherited } }),
    ).toBe(false)
    expect(matches({ response_format: {} }, { body: { response_format: inherited } })).toBe(true)
  })

  it('an object and a list never equal one another', () => {
    expect(matches({ x: {} }, { body: { x: [] } })).toBe(false)
    expect(matches({ x: [] }, { body: { x: {} } })).toBe(false)
    expect(matches({ x: [] }, { body: { x: [] } })).toBe(true)
  })

  it('stays bounded on a cyclic value', () => {
    const cyclic: Record<string, unknown> = { id: 'u1' }
    cyclic.self = cyclic
    expect(matches({ 'principal.self': { id: 'u1', self: { id: 'u1' } } }, { principal: cyclic })).toBe(false)
    expect(matches({ 'principal.self.self.self.id': 'u1' }, { principal: cyclic })).toBe(true)
  })
})

describe('compileCondition: paths', () => {
  it.each([
    // array indexes
    [{ 'messages.0.role': 'system' }, true],
    [{ 'messages.1.role': 'user' }, true],
    [{ 'body.messages.1.content': 'hi' }, true],
    [{ 'messages.2.role': { $exists: false } }, true],
    [{ 'messages.01.role': { $exists: true } }, false],
    [{ 'messages.-1.role': { $exists: true } }, false],
    [{ 'messages.role': { $exists: true } }, false],
    [{ 'tags.1': 'b' }, true],
    [{ 'tags.length': { $exists: true } }, false],
    [{ 'model.length': { $exists: true } }, false],
    [{ 'model.0': { $exists: true } }, false],
    [{ 'response_format.0': { $exists: true } }, false],
    // body fields against request metadata
    [{ 'body.metadata.team': 'search' }, true],
    [{ 'metadata.team': { $exists: false } }, true],
    [{ 'metadata.plan': 'pro' }, true],
    [{ 'metadata.plan': 'free' }, false],
    [{ 'metadata.user_id': 42 }, true],
    [{ 'metadata.user_id': '42' }, false],
    [{ 'metadata.beta': true }, true],
    [{ 'metadata.absent': { $exists: false } }, true],
    // headers: the name is lower-cased, and the whole rest of the path even with dots
    [{ 'headers.x-tier': 'gold' }, true],
    [{ 'headers.X-Tier': 'gold' }, true],
    [{ 'headers.x-tier': 'silver' }, false],
    [{ 'headers.x.dotted.name': 'yes' }, true],
    [{ 'headers.x-absent': { $exists: false } }, true],
    [{ 'headers.x-unset': { $exists: false } }, true],
    [{ 'headers.x-tier': { $in: ['gold', 'platinum'] } }, true],
    // principal
    [{ 'principal.id': 'u1' }, true],
    [{ 'principal.tenant.id': 't1' }, true],
    [{ 'principal.tenant.region': { $in: ['eu', 'uk'] } }, true],
    [{ 'principal.roles.0': 'admin' }, true],
    [{ 'principal.tenant.absent.deeper': { $exists: false } }, true],
  ])('%j → %s', (condition, expected) => {
    expect(matches(condition)).toBe(expected)
  })

  it('reads nothing without a principal', () => {
    expect(matches({ 'principal.id': { $exists: false } }, { principal: undefined })).toBe(true)
    expect(matches({ 'principal.id': 'u1' }, { principal: undefined })).toBe(false)
    expect(matches({ 'principal.id': { $ne: 'u1' } }, { principal: undefined })).toBe(true)
  })

  it('reads bodies that are not objects', () => {
    expect(matches({ model: { $exists: false } }, { body: undefined })).toBe(true)
    expect(matches({ model: { $exists: false } }, { body: 'text' })).toBe(true)
    expect(matches({ model: { $exists: false } }, { body: null })).toBe(true)
    expect(matches({ '0.role': 'user' }, { body: [{ role: 'user' }] })).toBe(true)
    expect(matches({ 'body.1': 2 }, { body: [1, 2] })).toBe(true)
  })

  it('reads a long list by index', () => {
    const messages = Array.from({ length: 100_000 }, (_, i) => ({ role: i % 2 ? 'user' : 'assistant' }))
    expect(matches({ 'messages.99999.role': 'user' }, { body: { messages } })).toBe(true)
    expect(matches({ 'messages.100000.role': { $exists: true } }, { body: { messages } })).toBe(false)
  })

  describe('never reads an inherited property', () => {
    const paths = ['__proto__', 'constructor', 'toString', 'hasOwnProperty', 'valueOf']
    const deeper = ['__proto__.constructor', 'constructor.name', 'constructor.prototype', 'toString.length']
    it.each(
      [...paths, ...deeper].flatMap((path) => [
        path,
        `body.${path}`,
        `metadata.${path}`,
        `principal.${path}`,
      ]),
    )('%s', (path) => {
      expect(matches({ [path]: { $exists: true } })).toBe(false)
      expect(matches({ [path]: { $exists: false } })).toBe(true)
    })

    it.each(paths)('headers.%s', (name) => {
      expect(matches({ [`headers.${name}`]: { $exists: true } })).toBe(false)
    })

    it('from lists either', () => {
      expect(matches({ 'tags.constructor': { $exists: true } })).toBe(false)
      expect(matches({ 'tags.map': { $exists: true } })).toBe(false)
    })

    it('but reads an own property of that name, as JSON.parse makes it', () => {
      const body = JSON.parse('{"__proto__": {"polluted": 1}, "constructor": "c"}') as unknown
      expect(matches({ '__proto__.polluted': 1, constructor: 'c' }, { body })).toBe(true)
      expect(matches({ '__proto__.polluted': 1 }, { body: {} })).toBe(false)
      expect(({} as Record<string, unknown>).polluted).toBeUndefined()
    })
  })
})

describe('compileCondition: logical operators', () => {
  it.each([
    [{}, true],
    [{ model: 'gpt-4o', 'metadata.plan': 'pro' }, true], // implicit AND
    [{ model: 'gpt-4o', 'metadata.plan': 'free' }, false],
    [{ model: 'gpt-4', 'metadata.plan': 'pro' }, false],
    [{ $and: [{ model: 'gpt-4o' }, { 'metadata.plan': 'pro' }] }, true],
    [{ $and: [{ model: 'gpt-4o' }, { 'metadata.plan': 'free' }] }, false],
    [{ $and: [{}] }, true],
    [{ $or: [{ model: 'gpt-4' }, { 'metadata.plan': 'pro' }] }, true],
    [{ $or: [{ model: 'gpt-4' }, { 'metadata.plan': 'free' }] }, false],
    [{ $or: [{}] }, true],
    [{ $or: [{ model: 'gpt-4' }] }, false],
    [{ $not: { model: 'gpt-4' } }, true],
    [{ $not: { model: 'gpt-4o' } }, false],
    [{ $not: {} }, false],
    [{ $not: { $not: { model: 'gpt-4o' } } }, true],
    [{ $not: { model: 'gpt-4o', 'metadata.plan': 'free' } }, true], // not (a and b)
    [
      { $or: [{ $and: [{ model: 'gpt-4o' }, { 'headers.x-tier': 'gold' }] }, { 'principal.id': 'u2' }] },
      true,
    ],
    [
      { $or: [{ $and: [{ model: 'gpt-4o' }, { 'headers.x-tier': 'free' }] }, { 'principal.id': 'u2' }] },
      false,
    ],
    [{ $and: [{ $or: [{ model: 'a' }, { model: 'gpt-4o' }] }, { $not: { 'metadata.plan': 'free' } }] }, true],
    [{ $and: [{ $or: [{ model: 'a' }, { model: 'b' }] }, { $not: { 'metadata.plan': 'free' } }] }, false],
    // logical operators beside paths: all keys of a filter hold together
    [{ model: 'gpt-4o', $or: [{ 'metadata.plan': 'pro' }, { 'metadata.plan': 'team' }] }, true],
    [{ model: 'gpt-4', $or: [{ 'metadata.plan': 'pro' }, { 'metadata.plan': 'team' }] }, false],
    [{ model: 'gpt-4o', $not: { 'principal.id': 'u1' } }, false],
    [nested(8), true],
  ])('%j → %s', (condition, expected) => {
    expect(matches(condition)).toBe(expected)
  })

  it('the same condition answers each request on its own', () => {
    const compiled = compileCondition({ $or: [{ 'metadata.plan': 'pro' }, { 'headers.x-tier': 'gold' }] }, '')
    expect(compiled.matches(request())).toBe(true)
    expect(compiled.matches(request({ metadata: { plan: 'free' } }))).toBe(true)
    expect(compiled.matches(request({ metadata: { plan: 'free' }, headers: {} }))).toBe(false)
  })
})

describe('compileCondition: refusals', () => {
  it.each([
    // shape
    [null, 'a condition must be an object'],
    [[], 'a condition must be an object'],
    ['model', 'a condition must be an object'],
    [{ $and: [1] }, 'a filter must be an object (at /$and/0)'],
    [{ $not: [{ model: 'x' }] }, 'a filter must be an object (at /$not)'],
    [{ $and: [] }, '$and needs a non-empty list of filters (at /$and)'],
    [{ $or: { model: 'x' } }, '$or needs a non-empty list of filters (at /$or)'],
    // operators
    [{ model: { $regex: 'gpt' } }, 'unknown operator $regex (at /model/$regex)'],
    [{ $where: 'this.model' }, 'unknown operator $where (at /$where)'],
    [{ $nor: [{ model: 'x' }] }, 'unknown operator $nor (at /$nor)'],
    [{ model: { $size: 2 } }, 'unknown operator $size (at /model/$size)'],
    [{ $gt: 1 }, '$gt needs a path'],
    [{ $in: ['x'] }, '$in needs a path'],
    [{ model: { $not: { $eq: 'x' } } }, '$not combines filters: put it beside paths, not under one'],
    [{ model: { $or: [] } }, '$or combines filters'],
    [{ model: { $in: 'gpt-4o' } }, '$in needs a list (at /model/$in)'],
    [{ model: { $nin: { a: 1 } } }, '$nin needs a list (at /model/$nin)'],
    [{ model: { $exists: 1 } }, '$exists needs true or false (at /model/$exists)'],
    [{ model: { $exists: 'yes' } }, '$exists needs true or false'],
    [{ model: { $gt: null } }, '$gt needs a number or a string (at /model/$gt)'],
    [{ model: { $gte: true } }, '$gte needs a number or a string'],
    [{ model: { $lt: [1] } }, '$lt needs a number or a string'],
    [{ model: { $lte: { a: 1 } } }, '$lte needs a number or a string'],
    [{ model: { $lt: Number.NaN } }, '$lt needs a number or a string'],
    [{ model: { $eq: 'x', type: 'y' } }, 'operators and fields mixed in one object'],
    [
      { response_format: { type: { $eq: 'x' } } },
      'operator $eq inside a value (at /response_format/type/$eq)',
    ],
    [{ model: { $in: [{ $gt: 1 }] } }, 'operator $gt inside a value (at /model/$in/0/$gt)'],
    // values
    // paths
    [{ '': 1 }, "path '' has an empty segment"],
    [{ 'a..b': 1 }, "path 'a..b' has an empty segment"],
    [{ '.a': 1 }, 'has an empty segment'],
    [{ 'metadata.': 1 }, 'has an empty segment'],
    [{ 'headers.': 1 }, "path 'headers.' names no header"],
    [
      { metadata: { plan: 'pro' } },
      "path 'metadata' names no field: write 'metadata.<name>', or 'body.metadata'",
    ],
    [{ principal: 'u1' }, "path 'principal' names no field"],
    [{ body: {} }, "path 'body' names no field"],
    [{ headers: 'x' }, "path 'headers' names no field"],
  ])('%j: %s', (condition, message) => {
    expect(refusal(condition)).toContain(message)
  })

  it.each([
    ['undefined', { model: undefined }, 'not a JSON value (at /model)'],
    ['a function', { model: () => 'gpt' }, 'not a JSON value'],
    ['a bigint', { model: 1n }, 'not a JSON value'],
    ['a symbol in a list', { model: { $in: ['a', Symbol('b')] } }, 'not a JSON value (at /model/$in/1)'],
    ['Infinity', { max_tokens: Number.POSITIVE_INFINITY }, 'numbers must be finite (at /max_tokens)'],
    ['NaN', { max_tokens: { $ne: Number.NaN } }, 'numbers must be finite'],
  ])('a value that JSON cannot hold: %s', (_, condition, message) => {
    expect(refusal(condition)).toContain(message)
  })

  it('starts every message with `at` and ends it with a JSON pointer to the fault', () => {
    const condition = { $or: [{ model: 'gpt-4o' }, { 'metadata.plan': { $in: 'pro' } }] }
    expect(refusal(condition, "element 'c1': ")).toBe(
      "element 'c1': $in needs a list (at /$or/1/metadata.plan/$in)",
    )
    expect(refusal(null, "element 'c1': ")).toBe("element 'c1': a condition must be an object")
    expect(refusal({ 'a/b~c': { $bad: 1 } }, '')).toBe('unknown operator $bad (at /a~1b~0c/$bad)')
  })

  it('cuts long keys short in its messages', () => {
    const message = refusal({ [`$${'x'.repeat(10_000)}`]: 1 })!
    expect(message).toBe(`test: unknown operator $${'x'.repeat(63)}... (at /$${'x'.repeat(63)}...)`)
  })

  describe('bounds', () => {
    it('filters nested at most 8 deep', () => {
      expect(refusal(nested(8))).toBeUndefined()
      expect(refusal(nested(9))).toBe(
        'test: filters nested deeper than 8 levels (at /$and/0/$and/0/$and/0/$and/0/$and/0/$and/0/$and/0/$and/0)',
      )
      let negated: unknown = { model: 'x' }
      for (let i = 1; i < 9; i++) negated = { $not: negated }
      expect(refusal(negated)).toContain('nested deeper than 8')
    })

    it('at most 200 paths and operators', () => {
      expect(refusal(keys(200))).toBeUndefined()
      expect(refusal(keys(201))).toBe('test: more than 200 paths and operators (at /k200)')
      // Every operator counts: 100 paths with two operators each are 300 nodes.
      const ranged = Object.fromEntries(Array.from({ length: 100 }, (_, i) => [`k${i}`, { $gt: 0, $lt: 9 }]))
      expect(refusal(ranged)).toContain('more than 200 paths and operators')
      expect(refusal({ $or: Array.from({ length: 10 }, () => keys(20)) })).toContain('more than 200 paths')
    })

    it('counts each filter of a list, empty ones too', () => {
      expect(refusal({ $and: Array.from({ length: 199 }, () => ({})) })).toBeUndefined()
      expect(refusal({ $and: Array.from({ length: 200 }, () => ({})) })).toBe(
        'test: more than 200 paths and operators (at /$and/199)',
      )
    })

    it('paths of at most 256 characters', () => {
      expect(refusal({ ['a'.repeat(256)]: 1 })).toBeUndefined()
      expect(refusal({ ['a'.repeat(257)]: 1 })).toContain('path longer than 256 characters')
      expect(refusal({ [`headers.${'x'.repeat(249)}`]: 1 })).toContain('path longer than 256 characters')
    })

    it('paths of at most 16 segments, a header name being one', () => {
      const segments = (count: number) => Array.from({ length: count }, (_, i) => `s${i}`).join('.')
      expect(refusal({ [segments(16)]: 1 })).toBeUndefined()
      expect(refusal({ [segments(17)]: 1 })).toContain('path with more than 16 segments')
      expect(refusal({ [`body.${segments(16)}`]: 1 })).toContain('path with more than 16 segments')
      expect(refusal({ [`headers.${segments(30)}`]: 1 })).toBeUndefined()
    })

    it('lists of at most 100 values', () => {
      const list = (count: number) => Array.from({ length: count }, (_, i) => `m${i}`)
      expect(refusal({ model: { $in: list(100) } })).toBeUndefined()
      expect(refusal({ model: { $in: list(101) } })).toBe(
        'test: $in has more than 100 values (at /model/$in)',
      )
      expect(refusal({ model: { $nin: list(101) } })).toContain('$nin has more than 100 values')
    })

    it('strings of at most 4 KiB, counted in UTF-8 bytes, wherever they are', () => {
      expect(refusal({ model: 'x'.repeat(4096) })).toBeUndefined()
      expect(refusal({ model: 'é'.repeat(2048) })).toBeUndefined()
      expect
        .soft(refusal({ model: 'x'.repeat(4097) }))
        .toBe('test: string longer than 4096 bytes (at /model)')
      expect.soft(refusal({ model: 'é'.repeat(2049) })).toContain('string longer than 4096 bytes')
      expect.soft(refusal({ model: { $in: ['a', 'x'.repeat(4097)] } })).toContain('(at /model/$in/1)')
      expect.soft(refusal({ model: { $gt: 'x'.repeat(4097) } })).toContain('string longer than 4096 bytes')
      expect.soft(refusal({ model: { $ne: 'x'.repeat(4097) } })).toContain('string longer than 4096 bytes')
      expect.soft(refusal({ x: { y: ['x'.repeat(4097)] } })).toContain('(at /x/y/0)')
    })

    it('strings of at most 64 KiB in total', () => {
      const long = (count: number) =>
        Object.fromEntries(Array.from({ length: count }, (_, i) => [`k${i}`, 'x'.repeat(4096)]))
      expect(refusal(long(16))).toBeUndefined()
      expect(refusal(long(17))).toBe('test: strings longer than 65536 bytes in total (at /k16)')
    })

    it('values of at most 2000 items in total', () => {
      const lists = (count: number) =>
        Object.fromEntries(
          Array.from({ length: count }, (_, i) => [
            `k${i}`,
            { $in: Array.from({ length: 100 }, (_, j) => j) },
          ]),
        )
      expect(refusal(lists(20))).toBeUndefined()
      expect(refusal(lists(21))).toBe('test: values with more than 2000 items in total (at /k20/$in/0)')
    })

    it('values nested at most 8 deep', () => {
      const deep = (levels: number) => {
        let value: unknown = 1
        for (let i = 0; i < levels; i++) value = i % 2 ? [value] : { v: value }
        return value
      }
      expect(refusal({ x: deep(8) })).toBeUndefined()
      expect(refusal({ x: deep(9) })).toContain('value nested deeper than 8 levels')
      expect(refusal({ x: { $in: [deep(9)] } })).toContain('value nested deeper than 8 levels')
    })
  })
})

describe('compileCondition: the compiled form', () => {
  it('keeps nothing of the object it was made from', () => {
    const condition = { model: { $in: ['gpt-4o'] }, response_format: { type: 'json_object' } }
    const compiled = compileCondition(condition, '')
    condition.model.$in[0] = 'other'
    condition.response_format.type = 'other'
    expect(compiled.matches(request())).toBe(true)
  })
})

describe('readPath / compilePath', () => {
  it.each([
    ['model', 'gpt-4o'],
    ['body.messages.1.role', 'user'],
    ['metadata.user_id', 42],
    ['principal.tenant.id', 't1'],
    ['headers.X-Tier', 'gold'],
    ['absent', undefined],
    ['constructor', undefined],
    ['a..b', undefined],
    ['metadata', undefined],
    ['a'.repeat(300), undefined],
  ])('%s → %j', (path, expected) => {
    expect(readPath(request(), path)).toBe(expected)
  })

  it('compilePath reads the same, and refuses a bad path with `at` first', () => {
    expect(compilePath('principal.id', "element 'r1': ")(request())).toBe('u1')
    expect(() => compilePath('a..b', "element 'r1': ")).toThrow(
      "element 'r1': path 'a..b' has an empty segment",
    )
  })
})
