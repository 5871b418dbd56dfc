/**
 * Writer plugins: code that runs inside a database's writer worker, next to
 * the one write connection, so that change capture and replication apply can
 * observe and take part in every write transaction without the engine knowing
 * about them (dependencies point from cdc/ and replication/ to engine/).
 *
 * A plugin module's default export is a {@link PluginFactory}. The engine
 * loads it by URL in the worker (`EngineOptions.plugins`).
 *
 * Transaction lifecycle on the writer, for every write (HTTP batch, PG
 * autocommit statement, PG BEGIN … COMMIT, or an `invoke`):
 * `BEGIN` → for each statement: prepare (authorizer records actions) →
 * `beforeStatement` → run → `afterStatement` → … → `beforeCommit` (still
 * inside the transaction; its return value travels to the main thread) →
 * `COMMIT`. On any error: `ROLLBACK` → `afterRollback`.
 *
 * @example
 * ```ts
 * // my_plugin.ts
 * import type { PluginFactory } from "../engine/plugin.ts";
 * const factory: PluginFactory = ({ db }) => ({
 *   beforeCommit: () => db.prepare("SELECT total_changes() AS n").get(),
 * });
 * export default factory;
 * ```
 */
import type { DatabaseSync } from "node:sqlite";

/** One authorizer callback seen while preparing a statement (sqlite3_set_authorizer). */
export interface AuthAction {
  /** SQLite action code, e.g. `Action.INSERT` from `authorizer.ts`. */
  code: number;
  arg1: string | null;
  arg2: string | null;
  /** Schema name (`main`, `temp`, attached alias) or null. */
  db: string | null;
  /** Innermost trigger or view responsible for the access, or null. */
  trigger: string | null;
}

/** A statement about to run (or just run) on the writer. */
export interface StatementInfo {
  /** The statement text exactly as the client sent it. */
  sql: string;
  /** Authorizer actions recorded while preparing it (top-level and triggers). */
  actions: AuthAction[];
}

/** Hooks a plugin may implement; all are synchronous except `invoke`. */
export interface WriterPlugin {
  /**
   * When the writer prepares a write statement: other SQL to prepare and run in its place (same
   * parameters, same result columns), or undefined. Asked again after the schema changed.
   */
  rewriteStatement?(info: StatementInfo): string | undefined;
  /** Before a statement runs inside a write transaction. May run SQL on `db`. */
  beforeStatement?(info: StatementInfo): void;
  /** After a statement ran successfully inside a write transaction. */
  afterStatement?(info: StatementInfo): void;
  /**
   * Inside the transaction, just before COMMIT. A non-undefined return value is
   * passed (structured-cloned) to the main thread's commit listeners.
   */
  beforeCommit?(): unknown;
  /** After a write transaction rolled back. */
  afterRollback?(): void;
  /**
   * Called from the main thread through `Database.invoke(method, args)`, with
   * the writer held exclusively (no transaction is open: manage your own).
   */
  invoke?(method: string, args: unknown): unknown | Promise<unknown>;
  /** Called when the worker shuts down. */
  close?(): void;
}

/** What a plugin is given when the writer connection opens. */
export interface PluginContext {
  /** Database id (file base name, e.g. `ha.db`). */
  databaseId: string;
  /** The writer connection. INTEGER values are read as bigint by the engine. */
  db: DatabaseSync;
  /** Options given by the main thread (structured-cloned). */
  options: unknown;
}

/** A plugin module's default export. */
export type PluginFactory = (ctx: PluginContext) => WriterPlugin | Promise<WriterPlugin>;

/** How the main thread names a plugin to load in every writer worker. */
export interface PluginSpec {
  /** Module URL (e.g. `new URL("./x.ts", import.meta.url).href`). */
  url: string;
  /** Options given to the factory. */
  options?: unknown;
}
