/**
 * User interceptors (`--interceptor FILE`): the module is bundled with esbuild at start and run
 * in a sandbox process without permissions (sandbox.ts); the replication applier calls its hooks through an
 * {@link InterceptorHost}. Hook types live in `interceptors/` (the public API users import).
 *
 * Order of calls for one remote changeset (the applier's side):
 * 1. `host.beforeApply(toHookChangeSet(wire, meta), db)` → skip, or the changeset to apply
 *    (`toWireChangeSet(out.changeset, wire)` when `rewritten`);
 * 2. find conflicting rows, `host.resolveConflicts(conflicts, db)` (one round trip), apply in
 *    one transaction honouring the resolutions;
 * 3. `host.afterApply(cs, error, db)` → the final error (null: done and ack, else retry).
 *
 * @example
 * ```ts
 * const host = await loadInterceptor(config.interceptor, {
 *   timeoutMs: config.interceptorTimeoutMs, logger, node: config.nodeName,
 *   query: (db, sql, params) => readOnlyQuery(db, sql, params),
 * });
 * const out = await host.beforeApply(toHookChangeSet(wire, { stream_seq: 7 }), "ha.db");
 * await host.stop();
 * ```
 * @module
 */
export { checkExports, exportPosition, HOOK_NAMES, loadInterceptor } from "./load.ts";
export {
  type InterceptorHost,
  type InterceptorOptions,
  type InterceptorStats,
  type QueryFn,
} from "./host.ts";
export { type BeforeOutcome, InvalidResult, isSqlValue } from "./validate.ts";
export {
  type StreamMeta,
  toHookChange,
  toHookChangeSet,
  toWireChange,
  toWireChangeSet,
} from "./convert.ts";
export { type FailureKind, HookFailure } from "./sandbox.ts";
export type { ReadyInfo } from "./protocol.ts";
