/**
 * The SQLite engine: opening databases, executing statements and batches,
 * sessions, value mapping and backups. Knows nothing of HTTP or NATS.
 *
 * @example
 * ```ts
 * const engine = await openEngine({ dsns: [], memory: true, concurrentQueries: 50, logger });
 * const [r] = await engine.defaultDb.execute([{ sql: "SELECT 1 AS one" }]);
 * ```
 */
export * from "./types.ts";
export { Engine, type EngineOptions, openEngine } from "./engine.ts";
export { type CommitListener, Database, type Description } from "./database.ts";
export { type DatabaseSource, parseDsn, resolveSources } from "./dsn.ts";
export { countParameters, leadingCommand, splitStatements, transactionControl } from "./split.ts";
export type {
  AuthAction,
  CommandCall,
  CommandHandlers,
  PluginClient,
  PluginCommand,
  PluginCommands,
  PluginContext,
  PluginFactory,
  PluginSpec,
  StatementInfo,
  WriterPlugin,
} from "./plugin.ts";
export { Action } from "./authorizer.ts";
export { deferFunctionError } from "./function_errors.ts";
export { checkFollowerSource, readOnlyRefusal } from "./read_only.ts";
export { BUILD_HINT, EXTENSION_URL, findInterruptExtension } from "./native/locate.ts";
export { InterruptLib } from "./native/interrupt.ts";
export { type Token, tokenize } from "./lexer.ts";
