import type {
  RouteDefinition,
  RouteDeployment,
  RouteStore,
  RouteSummary,
  RouteVersion,
} from '../dynamic/types.js'
import { assertReady, defineScripts, type RedisClientLike } from './redis-types.js'

/**
 * The part of an ioredis client the route store uses: the shared {@link RedisClientLike} and the hash and
 * set reads. Structural, so a client from any ioredis copy (major 5 or 6) is accepted.
 *
 * @example
 * import { Redis } from 'ioredis'
 * const client: RedisRouteClient = new Redis(process.env.REDIS_URL!)
 */
export interface RedisRouteClient extends RedisClientLike {
  hget(key: string, field: string): Promise<string | null>
  hgetall(key: string): Promise<Record<string, string>>
  hmget(key: string, ...fields: string[]): Promise<(string | null)[]>
  smembers(key: string): Promise<string[]>
}

export interface RedisRouteStoreOptions {
  /**
   * Put before every key. Default `'aigw:routes:'`. On Redis Cluster include a hash tag
   * (`'{aigw}:routes:'`): a save or a delete updates the route's hash and the index in one script, which
   * needs one slot.
   */
  prefix?: string
}

const DEFAULT_PREFIX = 'aigw:routes:'
/** Bumped when a stored version's layout changes, so an older layout is refused rather than misread. */
const FORMAT_VERSION = 1

/**
 * KEYS[1] the route's hash, KEYS[2] the index; ARGV name, the encoded version, now. HINCRBY inside the
 * script is what makes two instances saving at once get distinct, consecutive versions.
 */
const SAVE = `
local version = redis.call('HINCRBY', KEYS[1], 'latest', 1)
redis.call('HSET', KEYS[1], 'v:' .. version, ARGV[2])
local updated = redis.call('HGET', KEYS[1], 'updated')
if not updated or tonumber(updated) < tonumber(ARGV[3]) then redis.call('HSET', KEYS[1], 'updated', ARGV[3]) end
redis.call('SADD', KEYS[2], ARGV[1])
return version
`

/**
 * KEYS[1] the route's hash; ARGV version, now. Checked and written in one script, so a version (or route)
 * deleted by another instance meanwhile is never deployed. Returns 1 when deployed, 0 when there is no such
 * version.
 */
const DEPLOY = `
if redis.call('HEXISTS', KEYS[1], 'v:' .. ARGV[1]) == 0 then return 0 end
redis.call('HSET', KEYS[1], 'deployed', ARGV[1], 'deployedAt', ARGV[2])
local updated = redis.call('HGET', KEYS[1], 'updated')
if not updated or tonumber(updated) < tonumber(ARGV[2]) then redis.call('HSET', KEYS[1], 'updated', ARGV[2]) end
return 1
`

/**
 * KEYS[1] the route's hash. The deployment and its version read together, so a deploy landing between two
 * reads cannot pair one version's number with another's definition. Returns {version, deployedAt, record}.
 */
const DEPLOYED = `
local deployment = redis.call('HMGET', KEYS[1], 'deployed', 'deployedAt')
if not deployment[1] then return false end
local record = redis.call('HGET', KEYS[1], 'v:' .. deployment[1])
if not record then return false end
return {deployment[1], deployment[2], record}
`

/** KEYS[1] the route's hash, KEYS[2] the index; ARGV name. Returns 1 when the route existed. */
const DELETE = `
local removed = redis.call('DEL', KEYS[1])
redis.call('SREM', KEYS[2], ARGV[1])
return removed
`

const SCRIPTS = {
  aigwRouteSave1: { lua: SAVE, numberOfKeys: 2 },
  aigwRouteDeploy1: { lua: DEPLOY, numberOfKeys: 1 },
  aigwRouteDeployed1: { lua: DEPLOYED, numberOfKeys: 1 },
  aigwRouteDelete1: { lua: DELETE, numberOfKeys: 2 },
} as const

type ScriptName = keyof typeof SCRIPTS
type ScriptCommand = (...keysAndArgs: string[]) => Promise<unknown>

const VERSION_FIELD = /^v:([1-9][0-9]*)$/

/**
 * A {@link RouteStore} on a host-created ioredis client, shared by every instance using the same server and
 * prefix. One hash per route (`<prefix>r:<name>`) holds its version counter (`latest`), each version
 * (`v:<n>`, JSON of the definition and its time), the deployment (`deployed`, `deployedAt`) and `updated`;
 * a set (`<prefix>index`) names the routes, for listing without SCAN. Every write is one Lua script, so
 * versions are allocated atomically across instances and a deploy only ever names a version that exists.
 * When the client is not connected every call rejects at once rather than waiting in ioredis's offline
 * queue.
 *
 * @example
 * const routes = createRedisRouteStore(new Redis(process.env.REDIS_URL!), { prefix: 'myapp:routes:' })
 */
export function createRedisRouteStore(
  client: RedisRouteClient,
  options: RedisRouteStoreOptions = {},
): RouteStore {
  const prefix = options.prefix ?? DEFAULT_PREFIX
  if (typeof prefix !== 'string') throw new TypeError('prefix must be a string')
  const indexKey = `${prefix}index`
  // A route's key starts with 'r:', so no route name can make it the index key.
  const routeKey = (name: string) => `${prefix}r:${name}`
  defineScripts(client, SCRIPTS)

  function run(script: ScriptName, ...keysAndArgs: string[]): Promise<unknown> {
    assertReady(client)
    const command = (client as unknown as Record<ScriptName, ScriptCommand>)[script]
    return command.call(client, ...keysAndArgs)
  }

  return {
    async save(definition, now) {
      const name = definition.name
      const encoded = JSON.stringify({ v: FORMAT_VERSION, createdAt: now, definition })
      const version = Number(
        await run('aigwRouteSave1', routeKey(name), indexKey, name, encoded, String(now)),
      )
      // Decoded from what was stored, so the caller holds its own copy, exactly as a later read gives it.
      return decode(name, version, encoded)
    },

    async versions(name) {
      assertReady(client)
      const fields = await client.hgetall(routeKey(name))
      const versions: RouteVersion[] = []
      for (const [field, value] of Object.entries(fields)) {
        const match = VERSION_FIELD.exec(field)
        if (match !== null) versions.push(decode(name, Number(match[1]), value))
      }
      return versions.sort((a, b) => b.version - a.version)
    },

    async version(name, version) {
      if (!isVersion(version)) return undefined
      assertReady(client)
      const value = await client.hget(routeKey(name), `v:${version}`)
      return value === null ? undefined : decode(name, version, value)
    },

    async deploy(name, version, now) {
      if (!isVersion(version)) return undefined
      const deployed = await run('aigwRouteDeploy1', routeKey(name), String(version), String(now))
      if (Number(deployed) !== 1) return undefined
      const deployment: RouteDeployment = { name, version, deployedAt: now }
      return deployment
    },

    async deployed(name) {
      const reply = await run('aigwRouteDeployed1', routeKey(name))
      if (!Array.isArray(reply)) return undefined
      const [version, deployedAt, value] = reply as [string, string, string]
      const saved = decode(name, Number(version), value)
      return { name, version: saved.version, deployedAt: Number(deployedAt), definition: saved.definition }
    },

    async list() {
      assertReady(client)
      const names = (await client.smembers(indexKey)).sort()
      const rows = await Promise.all(
        names.map((name) => client.hmget(routeKey(name), 'latest', 'deployed', 'updated')),
      )
      const summaries: RouteSummary[] = []
      names.forEach((name, index) => {
        const [latest, deployed, updated] = rows[index]!
        // Deleted by another instance between the two reads.
        if (latest === null || latest === undefined) return
        summaries.push({
          name,
          latestVersion: Number(latest),
          deployedVersion: deployed === null || deployed === undefined ? undefined : Number(deployed),
          updatedAt: Number(updated),
        })
      })
      return summaries
    },

    async delete(name) {
      return Number(await run('aigwRouteDelete1', routeKey(name), indexKey, name)) === 1
    },
  }
}

/** Only a positive whole number can name a version; anything else names none. */
function isVersion(version: number): boolean {
  return Number.isSafeInteger(version) && version >= 1
}

function decode(name: string, version: number, value: string): RouteVersion {
  let parsed: unknown
  try {
    parsed = JSON.parse(value)
  } catch {
    parsed = undefined
  }
  const record = (typeof parsed === 'object' && parsed !== null ? parsed : {}) as {
    v?: unknown
    createdAt?: unknown
    definition?: unknown
  }
  const definition = record.definition as Partial<RouteDefinition> | undefined
  if (
    record.v !== FORMAT_VERSION ||
    typeof record.createdAt !== 'number' ||
    typeof definition !== 'object' ||
    definition === null ||
    !Array.isArray(definition.elements)
  ) {
    throw new Error(`Redis route store: version ${version} of route '${name}' is not a record it can read`)
  }
  return { name, version, definition: definition as RouteDefinition, createdAt: record.createdAt }
}
