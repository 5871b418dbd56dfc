/**
 * One synchronous SQLite connection as used inside an engine worker: opening
 * (file, URI, memory, load-into-memory), a prepared-statement cache, statement
 * classification through the authorizer, and running statements.
 */
import { DatabaseSync, type StatementSync } from "node:sqlite";
import { Action, AUTH_OK, setAuthorizer } from "./authorizer.ts";
import { HaError } from "../errors/mod.ts";
import { takeFunctionError } from "./function_errors.ts";
import type { AuthAction, StatementInfo } from "./plugin.ts";
import type { ColumnInfo, Params, SqlValue, StatementResult } from "./types.ts";
import { anonymousDollars, bindArgs } from "./bind.ts";
import { internalWrite } from "./internal_tables.ts";
import { leadingCommand } from "./split.ts";
import { fromSqliteError } from "./sqlite_error.ts";
import { ARGUMENT_READS, clientDenial, SQLITE_AUTH, type SqlPolicy } from "./sql_policy.ts";

/** How the engine must route a statement. */
export type StatementKind =
  | "read"
  | "write"
  | "begin"
  | "commit"
  | "rollback"
  | "savepoint";

/** What opening a connection needs (structured-cloneable). */
export interface OpenSpec {
  /** File path (for memory databases, a file in a RAM-backed directory: see memory_dir.ts). */
  path: string;
  memory: boolean;
  /** For memory databases: a file to load at start (writer only), if it exists. */
  loadFrom?: string;
  uriParams: string;
  pragmas: [string, string][];
  readOnly: boolean;
  /** SQLite extensions to load (paths). */
  extensions: string[];
  /** Path of `ha_interrupt.so` (statement timeouts and cancel), loaded first; absent = none. */
  interrupt?: string;
  /** Statements may change ha's `_ha_*` tables (otherwise refused at prepare). */
  allowInternalWrites?: boolean;
  /** What client statements may do (ATTACH, PRAGMA...); absent = the defaults. */
  policy?: SqlPolicy;
}

/** A prepared statement with what the authorizer told about it. */
export interface Prepared {
  stmt: StatementSync;
  actions: AuthAction[];
  kind: StatementKind;
  command: string;
  returnsColumns: boolean;
  /** For a rewritten statement: the schema version it was rewritten for. */
  schemaVersion?: bigint;
  /** Its result columns, kept while the schema is pinned (see `Connection.pinSchema`). */
  columns?: ColumnInfo[];
  /** `stmt.sourceSQL`, read once (a native getter: a string made on every call). */
  sourceSql?: string;
  /** Whether it ATTACHes (`actions` has one), worked out once. */
  attaches?: boolean;
  /** Prepared from its text's {@link anonymousDollars}: `$N` values bind by position. */
  anonymous?: boolean;
}

const READ_ACTIONS = new Set<number>([
  Action.SELECT,
  Action.READ,
  Action.FUNCTION,
  Action.RECURSIVE,
]);

const CACHE_SIZE = 256;
/** `SQLITE_DENY` for an authorizer callback: the statement fails with "not authorized". */
const AUTH_DENY = 1;

/**
 * A connection plus its statement cache.
 *
 * Client statements are prepared and run in client mode, where the authorizer enforces the
 * {@link SqlPolicy} (also on what SQLite prepares while they run: `VACUUM INTO`'s target, pragma
 * table-valued functions). Everything else on the connection — the engine's transaction control
 * and backups, writer plugins (replication capture and apply) — runs outside it, unchecked.
 */
export class Connection {
  readonly db: DatabaseSync;
  private readonly cache = new Map<string, Prepared>();
  private recording: AuthAction[] | null = null;
  private readonly policy: SqlPolicy;
  private client = false;
  /** Why the authorizer refused the client statement in progress. */
  private denied: string | null = null;

  private readonly allowInternalWrites: boolean;
  /** Rewrites write statements before they run (writer plugins), or null. */
  rewrite: ((info: StatementInfo) => string | undefined) | null = null;
  /**
   * `last_insert_rowid()` as the user's statements left it, restored before each statement so
   * that inserts made by plugins (capture logs, outbox, apply) never show through; null = off.
   */
  private userLastId: bigint | null = null;
  private setLastId: StatementSync | null = null;
  /** Transaction control statements of the group commit, prepared once (see `control`). */
  private readonly controls = new Map<string, StatementSync>();
  /** This connection's `ha_interrupt` guard id, or null without the extension. */
  readonly guard: number | null;
  /** Result columns are kept (`pinSchema`), for the schema version `columnsSchema`. */
  private pinned = false;
  private columnsSchema: bigint | null = null;
  /** The schema version while {@link holdSchema} holds (null: read it again). */
  private heldSchema: bigint | null = null;
  private holding = false;
  /** A reader: it never inserts, so its `last_insert_rowid()` stays 0 (no query per read). */
  private readonly readOnly: boolean;

  constructor(spec: OpenSpec) {
    this.db = openDatabase(spec);
    this.readOnly = spec.readOnly;
    this.guard = spec.interrupt
      ? Number((this.db.prepare("SELECT ha_guard_id() AS id").get() as { id: number }).id)
      : null;
    this.allowInternalWrites = spec.allowInternalWrites ?? false;
    this.policy = spec.policy ?? { attachDir: null };
    setAuthorizer(this.db, (code, arg1, arg2, db, trigger) => {
      const a = { code, arg1, arg2, db, trigger };
      this.recording?.push(a);
      if (!this.client) return AUTH_OK;
      const why = clientDenial(a, this.policy);
      if (why === null) return AUTH_OK;
      this.denied ??= why;
      return AUTH_DENY;
    });
  }

  /** Runs `f` in client mode; a policy refusal becomes a clear error. */
  private asClient<T>(f: () => T): T {
    if (this.client) return f();
    this.client = true;
    this.denied = null;
    try {
      return f();
    } catch (e) {
      if (this.denied === null) throw fromSqliteError(e);
      throw new HaError("sql", `not authorized: ${this.denied}`, {
        sqliteCode: SQLITE_AUTH,
        sqliteName: "SQLITE_AUTH",
      });
    } finally {
      this.client = false;
      this.denied = null;
    }
  }

  /** Prepares (or reuses) `sql`, classifying it. Throws HaError on SQL errors. */
  prepare(sql: string): Prepared {
    const hit = this.cache.get(sql);
    if (hit && (hit.schemaVersion === undefined || hit.schemaVersion === this.schemaVersion())) {
      this.cache.delete(sql);
      this.cache.set(sql, hit);
      return hit;
    }
    // SQLite stops at a NUL: "\0…" prepares to no statement, whose sourceSQL crashes node:sqlite.
    if (sql.includes("\0")) throw new HaError("bad_request", "SQL must not contain NUL characters");
    const actions: AuthAction[] = [];
    this.recording = actions;
    let stmt: StatementSync;
    try {
      stmt = this.asClient(() => this.db.prepare(sql));
    } finally {
      this.recording = null;
    }
    const internal = this.allowInternalWrites ? null : internalWrite(actions);
    if (internal !== null) {
      throw new HaError("bad_request", `${internal} is internal to ha: clients cannot change it`);
    }
    configure(stmt);
    const returnsColumns = stmt.columns().length > 0;
    const prepared: Prepared = {
      stmt,
      actions,
      kind: classify(actions),
      command: commandOf(sql, actions),
      returnsColumns,
    };
    const other = prepared.kind === "write" ? this.rewrite?.({ sql, actions }) : undefined;
    if (other !== undefined) {
      prepared.stmt = this.prepareOwn(other);
      prepared.schemaVersion = this.schemaVersion();
    }
    // Reads and DML bind `$1 … $n` by position; the plugins see the text with `$N` (sourceSql).
    const text = other ?? sql;
    const c = prepared.command;
    const dml = prepared.kind === "write" && (c === "INSERT" || c === "UPDATE" || c === "DELETE");
    const anonymous = prepared.kind === "read" || dml ? anonymousDollars(text) : null;
    if (anonymous !== null) {
      if (other !== undefined) prepared.stmt = this.prepareOwn(anonymous);
      else configure(prepared.stmt = this.asClient(() => this.db.prepare(anonymous)));
      prepared.sourceSql = text;
      prepared.anonymous = true;
    }
    this.cache.set(sql, prepared);
    if (this.cache.size > CACHE_SIZE) this.cache.delete(this.cache.keys().next().value!);
    return prepared;
  }

  /** Prepares ha's rewrite of a client statement (not in client mode), configured. */
  private prepareOwn(sql: string): StatementSync {
    let stmt: StatementSync;
    try {
      stmt = this.db.prepare(sql);
    } catch (e) {
      throw fromSqliteError(e);
    }
    configure(stmt);
    return stmt;
  }

  /** Makes `run` report each statement's own `last_insert_rowid()` (see `userLastId`). */
  trackLastInsertId(): void {
    this.exec("CREATE TEMP TABLE IF NOT EXISTS _ha_last_id(k INTEGER NOT NULL DEFAULT 0 UNIQUE)");
    this.userLastId = 0n;
  }

  /** Sets `last_insert_rowid()` back to the user's value when something else changed it. */
  private restoreLastInsertId(): void {
    const want = this.userLastId;
    if (want === null || this.lastInsertRowid() === want) return;
    // One statement: the row with the wanted rowid replaces the previous one (the UNIQUE column
    // conflicts), so the table keeps one row. On the raw connection: ha's own statement, not a
    // client's (`internal_tables.ts`).
    this.setLastId ??= this.db.prepare("INSERT OR REPLACE INTO temp._ha_last_id(rowid) VALUES (?)");
    this.setLastId.run(want);
  }

  private schemaVersion(): bigint {
    if (this.heldSchema !== null) return this.heldSchema;
    const v = this.scalar("PRAGMA schema_version") as bigint;
    if (this.holding) this.heldSchema = v;
    return v;
  }

  /**
   * From now until {@link releaseSchema}, the schema version is read once, not at every prepare
   * of a rewritten statement: for a run of DML statements, which cannot change the schema (a
   * group commit's requests; each read cost a `PRAGMA schema_version`). Calling it again reads
   * the version again at the next prepare.
   */
  holdSchema(): void {
    this.holding = true;
    this.heldSchema = null;
  }

  /** Ends {@link holdSchema}. */
  releaseSchema(): void {
    this.holding = false;
    this.heldSchema = null;
  }

  /**
   * In a read transaction: the schema cannot change before it ends, so result columns are read
   * once per statement and kept for as long as the schema version stays the one seen here.
   */
  pinSchema(): void {
    const version = this.schemaVersion();
    if (version !== this.columnsSchema) {
      for (const p of this.cache.values()) p.columns = undefined;
    }
    this.columnsSchema = version;
    this.pinned = true;
  }

  /** Ends `pinSchema`: each run reads its columns again (SQLite may re-prepare after DDL). */
  unpinSchema(): void {
    this.pinned = false;
  }

  /** Drops cached statements (after DDL the engine re-prepares anyway; this frees memory). */
  clearCache(): void {
    this.cache.clear();
  }

  /** Runs a prepared statement with `params`. */
  run(p: Prepared, params: Params | undefined): StatementResult {
    const args = bindArgs(p.sourceSql ??= p.stmt.sourceSQL, params, p.anonymous);
    // An allowed ATTACH (inside --attach-dir) lasts for its statement only: SQLite refuses
    // ATTACH inside a transaction, so nothing later in the request could use it anyway.
    p.attaches ??= p.actions.some((a) => a.code === Action.ATTACH);
    const before = p.attaches ? this.schemas() : null;
    takeFunctionError(); // nothing left over from a statement that did not run through run()
    try {
      this.restoreLastInsertId();
      let result: StatementResult;
      try {
        result = this.asClient(() => this.runStatement(p, args));
      } catch (e) {
        throw takeFunctionError() ?? e;
      }
      const deferred = takeFunctionError();
      if (deferred) throw deferred;
      if (this.userLastId !== null) this.userLastId = result.lastInsertId;
      return result;
    } finally {
      if (before !== null) this.detachExcept(before);
    }
  }

  private runStatement(p: Prepared, args: unknown[]): StatementResult {
    if (p.returnsColumns) {
      const rows = p.stmt.all(...args as SqlValue[]) as unknown as SqlValue[][];
      const changes = p.command === "INSERT" || p.command === "UPDATE" || p.command === "DELETE"
        ? Number(this.changes())
        : 0;
      return {
        columns: !this.pinned ? columnsOf(p.stmt) : (p.columns ??= columnsOf(p.stmt)),
        rows,
        rowsAffected: changes,
        lastInsertId: this.readOnly ? 0n : this.lastInsertRowid(),
        command: p.command,
      };
    }
    const r = p.stmt.run(...args as SqlValue[]);
    const writes = p.command === "INSERT" || p.command === "UPDATE" ||
      p.command === "DELETE";
    return {
      columns: [],
      rows: [],
      rowsAffected: writes ? Number(r.changes) : 0,
      lastInsertId: BigInt(r.lastInsertRowid),
      command: p.command,
    };
  }

  /** Names of the schemas attached to the connection. */
  private schemas(): Set<string> {
    const rows = this.db.prepare("PRAGMA database_list").all() as { name: string }[];
    return new Set(rows.map((r) => r.name));
  }

  /** Detaches every schema not in `keep`. */
  private detachExcept(keep: Set<string>): void {
    for (const name of this.schemas()) {
      if (!keep.has(name)) this.db.exec(`DETACH DATABASE "${name.replace(/"/g, '""')}"`);
    }
  }

  /** Column names and declared types of a prepared statement. */
  describe(sql: string): ColumnInfo[] {
    return columnsOf(this.prepare(sql).stmt);
  }

  /**
   * Runs an engine-internal statement with no result and no parameters (`BEGIN IMMEDIATE`,
   * `SAVEPOINT`, `RELEASE`, `COMMIT`) prepared once: `exec` parses it and calls the authorizer
   * each time, several times per group commit.
   */
  control(sql: string): void {
    try {
      let s = this.controls.get(sql);
      if (s === undefined) this.controls.set(sql, s = this.db.prepare(sql));
      s.run();
    } catch (e) {
      throw fromSqliteError(e);
    }
  }

  /** Executes SQL with no result (engine-internal statements). */
  exec(sql: string): void {
    try {
      this.db.exec(sql);
    } catch (e) {
      throw fromSqliteError(e);
    }
  }

  /**
   * Writes a consistent copy to the file `path` with VACUUM INTO (the target
   * names the OS VFS explicitly, whatever VFS this connection uses).
   */
  backupTo(path: string): void {
    const vfs = Deno.build.os === "windows" ? "win32" : "unix";
    this.exec(`VACUUM INTO '${fileUri(path).replace(/'/g, "''")}?vfs=${vfs}'`);
  }

  /** True while a transaction is open on this connection. */
  get inTransaction(): boolean {
    return this.db.isTransaction;
  }

  private changes(): bigint {
    return this.scalar("SELECT changes()") as bigint;
  }

  private lastInsertRowid(): bigint {
    return this.scalar("SELECT last_insert_rowid()") as bigint;
  }

  /** First column of the first row of an internal query. */
  scalar(sql: string): SqlValue {
    const row = this.prepare(sql).stmt.get() as unknown as SqlValue[] | undefined;
    return row?.[0] ?? null;
  }

  close(): void {
    this.cache.clear();
    this.controls.clear();
    if (this.db.isOpen) this.db.close();
  }
}

function configure(stmt: StatementSync): void {
  stmt.setReadBigInts(true);
  (stmt as unknown as { setReturnArrays(on: boolean): void }).setReturnArrays(true);
  stmt.setAllowBareNamedParameters(true);
}

function columnsOf(stmt: StatementSync): ColumnInfo[] {
  return stmt.columns().map((c) => ({ name: c.name, declType: c.type ?? null }));
}

/**
 * Schema PRAGMAs (`ARGUMENT_READS`) and these header reads only read what every connection sees
 * alike, so a reader answers them as the writer would. Other PRAGMAs read or set per-connection
 * state and go to the writer.
 */
const HEADER_PRAGMAS = new Set([
  "user_version",
  "application_id",
  "schema_version",
  "page_count",
  "page_size",
  "freelist_count",
]);

function readsOnly(a: AuthAction): boolean {
  if (READ_ACTIONS.has(a.code)) return true;
  if (a.code !== Action.PRAGMA || a.arg1 === null) return false;
  const name = a.arg1.toLowerCase();
  return ARGUMENT_READS.has(name) || (a.arg2 === null && HEADER_PRAGMAS.has(name));
}

function classify(actions: AuthAction[]): StatementKind {
  for (const a of actions) {
    if (a.code === Action.TRANSACTION) {
      if (a.arg1 === "BEGIN") return "begin";
      if (a.arg1 === "COMMIT") return "commit";
      return "rollback";
    }
    if (a.code === Action.SAVEPOINT) return "savepoint";
  }
  // Statements the authorizer says nothing about (VACUUM) are not known to be reads.
  return actions.length > 0 && actions.every(readsOnly) ? "read" : "write";
}

function commandOf(sql: string, actions: AuthAction[]): string {
  const lead = leadingCommand(sql);
  if (lead !== "WITH") return lead;
  const top = actions.filter((a) => a.trigger === null);
  if (top.some((a) => a.code === Action.INSERT)) return "INSERT";
  if (top.some((a) => a.code === Action.DELETE)) return "DELETE";
  if (top.some((a) => a.code === Action.UPDATE)) return "UPDATE";
  return "SELECT";
}

function openDatabase(spec: OpenSpec): DatabaseSync {
  const uri = spec.memory
    ? fileUri(spec.path)
    : `${fileUri(spec.path)}${spec.uriParams ? "?" + spec.uriParams : ""}`;
  let db: DatabaseSync;
  try {
    db = new DatabaseSync(uri, {
      readOnly: spec.readOnly,
      // Enables the C API only: the SQL function load_extension() stays off (and is denied).
      allowExtension: spec.extensions.length > 0 || spec.interrupt !== undefined,
      timeout: 5000,
    });
  } catch (e) {
    throw new HaError("config", `cannot open database ${spec.path}: ${(e as Error).message}`);
  }
  try {
    if (spec.loadFrom) loadInto(db, spec);
    if (spec.interrupt) db.loadExtension(spec.interrupt);
    // A memory database is a file on a RAM-backed filesystem: WAL so readers never wait for the
    // writer; no fsync, it does not outlive the process anyway.
    if (spec.memory && !spec.readOnly) db.exec("PRAGMA journal_mode=WAL; PRAGMA synchronous=OFF");
    for (const ext of spec.extensions) db.loadExtension(ext);
    for (const [name, value] of spec.pragmas) {
      if (spec.readOnly && name === "journal_mode") continue;
      db.exec(`PRAGMA ${name} = ${value}`);
    }
  } catch (e) {
    db.close();
    if (e instanceof HaError) throw e;
    throw new HaError("config", `cannot open database ${spec.path}: ${(e as Error).message}`);
  }
  return db;
}

/** A `file:` URI for a path (SQLite URI syntax: `?` and `#` must be escaped). */
function fileUri(path: string): string {
  return `file:${encodeURI(path).replace(/\?/g, "%3f").replace(/#/g, "%23")}`;
}

/** Copies an existing database file into the fresh, empty memory database `db` points at. */
function loadInto(_db: DatabaseSync, spec: OpenSpec): void {
  let exists = false;
  try {
    exists = Deno.statSync(spec.loadFrom!).isFile;
  } catch {
    exists = false;
  }
  if (!exists) return;
  const src = new DatabaseSync(spec.loadFrom!, { readOnly: true });
  try {
    // VACUUM INTO accepts the empty file `db` just created.
    src.exec(`VACUUM INTO '${spec.path.replace(/'/g, "''")}'`);
  } finally {
    src.close();
  }
}

/** Throws a clear error for statements a stateless request may not run. */
export function rejectTransactionControl(p: Prepared): void {
  if (
    p.kind === "begin" || p.kind === "commit" || p.kind === "rollback" || p.kind === "savepoint"
  ) {
    throw new HaError(
      "bad_request",
      `transaction control statements (${p.command}) are not allowed here: ` +
        "send an array of statements to run them in one transaction",
    );
  }
}
