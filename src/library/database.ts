/**
 * The handle `openDatabase()` returns: a node running inside the calling process, queried
 * directly (no HTTP, no network for reads), closed with everything it started.
 *
 * @example
 * ```ts
 * import { openDatabase } from "../../mod.ts";
 * const db = await openDatabase({ path: ":memory:", name: "app" });
 * await db.query("CREATE TABLE t(a)");
 * await db.close();
 * ```
 * @module
 */
import type { Database, StatementResult } from "../engine/mod.ts";
import { transactionControl } from "../engine/mod.ts";
import { HaError } from "../errors/mod.ts";
import { createLogger } from "../log/mod.ts";
import { Node } from "../node.ts";
import { configOf, type OpenOptions } from "./options.ts";
import { type QueryParams, toParams, toValue, type Value } from "./values.ts";

/**
 * What a statement returned.
 *
 * @example
 * ```ts
 * const r: QueryResult = await db.query("INSERT INTO t(a) VALUES (1) RETURNING id");
 * r.columns; // ["id"]
 * r.rowsAffected; // 1
 * ```
 */
export interface QueryResult {
  /** Result column names; empty for a statement that returns no rows (plain INSERT, DDL…). */
  columns: string[];
  /** The rows, one value per column: exact SQLite values (see {@link Value}). */
  rows: Value[][];
  /** Rows changed by an INSERT, UPDATE or DELETE (also with RETURNING), else 0. */
  rowsAffected: number;
  /** The connection's `last_insert_rowid()` after the statement. */
  lastInsertId: number | bigint;
}

/**
 * The statements of one transaction, given to the callback of
 * {@link HaDatabase.transaction}.
 *
 * @example
 * ```ts
 * async function transfer(tx: Transaction, from: number, to: number, amount: number) {
 *   await tx.query("UPDATE accounts SET balance = balance - ? WHERE id = ?", [amount, from]);
 *   await tx.query("UPDATE accounts SET balance = balance + ? WHERE id = ?", [amount, to]);
 * }
 * await db.transaction((tx) => transfer(tx, 1, 2, 10));
 * ```
 */
export interface Transaction {
  /**
   * Runs one statement inside the transaction; it sees the transaction's own changes.
   * SAVEPOINT / RELEASE / ROLLBACK TO are allowed, BEGIN / COMMIT / ROLLBACK are not (return or
   * throw from the callback instead).
   *
   * @example
   * ```ts
   * await db.transaction(async (tx) => {
   *   const { rows } = await tx.query("SELECT balance FROM accounts WHERE id = ?", [1]);
   *   await tx.query("UPDATE accounts SET balance = ? WHERE id = ?", [Number(rows[0][0]) - 10, 1]);
   * });
   * ```
   */
  query(sql: string, params?: QueryParams): Promise<QueryResult>;
}

/**
 * How long `openDatabase` waits for an external NATS to be reached the first time, so that the
 * application's first INSERTs get cluster-unique ids; past it the database opens anyway (reads and
 * writes with explicit ids work, an INSERT needing an id says so until NATS is reached).
 */
const SLOT_WAIT_MS = 10_000;

/** Waits for `p`, at most `ms`. */
async function withinMs(p: Promise<void>, ms: number): Promise<void> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const limit = new Promise<void>((resolve) => timer = setTimeout(resolve, ms));
  try {
    await Promise.race([p, limit]);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * A database served by a node running in this process; see {@link openDatabase}.
 *
 * @example
 * ```ts
 * await using db = await openDatabase({ path: ":memory:", name: "app" });
 * console.info(db.name, db.database, db.readOnly); // app ha.db false
 * ```
 */
export class HaDatabase implements AsyncDisposable {
  #closing: Promise<void> | null = null;
  readonly #node: Node;
  readonly #db: Database;
  readonly #bigints: boolean;
  readonly #tempDir: string | null;

  private constructor(node: Node, bigints: boolean, tempDir: string | null) {
    this.#node = node;
    this.#db = node.engine.defaultDb;
    this.#bigints = bigints;
    this.#tempDir = tempDir;
  }

  /** @internal Starts the node; see {@link openDatabase}. */
  static async open(options: OpenOptions): Promise<HaDatabase> {
    const { config, tempDir } = await configOf(options);
    try {
      const node = await Node.start(config, createLogger(config.logLevel));
      await withinMs(node.slotClaimed, SLOT_WAIT_MS);
      return new HaDatabase(node, options.bigints ?? false, tempDir);
    } catch (e) {
      if (tempDir) await Deno.remove(tempDir, { recursive: true }).catch(() => {});
      throw e;
    }
  }

  /** The node's name in the cluster (`name`, default the host name). */
  get name(): string {
    return this.#node.config.name;
  }

  /** The database's id in the cluster (`app.db` for `path: "data/app.db"`). */
  get database(): string {
    return this.#db.id;
  }

  /** True for a read-only follower (`readOnly: true`): writes are refused. */
  get readOnly(): boolean {
    return this.#node.config.readOnly;
  }

  /**
   * Runs `sql` (one statement, or several separated by `;` that then run in one transaction and
   * return the last one's result). Reads run on the local copy and never wait for the network;
   * a write is replicated like any node's: it resolves once JetStream stored it (or, with
   * `asyncReplication`, once committed locally). Errors are {@link HaError}s.
   *
   * @example
   * ```ts
   * await db.query("INSERT INTO users(name, avatar) VALUES (:name, :avatar)", {
   *   name: "ada",
   *   avatar: new Uint8Array([0x89, 0x50]), // or { base64: "iVA=" }
   * });
   * const { columns, rows } = await db.query("SELECT id, name FROM users WHERE name = ?", ["ada"]);
   * ```
   */
  async query(sql: string, params?: QueryParams): Promise<QueryResult> {
    this.#checkOpen();
    if (typeof sql !== "string" || sql.trim() === "") {
      throw new HaError("bad_request", "query: sql must be a non-empty string");
    }
    const [r] = await this.#db.execute([{ sql, params: toParams(params) }]);
    return this.#result(r);
  }

  /**
   * Runs `fn` in one transaction: committed when it resolves (and replicated as one change
   * set), rolled back when it throws. Resolves to what `fn` resolved to. The transaction holds
   * the database's writer: inside `fn` use `tx.query`, not `db.query` for writes (they would
   * wait for the transaction to end).
   *
   * @example
   * ```ts
   * const id = await db.transaction(async (tx) => {
   *   const r = await tx.query("INSERT INTO orders(item) VALUES (?) RETURNING id", ["book"]);
   *   await tx.query("UPDATE stock SET n = n - 1 WHERE item = ?", ["book"]);
   *   return r.rows[0][0];
   * });
   * ```
   */
  async transaction<T>(fn: (tx: Transaction) => Promise<T>): Promise<T> {
    this.#checkOpen();
    const session = this.#db.session();
    let open = true;
    const tx: Transaction = {
      query: async (sql, params) => {
        if (!open) {
          throw new HaError("bad_request", "transaction: already committed or rolled back");
        }
        const control = transactionControl(sql);
        if (control !== null && control !== "savepoint") {
          throw new HaError(
            "bad_request",
            `transaction: ${control.toUpperCase()} is not allowed here; ` +
              "the transaction commits when the callback returns and rolls back when it throws",
          );
        }
        return this.#result(await session.execute({ sql, params: toParams(params) }));
      },
    };
    try {
      await session.execute({ sql: "BEGIN" });
      const out = await fn(tx);
      await session.execute({ sql: "COMMIT" });
      return out;
    } finally {
      open = false;
      await session.close(); // rolls back unless committed
    }
  }

  /**
   * Stops the node: the HTTP and PG servers if any, replication (a pending asynchronous
   * publication stays in the outbox for the next start), the embedded nats-server, the
   * databases. Idempotent; queries after it fail.
   *
   * @example
   * ```ts
   * const db = await openDatabase({ path: "app.db" });
   * try {
   *   // ...
   * } finally {
   *   await db.close();
   * }
   * ```
   */
  close(): Promise<void> {
    this.#closing ??= (async () => {
      await this.#node.stop();
      if (this.#tempDir) await Deno.remove(this.#tempDir, { recursive: true }).catch(() => {});
    })();
    return this.#closing;
  }

  /** `await using db = await openDatabase(…)` closes it at the end of the scope. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  #checkOpen(): void {
    if (this.#closing) throw new HaError("unavailable", `database ${this.#db.id} is closed`);
  }

  #result(r: StatementResult): QueryResult {
    return {
      columns: r.columns.map((c) => c.name),
      rows: r.rows.map((row) => row.map((v) => toValue(v, this.#bigints))),
      rowsAffected: r.rowsAffected,
      lastInsertId: toValue(r.lastInsertId, this.#bigints) as number | bigint,
    };
  }
}
