/**
 * The PostgreSQL catalog (`pg_catalog`, `information_schema`) that psql's `\d` commands, GUI
 * clients (DBeaver, pgAdmin) and ORMs (SQLAlchemy, Knex, Drizzle) query. A catalog query runs in
 * a private in-memory SQLite database of one connection, never in the user's database: its
 * tables are filled from the user database's schema (read with one statement through the
 * engine, in the client's transaction when one is open) and rebuilt only when that schema
 * changed. PostgreSQL syntax is rewritten first ({@link rewriteCatalogSql}); what is still not
 * understood fails with SQLSTATE 0A000 naming the query's unsupported part.
 *
 * The catalog database runs on the node's main thread: a runaway query (a cross join of catalog
 * tables, a recursive CTE) would freeze every connection. It loads the `ha_interrupt` extension,
 * whose progress handler stops a statement past the session's statement timeout inside SQLite
 * (SQLSTATE 57014). A PG CancelRequest cannot reach a running catalog query: it is read on the
 * blocked main thread only after the query ended, so the timeout is what bounds it.
 *
 * Detecting a catalog query costs one pass over the tokens the classifier has already made.
 *
 * @example
 * ```ts
 * if (isCatalogQuery(tokenize(sql))) {
 *   const catalog = new PgCatalog("/path/ha_interrupt.so"); // null: no timeout
 *   const r = await catalog.run(sql, [], env); // {fields, rows, tag}
 * }
 * ```
 * @module
 */
import { DatabaseSync, type SQLInputValue, type StatementSync } from "node:sqlite";
import { InterruptLib } from "../../engine/mod.ts";
import type { SqlValue } from "../../engine/types.ts";
import { PgError } from "../errors.ts";
import { columnOid, describedOid } from "../types.ts";
import { type FunctionEnv, registerFunctions } from "./functions.ts";
import { booleanItems, rewriteCatalogSql } from "./rewrite.ts";
import { OID } from "../types.ts";
import { parseSchema, SCHEMA_FINGERPRINT_SQL, SCHEMA_SQL } from "./schema.ts";
import { createCatalog, INFO_RELATIONS } from "./tables.ts";
import { type CatalogOids, fillCatalog } from "./fill.ts";

export { isCatalogQuery } from "./detect.ts";
export { rewriteCatalogSql } from "./rewrite.ts";
export { SCHEMA_SQL } from "./schema.ts";

/** What a catalog query needs from its connection. */
export interface CatalogEnv extends FunctionEnv {
  /** The statement timeout of the query in ms (0 = none). */
  timeoutMs: number;
  /** Runs a read statement on the user database (in the session's open transaction if any). */
  query(sql: string): Promise<SqlValue[][]>;
  /** Ids of all databases (`pg_database`). */
  databases(): string[];
}

/** A column of a catalog result. */
export interface CatalogField {
  name: string;
  oid: number;
}

/** The result of a catalog query. */
export interface CatalogResult {
  fields: CatalogField[];
  rows: SqlValue[][];
  tag: string;
}

/** Maps SQLite's complaint about a rewritten catalog query to a PostgreSQL error. */
function unsupported(e: unknown, sql: string): PgError {
  if (e instanceof PgError) return e;
  const msg = e instanceof Error ? e.message : String(e);
  const short = sql.replace(/\s+/g, " ").slice(0, 120);
  let m = /no such table: ([\w.]+)/.exec(msg);
  if (m) {
    return new PgError(
      "0A000",
      `catalog relation ${m[1]} is not supported by ha (in catalog query: ${short})`,
    );
  }
  m = /no such function: (\w+)/.exec(msg);
  if (m) {
    return new PgError(
      "0A000",
      `function ${m[1]}() is not supported by ha in catalog queries (in: ${short})`,
    );
  }
  m = /no such column: ([\w.]+)/.exec(msg);
  if (m) {
    return new PgError(
      "0A000",
      `catalog column ${m[1]} is not supported by ha (in catalog query: ${short})`,
    );
  }
  return new PgError("0A000", `catalog query not supported by ha: ${msg} (in: ${short})`);
}

/** One connection's catalog database; see the module doc. */
export class PgCatalog {
  private db: DatabaseSync | null = null;
  /** The schema rows and facts the catalog was built from. */
  private key = "";
  private oids: CatalogOids | null = null;
  private env: CatalogEnv | null = null;
  /** The first error a catalog function raised during the running statement. */
  private failure: unknown = null;
  private readonly statements = new Map<
    string,
    { stmt: StatementSync; sql: string; booleans: Set<number> }
  >();
  /** The interrupt extension's handle and the catalog database's guard (null: none). */
  private readonly native: InterruptLib | null;
  private guard: number | null = null;
  /** The interrupt scope of the last query (each query starts a fresh one). */
  private request = 0;

  /** `interrupt`: path of `ha_interrupt.so`; null = catalog queries have no timeout. */
  constructor(private readonly interrupt: string | null = null) {
    this.native = interrupt === null ? null : InterruptLib.open(interrupt);
  }

  /** Runs a catalog query with its parameters. */
  async run(sql: string, params: SqlValue[], env: CatalogEnv): Promise<CatalogResult> {
    const stmt = await this.prepare(sql, env);
    let rows: SqlValue[][];
    this.failure = null;
    if (this.native && this.guard !== null) {
      this.native.begin(this.guard, ++this.request, env.timeoutMs);
    }
    try {
      // all(), never iterate(): Deno's iterate() ends silently on an error (an interrupt too).
      rows = stmt.all(...params.map((p) => p as SQLInputValue)) as unknown as SqlValue[][];
    } catch (e) {
      if (this.native && this.guard !== null && this.native.reason(this.guard) === "timeout") {
        throw new PgError(
          "57014",
          `canceling statement due to statement timeout (${env.timeoutMs} ms; ` +
            "--statement-timeout, SET statement_timeout)",
        );
      }
      throw unsupported(e, sql);
    }
    if (this.failure !== null) throw unsupported(this.failure, sql);
    const cols = stmt.columns();
    const booleans = this.statements.get(sql)?.booleans;
    return {
      fields: cols.map((c, i) => ({
        name: c.name,
        oid: booleans?.has(i) ? OID.bool : columnOid(c.type ?? null, rows, i),
      })),
      rows,
      tag: `SELECT ${rows.length}`,
    };
  }

  /** The result columns and parameter count of a catalog query, without running it. */
  async describe(
    sql: string,
    env: CatalogEnv,
  ): Promise<{ fields: CatalogField[]; paramCount: number }> {
    const stmt = await this.prepare(sql, env);
    const p = this.statements.get(sql);
    const fields = stmt.columns().map((c, i) => ({
      name: c.name,
      oid: p?.booleans.has(i) ? OID.bool : describedOid(c.type ?? null),
    }));
    const rewritten = p?.sql ?? "";
    const params = [...rewritten.matchAll(/\?(\d+)/g)].map((m) => Number(m[1]));
    return { fields, paramCount: params.length ? Math.max(...params) : 0 };
  }

  /** Closes the catalog database. */
  close(): void {
    this.statements.clear();
    this.db?.close();
    this.db = null;
    this.guard = null;
  }

  private async prepare(sql: string, env: CatalogEnv): Promise<StatementSync> {
    await this.refresh(env);
    this.env = env;
    let p = this.statements.get(sql);
    if (!p) {
      const rewritten = rewriteCatalogSql(sql);
      try {
        const stmt = this.db!.prepare(rewritten);
        stmt.setReadBigInts(true);
        (stmt as unknown as { setReturnArrays(on: boolean): void }).setReturnArrays(true);
        p = { stmt, sql: rewritten, booleans: booleanItems(sql) };
      } catch (e) {
        throw unsupported(e, sql);
      }
      if (this.statements.size > 200) this.statements.clear();
      this.statements.set(sql, p);
    }
    if (/\bPG_SETTINGS\b/i.test(sql)) this.fillSettings(env);
    return p.stmt;
  }

  /** Rebuilds the catalog when the database's schema (or the facts shown) changed. */
  private async refresh(env: CatalogEnv): Promise<void> {
    // The schema's SQL text decides everything the catalog shows; reading it is cheap, the
    // per-table pragmas of SCHEMA_SQL are not (15 ms for 100 tables), so they run on change only.
    const text = await env.query(SCHEMA_FINGERPRINT_SQL);
    const dbs = env.databases();
    const key = JSON.stringify([env.user, env.database, dbs, text[0]?.[0] ?? ""]);
    if (key === this.key && this.db) return;
    const rows = await env.query(SCHEMA_SQL);
    this.close();
    // allowExtension enables the C API only: SQL load_extension() stays "not authorized".
    const db = new DatabaseSync(":memory:", { allowExtension: this.interrupt !== null });
    let guard: number | null = null;
    try {
      if (this.interrupt !== null) {
        db.loadExtension(this.interrupt);
        guard = Number((db.prepare("SELECT ha_guard_id() AS id").get() as { id: number }).id);
      }
      createCatalog(db);
      registerFunctions(db, () => this.env!, () => this.oids!, (e) => this.failure ??= e);
      db.exec("BEGIN");
      this.oids = fillCatalog(db, parseSchema(rows), {
        user: env.user,
        database: env.database,
        databases: dbs,
      });
      db.exec("COMMIT");
    } catch (e) {
      db.close();
      throw e;
    }
    this.db = db;
    this.guard = guard;
    this.key = key;
  }

  private fillSettings(env: CatalogEnv): void {
    const db = this.db!;
    db.exec("DELETE FROM pg_catalog.pg_settings");
    const ins = db.prepare(
      "INSERT INTO pg_catalog.pg_settings (name, setting, context, vartype, source, boot_val, " +
        "reset_val, category, short_desc) VALUES (?, ?, 'user', 'string', 'default', ?, ?, " +
        "'Ungrouped', '')",
    );
    for (const [k, v] of env.settings.all()) ins.run(k, v, v, v);
  }
}

/** Names of the information_schema relations the catalog has. */
export const INFORMATION_SCHEMA_RELATIONS = INFO_RELATIONS;
