/**
 * Messages between the host (ha) and the sandbox process (`child.ts`, `bootstrap.ts`). Everything crosses as tagged JSON frames (`wire.ts`), so `bigint` and
 * `Uint8Array` values arrive intact.
 *
 * ```
 * host → process init {code, init, …}      once, first frame (see SandboxInit)
 * sandbox → host  ready | loadError          once, after importing the user module
 * host → sandbox  call {id, hook, db, args}  one per hook invocation (resolveConflicts: a batch)
 * sandbox → host  query {id, qid, sql, params}   ctx.query() during call `id`
 * host → sandbox  queryResult {qid, ok, …}
 * sandbox → host  log {level, msg, fields}   ctx.log() and console.*
 * sandbox → host  result {id, ok, value|error}
 * sandbox → host  fatal {error}              uncaught error, self.close(), Deno.exit()
 * ```
 *
 * @module
 */
import type {
  ApplyError,
  ChangeSet,
  Conflict,
  HookName,
  QueryResult,
} from "../../interceptors/types.ts";

/** An error as it crosses the boundary. */
export interface WireError {
  name: string;
  message: string;
  stack?: string;
}

/**
 * The hooks as the host calls them: `resolveConflicts`, `beforeApplyBatch` and
 * `afterApplyBatch` run the hook once per item in ONE round trip.
 */
export type CallHook =
  | "beforeApply"
  | "afterApply"
  | "resolveConflicts"
  | "beforeApplyBatch"
  | "afterApplyBatch";

/** Per-item outcome of a batched call. */
export type BatchItem = { ok: true; value: unknown } | { ok: false; error: WireError };

/** What the bootstrap found in the user module. */
export interface ReadyInfo {
  /** `typeof` of each named hook export that exists. */
  named: Partial<Record<HookName, string>>;
  /** `typeof` of the default export (`"undefined"` when none). */
  defaultType: string;
  /** `typeof` of each hook property of a default export object. */
  defaultHooks: Partial<Record<HookName, string>>;
  /** Every named export (to spot typos). */
  exports: string[];
}

/** Host → worker. */
export type HostMessage =
  | { type: "call"; id: number; hook: "beforeApply"; db: string; args: [ChangeSet] }
  | {
    type: "call";
    id: number;
    hook: "afterApply";
    db: string;
    args: [ChangeSet, ApplyError | null];
  }
  | { type: "call"; id: number; hook: "resolveConflicts"; db: string; args: [Conflict[]] }
  | { type: "call"; id: number; hook: "beforeApplyBatch"; db: string; args: [ChangeSet[]] }
  | {
    type: "call";
    id: number;
    hook: "afterApplyBatch";
    db: string;
    args: [[ChangeSet, ApplyError | null][]];
  }
  | { type: "queryResult"; qid: number; ok: true; value: QueryResult }
  | { type: "queryResult"; qid: number; ok: false; error: string };

/** Worker → host. */
export type WorkerMessage =
  | { type: "ready"; info: ReadyInfo }
  | { type: "loadError"; error: WireError }
  | { type: "result"; id: number; ok: true; value: unknown }
  | { type: "result"; id: number; ok: false; error: WireError }
  | { type: "query"; id: number; qid: number; sql: unknown; params: unknown }
  | { type: "log"; level: string; msg: string; fields?: unknown; hook?: string; db?: string }
  | { type: "fatal"; error: WireError }
  /** From the process relay: log lines it dropped over its budget since the last report. */
  | { type: "dropped"; lines: number }
  /** The answer to a `ping` frame (raw text, not JSON) from ha. */
  | { type: "pong" };

/** Static configuration the bootstrap is started with. */
export interface BootstrapInit {
  /** blob: URL of the bundled user module (in the sandbox process). */
  url: string;
  /** The URL the host knows the module by: stack traces name it instead of `url`. */
  stackUrl: string;
  /** This node's name (`ctx.node`). */
  node: string;
}

/** The first frame ha sends to a sandbox process. */
export interface SandboxInit {
  type: "init";
  /** The bundled user module. */
  code: string;
  /** See {@link BootstrapInit}. */
  stackUrl: string;
  node: string;
  /** Log lines the process forwards: `logBurst` at once, `logPerSecond` in the long run. */
  logPerSecond: number;
  logBurst: number;
}
