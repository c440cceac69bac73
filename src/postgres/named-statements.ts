import type { Pool } from 'pg'

// A batch size is named from its second write: the queue's full batches are the size that repeats under
// load, while a quiet gateway's small batches come in many sizes. Postgres keeps a plan per name and
// connection, so the names a store hands out are bounded.
const MAX_NAMED_SIZES = 16

// What a server connection answers for a name it does not hold (`invalid_sql_statement_name`), or holds
// already (`duplicate_prepared_statement`): what a pooler in transaction mode produces when the next query
// runs on another server connection than the one that parsed the statement.
const LOST_STATEMENT_CODES = new Set(['26000', '42P05'])

/**
 * The log store's inserts as named statements, one per batch size written often: Postgres then parses each
 * once per connection and, after a few runs, keeps its plan. For 100-record batches that measured 18-20 µs
 * of Postgres CPU a record against 21-23 unnamed, and a round trip some 15% shorter (bench/README).
 *
 * The pool is the host's, and may sit behind a pooler in transaction mode (PgBouncer before 1.21, or later
 * without `max_prepared_statements`), where a named statement fails once it is run on another server
 * connection. The first such failure turns naming off for the store, and the batch is written again
 * unnamed: the failure comes before the statement runs, and its rows' ids make a second write a no-op.
 */
export class NamedInserts {
  readonly #prefix: string
  // Batch sizes written once, and those named.
  readonly #seen = new Set<number>()
  readonly #named = new Set<number>()
  #off = false

  /** `prefix` is the table's own (`Names.statementPrefix`): two stores on one pool never share a name. */
  constructor(prefix: string) {
    this.#prefix = prefix
  }

  /** Runs the insert of `rows` records, named when that size is written often and naming still works. */
  async run(pool: Pool, rows: number, text: string, values: unknown[]): Promise<void> {
    const name = this.#nameFor(rows)
    if (name === undefined) {
      await pool.query(text, values)
      return
    }
    try {
      await pool.query({ name, text, values })
    } catch (error) {
      const code = (error as { code?: unknown } | null)?.code
      if (typeof code !== 'string' || !LOST_STATEMENT_CODES.has(code)) throw error
      this.#off = true
      await pool.query(text, values)
    }
  }

  #nameFor(rows: number): string | undefined {
    if (this.#off) return undefined
    if (!this.#named.has(rows)) {
      if (!this.#seen.has(rows)) {
        this.#seen.add(rows)
        return undefined
      }
      if (this.#named.size === MAX_NAMED_SIZES) return undefined
      this.#named.add(rows)
    }
    return `${this.#prefix}${rows}`
  }
}
