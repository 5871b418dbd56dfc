/**
 * Writer plugins: code that runs inside a database's writer worker, next to
 * the one write connection, so that change capture and replication apply can
 * observe and take part in every write transaction without the engine knowing
 * about them (dependencies point from cdc/ and replication/ to engine/).
 *
 * A plugin module's default export is a {@link PluginFactory}. The engine
 * loads it by URL in the worker (`EngineOptions.plugins`).
 *
 * A plugin may also answer commands from the main thread (typed RPC, one handler per command):
 * the plugin's package declares its {@link PluginCommands} map once, the plugin implements it
 * as {@link WriterPlugin.commands}, and the main thread calls it through the typed
 * {@link PluginClient} that `Database.plugin(name)` hands out.
 *
 * Transaction lifecycle on the writer, for every write (HTTP batch, PG
 * autocommit statement, PG BEGIN … COMMIT, or a command):
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

/** One command of a plugin: what the main thread sends and what the plugin answers. */
export interface PluginCommand {
  args: unknown;
  result: unknown;
}

/**
 * A plugin's commands by name (a type alias, not an interface, so that it fits the index
 * signature). Arguments and results are structured-cloned between threads.
 *
 * @example
 * ```ts
 * type CounterCommands = { add: { args: number; result: number } };
 * ```
 */
export type PluginCommands = Record<string, PluginCommand>;

/** The plugin side of {@link PluginCommands}: one handler per command. */
export type CommandHandlers<C extends PluginCommands> = {
  [K in keyof C]: (args: C[K]["args"]) => C[K]["result"] | Promise<C[K]["result"]>;
};

/** Sends one command of `C` to the plugin and resolves with its typed result. */
export type CommandCall<C extends PluginCommands> = <K extends keyof C & string>(
  method: K,
  args: C[K]["args"],
) => Promise<C[K]["result"]>;

/** The main thread's typed handle on one writer plugin of one database (`Database.plugin`). */
export interface PluginClient<C extends PluginCommands> {
  /** Runs one command with the writer held exclusively (no transaction is open). */
  call: CommandCall<C>;
  /**
   * Runs `f` with the writer held exclusively; every `call` it makes runs under that one lock
   * (e.g. detect conflicts, then apply).
   */
  locked<T>(f: (call: CommandCall<C>) => Promise<T>): Promise<T>;
  /**
   * Runs one command like {@link call}, but frees the writer once the command is sent instead of
   * once its answer is back: the writer runs requests in the order they were sent, so the next
   * holder's request waits inside the writer thread, not for a hand-over through this one.
   * `args` is computed when the command is sent (what arrived while waiting for the writer can
   * join it); `transfer`: buffers of it moved to the writer instead of copied.
   */
  sendNext<K extends keyof C & string>(
    method: K,
    args: () => C[K]["args"],
    transfer?: (args: C[K]["args"]) => ArrayBuffer[],
  ): Promise<C[K]["result"]>;
}

/** Hooks a plugin may implement; all are synchronous except the command handlers. */
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
   * Command handlers (a {@link CommandHandlers} map), called from the main thread through a
   * {@link PluginClient} with the writer held exclusively (no transaction is open: manage your
   * own). `never` arguments let any typed map fit; the worker passes the structured-cloned value.
   */
  commands?: Record<string, (args: never) => unknown>;
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
  /** Unique name the main thread addresses the plugin by (`Database.plugin(name)`). */
  name: string;
  /** Module URL (e.g. `new URL("./x.ts", import.meta.url).href`). */
  url: string;
  /** Options given to the factory. */
  options?: unknown;
}
