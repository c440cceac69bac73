/**
 * Postgres-backed stores, for logs and stored keys shared by several gateway instances. Pass your own `pg`
 * pool (pg is an optional peer dependency); each store creates and migrates its own table.
 */

export {
  createPostgresSecretStore,
  type PostgresSecretStore,
  type PostgresSecretStoreOptions,
} from './key-store.js'
export { createPostgresLogStore, type PostgresLogStoreOptions } from './log-store.js'
