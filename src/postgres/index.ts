/**
 * Postgres-backed stores, for logs, stored keys and dynamic routes shared by several gateway instances. Pass
 * your own `pg` pool (pg is an optional peer dependency); each store creates and migrates its own tables.
 */

export {
  createPostgresSecretStore,
  type PostgresSecretStore,
  type PostgresSecretStoreOptions,
} from './key-store.js'
export { createPostgresLogStore, type PostgresLogStoreOptions } from './log-store.js'
export {
  createPostgresRouteStore,
  type PostgresRouteStore,
  type PostgresRouteStoreOptions,
} from './route-store.js'
