/**
 * The host side of an interceptor: calls hooks in the sandbox, validates what they return,
 * and turns every failure (throw, invalid result, timeout, crashed worker) into a logged error,
 * a counted failure and the hook's documented default, replacing the worker when it is stuck
 * or dead. The node keeps serving whatever the user code does.
 *
 * @module
 */
import type {
  ApplyError,
  ChangeSet,
  Conflict,
  HookName,
  QueryParams,
  QueryResult,
  Resolution,
} from "../../interceptors/types.ts";
import { HaError } from "../errors/mod.ts";
import type { Fields, Logger, LogLevel } from "../log/mod.ts";
import type { BatchItem, CallHook, ReadyInfo } from "./protocol.ts";
import { type FailureKind, HookFailure, Sandbox, type SandboxEvents } from "./sandbox.ts";
import type { SourceMap } from "./sourcemap.ts";
import {
  type BeforeOutcome,
  InvalidResult,
  parseAfterResult,
  parseBeforeResult,
  parseResolution,
} from "./validate.ts";
import { Backoff } from "../retry/mod.ts";

/**
 * Runs one read-only statement on the local copy of database `db`; it must refuse statements that
 * write (the node passes the engine's read-only execute, which classifies statements itself).
 */
export type QueryFn = (db: string, sql: string, params?: QueryParams) => Promise<QueryResult>;

/** Options of {@link loadInterceptor}. */
export interface InterceptorOptions {
  /** Time limit of one hook call (a `resolveConflicts` batch is one call), and of ctx.query. */
  timeoutMs: number;
  /** Where hook failures, restarts and the module's own log lines go. */
  logger: Logger;
  /** Serves `ctx.query`; must refuse statements that write. */
  query: QueryFn;
  /** This node's name (`ctx.node`). Default `""`. */
  node?: string;
  /** Time limit for loading the module in a worker. Default `max(timeoutMs, 10 s)`. */
  startTimeoutMs?: number;
  /** The clock (ms) of the restart backoff; tests drive it. Default `Date.now`. */
  now?: () => number;
  /**
   * V8 heap limit of the sandbox process in MiB; as much again may be allocated outside the heap
   * (ArrayBuffers, WebAssembly). Default {@link DEFAULT_MEMORY_MB}.
   */
  memoryMb?: number;
}

/** Default {@link InterceptorOptions.memoryMb}. */
export const DEFAULT_MEMORY_MB = 256;
/** Log lines of the user module passed on at once, then per second (the rest is counted). */
export const LOG_BURST = 1000;
export const LOG_PER_SECOND = 100;

/** Counters of an interceptor host (a snapshot). */
export interface InterceptorStats {
  /** Hook invocations that reached the sandbox or tried to (batches count once). */
  calls: number;
  /** Hook outcomes replaced by the default (per conflict for resolveConflict). */
  failures: number;
  /** Failures by kind. */
  byKind: Record<Exclude<FailureKind, "stopped">, number>;
  /** Workers replaced after a hook failed (threw, garbage, timeout, crash). */
  restarts: number;
  /** `ctx.query` calls. */
  queries: number;
  /** `ctx.query` calls that failed or were rejected. */
  queryErrors: number;
}

const DEFAULT_TEXT: Record<HookName, string> = {
  beforeApply: "changeset applied unchanged",
  afterApply: "original outcome kept",
  resolveConflict: "last writer wins",
};

const LEVELS = new Set<string>(["debug", "info", "warn", "error"]);
const RESERVED_FIELDS = new Set(["time", "level", "msg"]);
/** A worker that fails to restart is retried after this long, doubling up to the cap. */
const RESTART_RETRY_INITIAL_MS = 1_000;
const RESTART_RETRY_MAX_MS = 30_000;

/** What {@link InterceptorHost} needs from the loader. */
export interface HostInit {
  display: string;
  /** The bundled module. */
  code: string;
  /** The module's URL in stack traces (the source map's key). */
  url: string;
  map: SourceMap;
  opts: InterceptorOptions;
  log: Logger;
}

/**
 * A loaded interceptor. Create it with {@link loadInterceptor}; call the hooks from the
 * replication applier; {@link InterceptorHost.stop} it after the subscribers stopped.
 */
export class InterceptorHost {
  /** The interceptor file as named in messages. */
  readonly file: string;
  readonly #url: string;
  readonly #code: string;
  readonly #map: SourceMap;
  /** Every sandbox process not yet reaped; stop() waits for them. */
  readonly #processes = new Set<Promise<void>>();
  #hooks = new Set<HookName>();
  readonly #opts: InterceptorOptions;
  readonly #log: Logger;
  #sandbox: Sandbox | null = null;
  #starting: Promise<Sandbox | null> | null = null;
  #retryAt = 0;
  readonly #restartBackoff = new Backoff({
    initialMs: RESTART_RETRY_INITIAL_MS,
    maxMs: RESTART_RETRY_MAX_MS,
  });
  #stopped = false;
  readonly #stats: InterceptorStats = {
    calls: 0,
    failures: 0,
    byKind: { threw: 0, invalid: 0, timeout: 0, crash: 0, unavailable: 0 },
    restarts: 0,
    queries: 0,
    queryErrors: 0,
  };

  /** @internal use {@link loadInterceptor}. */
  constructor(init: HostInit) {
    this.file = init.display;
    this.#url = init.url;
    this.#code = init.code;
    this.#map = init.map;
    this.#opts = init.opts;
    this.#log = init.log;
  }

  /** The hooks the module exports. */
  get hooks(): HookName[] {
    return [...this.#hooks];
  }

  /** Whether the module exports `hook` (skip the round trip when it does not). */
  has(hook: HookName): boolean {
    return this.#hooks.has(hook);
  }

  /** Total hook outcomes replaced by defaults. */
  get failures(): number {
    return this.#stats.failures;
  }

  /** A snapshot of the counters. */
  stats(): InterceptorStats {
    return structuredClone(this.#stats);
  }

  /**
   * Runs `beforeApply` on a remote changeset (hook view, see `toHookChangeSet`). Resolves to
   * `{skip: true}` or the changeset to apply (`rewritten` when the hook changed it; convert it
   * back with `toWireChangeSet`). Never rejects except with `HaError("cancelled")` after stop.
   *
   * @example
   * ```ts
   * const out = await host.beforeApply(toHookChangeSet(wire, { stream_seq }), "ha.db");
   * if (!out.skip && out.rewritten) wire = toWireChangeSet(out.changeset, wire);
   * ```
   */
  beforeApply(cs: ChangeSet, db: string): Promise<BeforeOutcome> {
    const fallback: BeforeOutcome = { skip: false, changeset: cs, rewritten: false };
    if (!this.#hooks.has("beforeApply")) return Promise.resolve(fallback);
    return this.#invoke(
      "beforeApply",
      "beforeApply",
      db,
      [cs],
      (raw) => parseBeforeResult(raw, cs),
      fallback,
    );
  }

  /**
   * Runs `afterApply` after the changeset was applied (`error` null) or rolled back. Resolves to
   * the final error: null means done (applied, or error swallowed), an error means retry.
   */
  afterApply(cs: ChangeSet, error: ApplyError | null, db: string): Promise<ApplyError | null> {
    if (!this.#hooks.has("afterApply")) return Promise.resolve(error);
    const err = error === null ? null : { message: String(error.message) };
    return this.#invoke(
      "afterApply",
      "afterApply",
      db,
      [cs, err],
      (raw) => parseAfterResult(raw, error),
      error,
    );
  }

  /**
   * Resolves every conflict of one changeset in ONE sandbox round trip. The result has one
   * entry per conflict, in order: `"local"`, `"remote"`, `{values}` or `undefined` (= last
   * writer wins). A failing item falls back alone; a failing call makes every item `undefined`.
   * Let all conflicts share one `changeset` object: it then crosses the boundary once.
   */
  resolveConflicts(conflicts: Conflict[], db: string): Promise<Resolution[]> {
    return this.#batch(
      "resolveConflict",
      "resolveConflicts",
      db,
      conflicts,
      conflicts,
      parseResolution,
      (): Resolution => undefined,
    );
  }

  /**
   * {@link beforeApply} for several changesets in ONE sandbox round trip (the hook still runs
   * once per changeset, in order). A failing item falls back alone.
   */
  beforeApplyBatch(changesets: ChangeSet[], db: string): Promise<BeforeOutcome[]> {
    return this.#batch(
      "beforeApply",
      "beforeApplyBatch",
      db,
      changesets,
      changesets,
      (raw, cs) => parseBeforeResult(raw, cs),
      (cs): BeforeOutcome => ({ skip: false, changeset: cs, rewritten: false }),
    );
  }

  /** {@link afterApply} for several outcomes in ONE sandbox round trip. */
  afterApplyBatch(
    items: { changeset: ChangeSet; error: ApplyError | null }[],
    db: string,
  ): Promise<(ApplyError | null)[]> {
    return this.#batch(
      "afterApply",
      "afterApplyBatch",
      db,
      items,
      items.map((
        i,
      ) => [i.changeset, i.error === null ? null : { message: String(i.error.message) }]),
      (raw, i) => parseAfterResult(raw, i.error),
      (i) => i.error,
    );
  }

  /** Runs a batched call; each item is validated on its own and falls back on its own. */
  async #batch<I, R>(
    hook: HookName,
    call: CallHook,
    db: string,
    items: I[],
    arg: unknown,
    parse: (raw: unknown, item: I) => R,
    fallback: (item: I) => R,
  ): Promise<R[]> {
    if (!this.#hooks.has(hook) || items.length === 0) return items.map(fallback);
    const raw = await this.#invoke<BatchItem[] | null>(
      hook,
      call,
      db,
      [arg],
      (raw) => {
        if (!Array.isArray(raw) || raw.length !== items.length) {
          throw new InvalidResult("the sandbox returned a malformed batch");
        }
        return raw as BatchItem[];
      },
      null,
      items.length,
    );
    if (!raw) return items.map(fallback);
    const out: R[] = [];
    let failed = 0;
    let first: { kind: FailureKind; message: string; stack?: string } | null = null;
    raw.forEach((item, i) => {
      try {
        if (!item.ok) {
          throw new HookFailure(
            "threw",
            `${item.error.name}: ${item.error.message}`,
            item.error.stack,
          );
        }
        out.push(parse(item.value, items[i]));
      } catch (e) {
        const f = classify(e);
        this.#stats.failures++;
        this.#stats.byKind[f.kind as Exclude<FailureKind, "stopped">]++;
        failed++;
        first ??= f;
        out.push(fallback(items[i]));
      }
    });
    if (first) {
      this.#logFailure(hook, db, first, { failed, of: items.length });
      this.#replaceAfter(hook, first);
    }
    return out;
  }

  /** Terminates the worker. Idempotent; later hook calls reject with `HaError("cancelled")`. */
  async stop(): Promise<void> {
    if (this.#stopped) return;
    this.#stopped = true;
    const starting = this.#starting;
    if (starting) (await starting)?.stop();
    this.#sandbox?.stop();
    this.#sandbox = null;
    await Promise.all(this.#processes);
  }

  /** The live sandbox process id, for tests that check it is really gone. */
  get pid(): number | null {
    return this.#sandbox && !this.#sandbox.dead ? this.#sandbox.pid : null;
  }

  /** @internal the loader hands over the first sandbox and the hooks it found. */
  adopt(sandbox: Sandbox, hooks: Set<HookName>): void {
    this.#sandbox = sandbox;
    this.#hooks = new Set(hooks);
  }

  /** @internal starts a sandbox process for this host's module. */
  startSandbox(): Promise<{ sandbox: Sandbox; info: ReadyInfo }> {
    const o = this.#opts;
    const started = Sandbox.start({
      code: this.#code,
      stackUrl: this.#url,
      node: o.node ?? "",
      startTimeoutMs: o.startTimeoutMs ?? Math.max(o.timeoutMs, 10_000),
      watchdogMs: o.timeoutMs + 1000,
      memoryMb: o.memoryMb ?? DEFAULT_MEMORY_MB,
      logBurst: LOG_BURST,
      logPerSecond: LOG_PER_SECOND,
    }, this.events());
    const closed = started.sandbox.closed;
    this.#processes.add(closed);
    void closed.then(() => this.#processes.delete(closed));
    return started.ready;
  }

  /** @internal events of every sandbox of this host. */
  events(): SandboxEvents {
    return {
      query: (db, sql, params) => this.#query(db, sql, params),
      log: (level, msg, fields, hook, db) => this.#userLog(level, msg, fields, hook, db),
      dead: (reason) => this.#onDead(reason),
    };
  }

  async #invoke<T>(
    hook: HookName,
    call: CallHook,
    db: string,
    args: unknown[],
    parse: (raw: unknown) => T,
    fallback: T,
    weight = 1,
  ): Promise<T> {
    this.#stats.calls++;
    try {
      const sandbox = await this.#ready();
      const raw = await sandbox.call(call, db, args, this.#opts.timeoutMs);
      return parse(raw);
    } catch (e) {
      const f = classify(e);
      if (f.kind === "stopped" || this.#stopped) {
        throw new HaError("cancelled", "interceptor stopped");
      }
      this.#stats.failures += weight;
      this.#stats.byKind[f.kind] += weight;
      this.#logFailure(hook, db, f, weight > 1 ? { failed: weight, of: weight } : {});
      this.#replaceAfter(hook, f);
      return fallback;
    }
  }

  /**
   * A hook that threw or answered garbage may have left its module in a bad state: its worker is
   * replaced like one that timed out or crashed (those are already gone).
   */
  #replaceAfter(hook: HookName, f: { kind: FailureKind; message: string }): void {
    if (f.kind !== "threw" && f.kind !== "invalid") return;
    const s = this.#sandbox;
    if (s && !s.dead) {
      s.kill(`${hook} ${f.kind === "threw" ? "threw" : "returned garbage"}: ${f.message}`);
    }
  }

  #logFailure(
    hook: HookName,
    db: string,
    f: { kind: FailureKind; message: string; stack?: string },
    extra: Fields,
  ): void {
    const fields: Fields = {
      hook,
      db,
      kind: f.kind,
      reason: f.message,
      fallback: DEFAULT_TEXT[hook],
      ...extra,
    };
    if (f.stack) {
      const at = this.#map.firstPosition(f.stack, this.#url);
      if (at) fields.at = `${at.file}:${at.line}:${at.column}`;
      fields.stack = userFrames(this.#map.rewrite(f.stack, this.#url));
    }
    this.#log.error(`interceptor ${hook} failed (${f.kind}): ${DEFAULT_TEXT[hook]}`, fields);
  }

  async #ready(): Promise<Sandbox> {
    if (this.#stopped) throw new HookFailure("stopped", "interceptor stopped");
    if (this.#sandbox && !this.#sandbox.dead) return this.#sandbox;
    if (!this.#starting) {
      const now = this.#now();
      if (now < this.#retryAt) {
        throw new HookFailure(
          "unavailable",
          `worker restart failed; next attempt in ${this.#retryAt - now} ms`,
        );
      }
      this.#respawn();
    }
    const s = await this.#starting;
    if (this.#stopped) throw new HookFailure("stopped", "interceptor stopped");
    if (!s) throw new HookFailure("unavailable", "worker restart failed");
    return s;
  }

  #now(): number {
    return this.#opts.now?.() ?? Date.now();
  }

  #onDead(reason: string): void {
    this.#sandbox = null;
    if (this.#stopped) return;
    this.#stats.restarts++;
    this.#log.warn("interceptor worker replaced", { reason });
    if (!this.#starting) this.#respawn();
  }

  #respawn(): void {
    this.#starting = this.startSandbox()
      .then(({ sandbox }) => {
        if (this.#stopped) {
          sandbox.stop();
          return null;
        }
        this.#sandbox = sandbox;
        this.#restartBackoff.reset();
        this.#retryAt = 0;
        return sandbox;
      }, (e: unknown) => {
        const f = classify(e);
        const wait = this.#restartBackoff.next();
        this.#retryAt = this.#now() + wait;
        if (!this.#stopped) {
          this.#log.error("interceptor worker failed to restart", {
            reason: f.stack ? this.#map.rewrite(`${f.message}\n${f.stack}`, this.#url) : f.message,
            retry_in_ms: wait,
          });
        }
        return null;
      })
      .finally(() => {
        this.#starting = null;
      });
  }

  async #query(db: string, sql: unknown, params: unknown): Promise<QueryResult> {
    this.#stats.queries++;
    try {
      if (typeof sql !== "string") throw new TypeError("ctx.query: sql must be a string");
      if (
        params !== undefined && params !== null && typeof params !== "object"
      ) {
        throw new TypeError("ctx.query: params must be an array or an object");
      }
      const p = (params ?? undefined) as QueryParams | undefined;
      return await withTimeout(this.#opts.query(db, sql, p), this.#opts.timeoutMs);
    } catch (e) {
      this.#stats.queryErrors++;
      this.#log.debug("interceptor query failed", { db, error: (e as Error).message });
      throw e;
    }
  }

  #userLog(level: string, msg: string, fields: unknown, hook?: string, db?: string): void {
    const lv = (LEVELS.has(level) ? level : "info") as LogLevel;
    const out: Fields = {};
    if (fields !== null && typeof fields === "object" && !Array.isArray(fields)) {
      for (const [k, v] of Object.entries(fields)) if (!RESERVED_FIELDS.has(k)) out[k] = v;
    }
    if (hook) out.hook = hook;
    if (db) out.db = db;
    this.#log[lv](msg.length > 8192 ? `${msg.slice(0, 8192)}…` : msg, out);
  }
}

function classify(e: unknown): { kind: FailureKind; message: string; stack?: string } {
  if (e instanceof HookFailure) return { kind: e.kind, message: e.message, stack: e.userStack };
  if (e instanceof InvalidResult) {
    return { kind: "invalid", message: `invalid result: ${e.message}` };
  }
  return { kind: "invalid", message: (e as Error)?.message ?? String(e) };
}

/** The stack without the sandbox's own frames (those of bootstrap.ts and below). */
function userFrames(stack: string): string {
  const lines = stack.split("\n");
  const end = lines.findIndex((l) => l.includes("interceptor/bootstrap.ts"));
  return (end < 0 ? lines : lines.slice(0, end)).join("\n");
}

function withTimeout<T>(p: Promise<T>, ms: number): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  return Promise.race([
    p,
    new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`ctx.query: no result within ${ms} ms`)), ms);
    }),
  ]).finally(() => clearTimeout(timer));
}
