/**
 * One sandbox worker: a Deno Worker with no permissions running the bootstrap and the user
 * bundle, with request/response by id, per-call timeouts and death detection. The host
 * (`host.ts`) replaces a dead sandbox; a sandbox never comes back to life.
 *
 * @module
 */
import type { QueryResult } from "../../interceptors/types.ts";
import { bootstrapSource } from "./bootstrap.ts";
import type { CallHook, HostMessage, ReadyInfo, WireError, WorkerMessage } from "./protocol.ts";

/** Why a call did not produce a result. */
export type FailureKind =
  /** The hook threw (or rejected). */
  | "threw"
  /** The hook returned something that is not a documented shape. */
  | "invalid"
  /** No answer within the time limit: the worker is replaced. */
  | "timeout"
  /** The worker died (uncaught error, close(), Deno.exit()) or was replaced. */
  | "crash"
  /** No worker: restarting it failed, retried later. */
  | "unavailable"
  /** The host was stopped. */
  | "stopped";

/** A failed hook call. */
export class HookFailure extends Error {
  /**
   * A failure of one call.
   *
   * @param kind what went wrong
   * @param message one line for the log
   * @param userStack the stack trace inside the user module, when there is one
   */
  constructor(kind: FailureKind, message: string, userStack?: string) {
    super(message);
    this.name = "HookFailure";
    this.kind = kind;
    this.userStack = userStack;
  }
  /** What went wrong. */
  readonly kind: FailureKind;
  /** The stack trace inside the user module (bundle positions), when there is one. */
  readonly userStack?: string;
}

/** What a sandbox asks of its host. */
export interface SandboxEvents {
  /** `ctx.query` of the call `db` belongs to; already checked to be one read-only statement. */
  query(db: string, sql: unknown, params: unknown): Promise<QueryResult>;
  /** `ctx.log` and `console.*`. */
  log(level: string, msg: string, fields: unknown, hook?: string, db?: string): void;
  /** The sandbox died; every pending call has been failed already. */
  dead(reason: string): void;
}

interface Pending {
  hook: CallHook;
  db: string;
  resolve: (v: unknown) => void;
  reject: (e: HookFailure) => void;
  timer: ReturnType<typeof setTimeout>;
}

/** A running sandbox worker. */
export class Sandbox {
  readonly #worker: Worker;
  readonly #pending = new Map<number, Pending>();
  readonly #events: SandboxEvents;
  #nextId = 0;
  #dead = false;

  private constructor(worker: Worker, events: SandboxEvents) {
    this.#worker = worker;
    this.#events = events;
  }

  /**
   * Starts a worker on the user bundle at `url` and waits until the module is loaded.
   * Rejects with the module's load error (top-level throw) or a startup timeout.
   */
  static start(
    url: string,
    node: string,
    startTimeoutMs: number,
    events: SandboxEvents,
  ): Promise<{ sandbox: Sandbox; info: ReadyInfo }> {
    const src = bootstrapSource({ url, node });
    const worker = new Worker(`data:text/javascript;base64,${toBase64(src)}`, {
      type: "module",
      name: "ha-interceptor",
      deno: { permissions: "none" },
    } as WorkerOptions);
    const sandbox = new Sandbox(worker, events);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        worker.terminate();
        reject(
          new HookFailure(
            "timeout",
            `module did not finish loading within ${startTimeoutMs} ms ` +
              `(top-level code must not block)`,
          ),
        );
      }, startTimeoutMs);
      worker.onerror = (e) => {
        e.preventDefault();
        clearTimeout(timer);
        worker.terminate();
        reject(new HookFailure("crash", `worker failed to start: ${e.message}`));
      };
      worker.onmessage = (e: MessageEvent<WorkerMessage>) => {
        const m = e.data;
        clearTimeout(timer);
        if (m.type === "ready") {
          sandbox.#attach();
          resolve({ sandbox, info: m.info });
        } else {
          worker.terminate();
          const err = m.type === "loadError" || m.type === "fatal" ? m.error : null;
          reject(
            new HookFailure(
              "crash",
              err ? `${err.name}: ${err.message}` : "unexpected message",
              err?.stack,
            ),
          );
        }
      };
    });
  }

  /** Whether the sandbox is gone (terminated or crashed). */
  get dead(): boolean {
    return this.#dead;
  }

  /** Number of calls waiting for an answer. */
  get pending(): number {
    return this.#pending.size;
  }

  /**
   * Calls a hook; resolves with the raw (unvalidated) result. A timeout kills the sandbox.
   */
  call(hook: CallHook, db: string, args: unknown[], timeoutMs: number): Promise<unknown> {
    if (this.#dead) return Promise.reject(new HookFailure("crash", "worker is gone"));
    const id = ++this.#nextId;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#pending.delete(id);
        reject(new HookFailure("timeout", `no answer within ${timeoutMs} ms`));
        this.kill(`${hook} timed out after ${timeoutMs} ms`);
      }, timeoutMs);
      this.#pending.set(id, { hook, db, resolve, reject, timer });
      try {
        this.#worker.postMessage({ type: "call", id, hook, db, args } as HostMessage);
      } catch (e) {
        clearTimeout(timer);
        this.#pending.delete(id);
        reject(new HookFailure("invalid", `arguments cannot be sent: ${(e as Error).message}`));
      }
    });
  }

  /** Terminates the worker and fails every pending call with `reason`. Idempotent. */
  kill(reason: string): void {
    if (this.#dead) return;
    this.#dead = true;
    this.#worker.terminate();
    for (const p of this.#pending.values()) {
      clearTimeout(p.timer);
      p.reject(new HookFailure("crash", `worker replaced: ${reason}`));
    }
    this.#pending.clear();
    this.#events.dead(reason);
  }

  /** Terminates without reporting death (shutdown). Pending calls fail as "stopped". */
  stop(): void {
    if (this.#dead) return;
    this.#dead = true;
    this.#worker.terminate();
    for (const p of this.#pending.values()) {
      clearTimeout(p.timer);
      p.reject(new HookFailure("stopped", "interceptor stopped"));
    }
    this.#pending.clear();
  }

  #attach(): void {
    this.#worker.onerror = (e) => {
      e.preventDefault();
      this.kill(`uncaught error in the worker: ${e.message}`);
    };
    this.#worker.onmessageerror = () => this.kill("a message from the worker could not be read");
    this.#worker.onmessage = (e: MessageEvent<WorkerMessage>) => this.#onMessage(e.data);
  }

  #onMessage(m: WorkerMessage): void {
    if (this.#dead) return;
    switch (m.type) {
      case "result": {
        const p = this.#pending.get(m.id);
        if (!p) return;
        this.#pending.delete(m.id);
        clearTimeout(p.timer);
        if (m.ok) p.resolve(m.value);
        else p.reject(failure(m.error));
        return;
      }
      case "query":
        void this.#onQuery(m.id, m.qid, m.sql, m.params);
        return;
      case "log": {
        this.#events.log(m.level, String(m.msg), m.fields, m.hook, m.db);
        return;
      }
      case "fatal":
        this.kill(`${m.error.name}: ${m.error.message}`);
        return;
      default:
        return;
    }
  }

  async #onQuery(id: number, qid: number, sql: unknown, params: unknown): Promise<void> {
    const p = this.#pending.get(id);
    let reply: HostMessage;
    if (!p) {
      reply = { type: "queryResult", qid, ok: false, error: "the hook call is already over" };
    } else {
      try {
        const value = await this.#events.query(p.db, sql, params);
        reply = { type: "queryResult", qid, ok: true, value };
      } catch (e) {
        reply = { type: "queryResult", qid, ok: false, error: (e as Error).message };
      }
    }
    if (this.#dead) return;
    try {
      this.#worker.postMessage(reply);
    } catch (e) {
      this.#worker.postMessage({
        type: "queryResult",
        qid,
        ok: false,
        error: `query result cannot be sent: ${(e as Error).message}`,
      } as HostMessage);
    }
  }
}

function failure(e: WireError): HookFailure {
  const kind = e.name === "DataCloneError" ? "invalid" : "threw";
  return new HookFailure(kind, `${e.name}: ${e.message}`, e.stack);
}

function toBase64(s: string): string {
  const bytes = new TextEncoder().encode(s);
  let bin = "";
  for (let i = 0; i < bytes.length; i += 0x8000) {
    bin += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  }
  return btoa(bin);
}
