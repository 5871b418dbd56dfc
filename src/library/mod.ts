/**
 * The library behind the package entry `mod.ts`: {@link HaDatabase} (a node running in this
 * process), its options and value types.
 *
 * @example
 * ```ts
 * import { HaDatabase } from "./mod.ts";
 * const db = await HaDatabase.open({ path: ":memory:" });
 * await db.close();
 * ```
 * @module
 */
export { HaDatabase, type QueryResult, type Transaction } from "./database.ts";
export {
  configOf,
  type EmbeddedNatsOptions,
  type HttpOptions,
  type LibraryConfig,
  type OpenOptions,
  type PgOptions,
} from "./options.ts";
export { type Param, type QueryParams, toParams, toValue, type Value } from "./values.ts";
