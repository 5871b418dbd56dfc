/**
 * Runs classified statements of one session: the one place every statement
 * passes before it reaches SQLite (local catalog/SET/SHOW answers, transaction
 * control, engine SQL), with the session's settings, its transaction state and
 * the cancellation of the running query (CancelRequest, a client gone).
 *
 * @example
 * ```ts
 * const exec = new Executor({ wire, engine, db, user, settings, log, prepared, gone });
 * const r = await exec.run(classify("SELECT 1"), []);
 * r.tag; // "SELECT 1"
 * ```
 */
import type { Session, SqlValue, Statement, StatementResult } from "../engine/mod.ts";
import type { Logger } from "../log/mod.ts";
import type { CatalogContext, Classified } from "./catalog.ts";
import type { Settings } from "./settings.ts";
import type { PgDatabase, PgDescription, PgEngine, Wire } from "./contracts.ts";
import { abortedTransaction, PgError } from "./errors.ts";
import type { PreparedStore } from "./prepared.ts";
import { type Outcome, outcomeOf } from "./results.ts";
import { TxControl } from "./transaction.ts";
import type { CatalogEnv, CatalogField, PgCatalog } from "./pg_catalog/mod.ts";
import { copyIn, copyOut } from "./copy_session.ts";
import type { CopyCommand } from "./copy.ts";
import { fillValuesDefaults } from "./insert_defaults.ts";
import { effectiveTimeoutMs, sessionTimeoutMs } from "./statement_timeout.ts";

/** What an {@link Executor} works with. */
export interface ExecutorOptions {
  wire: Wire;
  engine: PgEngine;
  db: PgDatabase;
  user: string;
  /** The session's settings (SET/SHOW, ParameterStatus). */
  settings: Settings;
  log: Logger;
  /** Statements and portals, which DEALLOCATE and a change of database drop. */
  prepared: PreparedStore;
  /** Whether the client is gone or the server stops: a query then starts cancelled. */
  gone(): boolean;
  /** Metrics sink: called for each SQL statement run. */
  onQuery?: () => void;
}

/** Transaction control statements still accepted in a failed transaction. */
const ENDS_FAILED = ["commit", "rollback", "rollback_to"];

/** One session's statement execution. */
export class Executor {
  readonly tx: TxControl;
  /** The process id of the cancel keys (`pg_backend_pid()`). */
  pid = 0;
  private db: PgDatabase;
  private session: Session | null;
  private running: AbortController | null = null;
  /** What {@link runNow} ran of a statement before its budget stopped it, for `runSql`. */
  private spentMs = 0;
  /**
   * pg_catalog / information_schema of this connection, made on its first catalog query (its
   * modules load then: a node's idle memory, issue 13).
   */
  private catalog: PgCatalog | null = null;

  constructor(private readonly opts: ExecutorOptions) {
    this.db = opts.db;
    this.session = opts.db.session();
    this.tx = new TxControl(opts.wire, () => this.session);
  }

  /** The current database. */
  get database(): PgDatabase {
    return this.db;
  }

  /** Whether the session is open. */
  get open(): boolean {
    return this.session !== null;
  }

  /** Aborts the running query, if any. */
  cancel(): void {
    this.running?.abort();
  }

  /** Closes the engine session. */
  async close(): Promise<void> {
    this.catalog?.close();
    const s = this.session;
    this.session = null;
    if (!s) return;
    try {
      await s.close();
    } catch (e) {
      this.opts.log.warn("pg session close failed", { error: e });
    }
  }

  /**
   * Runs a classified statement; an error inside a transaction block marks it failed
   * (not inside a simple query's `implicit` transaction, which is rolled back instead).
   */
  async run(c: Classified, params: SqlValue[], implicit = false): Promise<Outcome> {
    const inBlock = this.tx.inBlock;
    try {
      return await this.dispatch(c, params);
    } catch (e) {
      if (!implicit && (inBlock || this.tx.inBlock)) this.tx.fail();
      throw e;
    }
  }

  /**
   * {@link run} of a statement the database answers on the main thread now, with no promise:
   * an autocommit read it knows. `undefined`: `run` it (as it would have run anyway).
   */
  runNow(c: Classified, params: SqlValue[]): Outcome | undefined {
    const db = this.db;
    if (c.kind !== "sql" || c.valuesDefault !== undefined || db.executeNow === undefined) {
      return undefined;
    }
    if (this.tx.failed || this.session?.inTransaction || this.opts.gone()) return undefined;
    const stmt: Statement = params.length ? { sql: c.sql, params } : { sql: c.sql };
    let r: StatementResult | number;
    try {
      r = db.executeNow(stmt, { timeoutMs: sessionTimeoutMs(this.opts.settings) });
    } catch (e) {
      this.opts.onQuery?.();
      throw e;
    }
    if (typeof r === "number") {
      this.spentMs = r;
      return undefined;
    }
    this.opts.onQuery?.();
    return outcomeOf(r);
  }

  /** Where each kind of statement goes. */
  private async dispatch(c: Classified, params: SqlValue[]): Promise<Outcome> {
    if (c.kind === "empty") return { fields: null, rows: [], tag: "", empty: true };
    if (this.tx.failed && !(c.kind === "tx" && ENDS_FAILED.includes(c.op))) {
      throw abortedTransaction();
    }
    if (c.kind === "local") {
      const r = await c.run(this.catalogContext());
      for (const [k, v] of r.status ?? []) this.opts.wire.out.parameterStatus(k, v);
      return { fields: c.fields.length ? c.fields : null, rows: r.rows, tag: r.tag };
    }
    if (c.kind === "tx") return { fields: null, rows: [], tag: await this.tx.control(c) };
    if (c.kind === "catalog") {
      return await (await this.pgCatalog()).run(c.sql, params, this.catalogEnv());
    }
    if (c.kind === "copy") return await this.copy(c.copy);
    // `sqlOf` only when there are defaults to fill: an await less per statement otherwise.
    const sql = c.valuesDefault === undefined ? c.sql : await this.sqlOf(c);
    return outcomeOf(await this.runSql(sql, params));
  }

  /** The connection's catalog, made (and its modules loaded) on first use. */
  private async pgCatalog(): Promise<PgCatalog> {
    if (this.catalog) return this.catalog;
    const { PgCatalog } = await import("./pg_catalog/mod.ts");
    return this.catalog ??= new PgCatalog(this.opts.engine.interrupt ?? null);
  }

  /** The SQL of a statement for SQLite: `VALUES (DEFAULT, …)` filled with the columns' defaults. */
  async sqlOf(c: Extract<Classified, { kind: "sql" }>): Promise<string> {
    if (c.valuesDefault === undefined) return c.sql;
    const info = await this.runSql("SELECT name, dflt_value FROM pragma_table_info(?)", [
      c.valuesDefault,
    ]);
    return fillValuesDefaults(
      c.sql,
      info.rows.map((r) => [String(r[0]), r[1] === null ? null : String(r[1])]),
    );
  }

  /** The result columns and parameter count of a catalog query (Describe S). */
  async describeCatalog(sql: string): Promise<{ fields: CatalogField[]; paramCount: number }> {
    if (this.tx.failed) throw abortedTransaction();
    return await (await this.pgCatalog()).describe(sql, this.catalogEnv());
  }

  /** COPY FROM STDIN / TO STDOUT: rows go through runSql; FROM runs in one transaction. */
  private async copy(cmd: CopyCommand): Promise<Outcome> {
    const wire = this.opts.wire;
    const io = {
      out: wire.out,
      flush: () => wire.flush(),
      read: () => wire.reader.read(),
      run: (sql: string, params: SqlValue[]) => this.runSql(sql, params),
    };
    if (cmd.direction === "to") return { fields: null, rows: [], tag: await copyOut(cmd, io) };
    const begin = !this.tx.inBlock;
    if (begin) await this.tx.exec("BEGIN");
    try {
      const tag = await copyIn(cmd, io);
      if (begin) await this.tx.exec("COMMIT");
      return { fields: null, rows: [], tag };
    } catch (e) {
      if (begin && this.tx.inBlock) await this.tx.exec("ROLLBACK");
      throw e;
    }
  }

  private catalogEnv(): CatalogEnv {
    return {
      user: this.opts.user,
      database: this.db.id,
      pid: this.pid,
      settings: this.opts.settings,
      databases: () => this.opts.engine.ids(),
      query: async (sql) => (await this.runSql(sql, [])).rows,
      timeoutMs: effectiveTimeoutMs(
        this.opts.engine.statementTimeoutMs ?? 0,
        sessionTimeoutMs(this.opts.settings),
      ),
    };
  }

  /** Describes a statement without running it: in the session when it has a transaction open. */
  async describe(sql: string): Promise<PgDescription> {
    if (this.tx.failed) throw abortedTransaction();
    const session = this.session as
      | (Session & { describe?(sql: string): Promise<PgDescription> })
      | null;
    const viaSession = session?.inTransaction && typeof session.describe === "function";
    return await (viaSession ? session!.describe!(sql) : this.db.describe(sql));
  }

  /**
   * Executes one SQL statement in the session (or autocommit through the database), with an
   * AbortController that {@link Executor.cancel} reaches. One async function: a closure and a
   * promise less per statement than a wrapper taking a callback.
   */
  private async runSql(sql: string, params: SqlValue[]): Promise<StatementResult> {
    const stmt: Statement = params.length ? { sql, params } : { sql };
    const timeoutMs = sessionTimeoutMs(this.opts.settings);
    const spentMs = this.spentMs;
    this.spentMs = 0;
    this.opts.onQuery?.();
    const ac = new AbortController();
    this.running = ac;
    if (this.opts.gone()) ac.abort();
    try {
      const opts = { signal: ac.signal, timeoutMs, spentMs };
      if (this.session?.inTransaction) return await this.session.execute(stmt, opts);
      return (await this.db.execute([stmt], opts))[0];
    } finally {
      this.running = null;
    }
  }

  private catalogContext(): CatalogContext {
    return {
      settings: this.opts.settings,
      user: this.opts.user,
      database: this.db.id,
      pid: this.pid,
      databases: () => this.opts.engine.ids(),
      useDatabase: async (id: string) => {
        const next = this.opts.engine.get(id);
        const old = this.session;
        this.session = null;
        await old?.close();
        this.tx.recover();
        this.db = next;
        this.session = next.session();
        this.opts.prepared.reset();
      },
      deallocate: (name: string | null) => this.opts.prepared.deallocate(name),
    };
  }
}

/** The database a StartupMessage names; the usual default names mean the default database. */
export function resolveDatabase(engine: PgEngine, name: string, user: string): PgDatabase {
  try {
    return engine.get(name);
  } catch {
    if (["", "ha", "postgres", "template1", user].includes(name)) return engine.defaultDb;
    throw new PgError("3D000", `database "${name}" does not exist`, { fatal: true });
  }
}
