/**
 * Public interceptor API of ha. Import these types (type-only imports vanish when ha bundles your
 * module) and export the hooks you need from your own file:
 *
 * @example
 * ```ts
 * import type { ResolveConflict } from "./mod.ts";
 *
 * // Keep whichever row has the larger `version` column; ties go to last-writer-wins.
 * export const resolveConflict: ResolveConflict = (c) => {
 *   const i = c.columns.indexOf("version");
 *   const l = c.local.values?.[i], r = c.remote.values?.[i];
 *   if (typeof l !== "bigint" || typeof r !== "bigint" || l === r) return undefined;
 *   return l > r ? "local" : "remote";
 * };
 * ```
 *
 * Run it: `ha --interceptor my_resolver.ts`. See `interceptors/README.md` for the rules.
 * @module
 */
export type {
  AfterApply,
  AfterResult,
  ApplyError,
  BeforeApply,
  BeforeResult,
  Change,
  ChangeSet,
  Conflict,
  HookContext,
  HookName,
  Interceptor,
  Operation,
  QueryParams,
  QueryResult,
  Resolution,
  ResolveConflict,
  SqlValue,
} from "./types.ts";
