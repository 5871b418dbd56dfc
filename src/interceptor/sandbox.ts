/**
 * One sandbox: a child process of ha (`child.ts`) without permissions or environment, with a V8
 * heap limit, a cap on its data segment and a CPU lease, running the bootstrap and the user
 * bundle. Request/response by id over length-prefixed frames on its stdin/stdout, per-call
 * timeouts, a ping watchdog, death detection. A timeout kills the whole process group: a
 * spinning hook, its WebAssembly and its memory go with it. The host (`host.ts`) replaces a dead
 * sandbox; a sandbox never comes back to life.
 *
 * @module
 */
import type { QueryResult } from "../../interceptors/types.ts";
import { SANDBOX_FLAG } from "./flag.ts";
import { leaseCpu, limitDataSegment } from "./limits.ts";
import type {
  CallHook,
  HostMessage,
  ReadyInfo,
  SandboxInit,
  WireError,
  WorkerMessage,
} from "./protocol.ts";
import { decodeWire, encodeWire, frame, LogBudget, readFrames } from "./wire.ts";

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

/** How to start a sandbox. */
export interface SandboxSpec {
  /** The bundled user module. */
  code: string;
  /** The URL stack traces name the module by (the host's source-map key). */
  stackUrl: string;
  /** `ctx.node`. */
  node: string;
  /** Time limit for loading the module. */
  startTimeoutMs: number;
  /** A sandbox that does not answer a ping for this long (spinning outside a call) is killed. */
  watchdogMs: number;
  /** V8 heap limit, and the growth allowed to the data segment (ArrayBuffers, WebAssembly). */
  memoryMb: number;
  /** Log lines passed on at once, and per second in the long run. */
  logBurst: number;
  logPerSecond: number;
}

interface Pending {
  hook: CallHook;
  db: string;
  resolve: (v: unknown) => void;
  reject: (e: HookFailure) => void;
  timer: ReturnType<typeof setTimeout>;
}

/** Bytes of the process's stderr kept to explain its death. */
const STDERR_TAIL = 2048;

/** A running sandbox process. */
export class Sandbox {
  readonly #proc: Deno.ChildProcess;
  readonly #in: WritableStreamDefaultWriter<Uint8Array>;
  readonly #pending = new Map<number, Pending>();
  readonly #events: SandboxEvents;
  readonly #budget: LogBudget;
  #onFrame: (m: WorkerMessage) => void = () => {};
  /** Called instead of `events.dead` while starting. */
  #onDeath: ((reason: string) => void) | null = null;
  #stderr = "";
  #nextId = 0;
  #dead = false;
  #watchdog: ReturnType<typeof setInterval> | undefined;
  /** A pong came since the last ping. */
  #ponged = true;
  /** Settles when the process has exited and its pipes are drained. */
  readonly closed: Promise<void>;

  private constructor(spec: SandboxSpec, events: SandboxEvents) {
    this.#events = events;
    this.#budget = new LogBudget(spec.logPerSecond, spec.logBurst);
    this.#proc = new Deno.Command(Deno.execPath(), {
      args: sandboxArgs(),
      stdin: "piped",
      stdout: "piped",
      stderr: "piped",
      // Its own process group (killed as one), and none of ha's environment (tokens, passwords).
      detached: true,
      clearEnv: true,
      env: sandboxEnv(spec.memoryMb),
    }).spawn();
    this.#in = this.#proc.stdin.getWriter();
    this.closed = Promise.all([this.#pump(), this.#drainStderr(), this.#proc.status]).then(
      ([, , status]) => {
        this.kill(this.#deathReason(status));
      },
    );
    this.#send(
      {
        type: "init",
        code: spec.code,
        stackUrl: spec.stackUrl,
        node: spec.node,
        logPerSecond: spec.logPerSecond,
        logBurst: spec.logBurst,
      } satisfies SandboxInit,
    );
  }

  /** The sandbox process id. */
  get pid(): number {
    return this.#proc.pid;
  }

  /**
   * Starts a sandbox process on the user bundle; `ready` settles when the module is loaded, or
   * rejects with its load error (top-level throw) or a startup timeout.
   */
  static start(
    spec: SandboxSpec,
    events: SandboxEvents,
  ): { sandbox: Sandbox; ready: Promise<{ sandbox: Sandbox; info: ReadyInfo }> } {
    const sandbox = new Sandbox(spec, events);
    const ready = new Promise<{ sandbox: Sandbox; info: ReadyInfo }>((resolve, reject) => {
      const fail = (f: HookFailure) => {
        clearTimeout(timer);
        sandbox.#onFrame = () => {};
        sandbox.stop();
        reject(f);
      };
      const timer = setTimeout(() => {
        fail(
          new HookFailure(
            "timeout",
            `module did not finish loading within ${spec.startTimeoutMs} ms ` +
              `(top-level code must not block)`,
          ),
        );
      }, spec.startTimeoutMs);
      sandbox.#onDeath = (reason) => fail(new HookFailure("crash", reason));
      sandbox.#onFrame = (m) => {
        if (m.type === "log" || m.type === "dropped") return sandbox.#onMessage(m);
        if (m.type === "ready") {
          clearTimeout(timer);
          sandbox.#onDeath = null;
          sandbox.#onFrame = (m) => sandbox.#onMessage(m);
          // The heap grows inside the data segment too: room for the heap and as much again outside.
          const err = limitDataSegment(sandbox.pid, 2 * spec.memoryMb * 1024 * 1024);
          if (err) {
            events.log("warn", `interceptor memory bounded by the heap limit only: ${err}`, {});
          }
          sandbox.#watch(spec.watchdogMs);
          resolve({ sandbox, info: m.info });
          return;
        }
        const err = m.type === "loadError" || m.type === "fatal" ? m.error : null;
        fail(
          new HookFailure(
            "crash",
            err ? `${err.name}: ${err.message}` : "unexpected message",
            err?.stack,
          ),
        );
      };
    });
    return { sandbox, ready };
  }

  /** Whether the sandbox is gone (killed or crashed). */
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
    let text: string;
    try {
      text = encodeWire({ type: "call", id, hook, db, args });
    } catch (e) {
      return Promise.reject(
        new HookFailure("invalid", `arguments cannot be sent: ${(e as Error).message}`),
      );
    }
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#pending.delete(id);
        reject(new HookFailure("timeout", `no answer within ${timeoutMs} ms`));
        this.kill(`${hook} timed out after ${timeoutMs} ms`);
      }, timeoutMs);
      this.#pending.set(id, { hook, db, resolve, reject, timer });
      this.#write(text);
    });
  }

  /** Kills the process group and fails every pending call with `reason`. Idempotent. */
  kill(reason: string): void {
    if (this.#dead) return;
    this.#dead = true;
    this.#terminate();
    for (const p of this.#pending.values()) {
      clearTimeout(p.timer);
      p.reject(new HookFailure("crash", `worker replaced: ${reason}`));
    }
    this.#pending.clear();
    if (this.#onDeath) this.#onDeath(reason);
    else this.#events.dead(reason);
  }

  /** Kills without reporting death (shutdown). Pending calls fail as "stopped". */
  stop(): void {
    if (this.#dead) return;
    this.#dead = true;
    this.#terminate();
    for (const p of this.#pending.values()) {
      clearTimeout(p.timer);
      p.reject(new HookFailure("stopped", "interceptor stopped"));
    }
    this.#pending.clear();
  }

  /**
   * Pings the sandbox every `ms / 4`; one that misses 4 pings in a row (spinning outside a call;
   * a call past its timeout is killed earlier) is killed. Misses are counted in ticks, not wall
   * time, so a stall of ha's own event loop is not blamed on the sandbox. Renews the CPU lease.
   */
  #watch(ms: number): void {
    const leaseSeconds = Math.ceil(Math.max(10_000, 2 * ms) / 1000);
    leaseCpu(this.pid, leaseSeconds);
    let missed = 0;
    this.#ponged = true;
    this.#watchdog = setInterval(() => {
      missed = this.#ponged ? 0 : missed + 1;
      if (missed >= 4) {
        this.kill(`a hook kept the sandbox busy outside any call for ${ms} ms`);
        return;
      }
      this.#ponged = false;
      leaseCpu(this.pid, leaseSeconds);
      this.#write("ping");
    }, Math.max(50, Math.floor(ms / 4)));
  }

  #terminate(): void {
    clearInterval(this.#watchdog);
    try {
      Deno.kill(-this.#proc.pid, "SIGKILL");
    } catch { /* already gone */ }
    this.#in.close().catch(() => {});
  }

  #send(m: SandboxInit | HostMessage): void {
    this.#write(encodeWire(m));
  }

  #write(text: string): void {
    if (this.#dead) return;
    this.#in.write(frame(text)).catch(() => {/* the process is gone: #pump reports it */});
  }

  async #pump(): Promise<void> {
    try {
      for await (const text of readFrames(this.#proc.stdout)) {
        if (this.#dead) continue;
        let m: WorkerMessage;
        try {
          m = decodeWire(text) as WorkerMessage;
        } catch (e) {
          throw new Error(`unreadable message from the sandbox: ${(e as Error).message}`);
        }
        if (m === null || typeof m !== "object") throw new Error("malformed message");
        this.#onFrame(m);
      }
    } catch (e) {
      this.kill(`protocol error: ${(e as Error).message}`);
      for await (const _ of this.#proc.stdout) { /* drain until the process is gone */ }
    }
  }

  async #drainStderr(): Promise<void> {
    const decoder = new TextDecoder();
    for await (const chunk of this.#proc.stderr) {
      this.#stderr = (this.#stderr + decoder.decode(chunk, { stream: true })).slice(-STDERR_TAIL);
    }
  }

  #deathReason(status: Deno.CommandStatus): string {
    if (/out of memory|heap limit|allocation failed/i.test(this.#stderr)) {
      return "memory limit reached";
    }
    if (status.signal === "SIGXCPU") return "CPU lease ran out";
    const how = status.signal ? `signal ${status.signal}` : `exit code ${status.code}`;
    const last = this.#stderr.trim().split("\n").slice(-3).join(" | ");
    return `sandbox process ended (${how})${last ? `: ${last}` : ""}`;
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
        // The process enforces the same budget; this one holds if user code writes frames itself.
        if (!this.#budget.take()) return;
        this.#events.log(m.level, String(m.msg), m.fields, m.hook, m.db);
        return;
      }
      case "pong":
        this.#ponged = true;
        return;
      case "dropped": {
        const lines = Number(m.lines) + this.#budget.takeDropped();
        this.#events.log("warn", `interceptor log lines dropped over the rate limit`, { lines });
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
    try {
      this.#send(reply);
    } catch (e) {
      this.#send({
        type: "queryResult",
        qid,
        ok: false,
        error: `query result cannot be sent: ${(e as Error).message}`,
      });
    }
  }
}

function failure(e: WireError): HookFailure {
  const kind = e.name === "DataCloneError" ? "invalid" : "threw";
  return new HookFailure(kind, `${e.name}: ${e.message}`, e.stack);
}

/** Arguments of the sandbox process: the compiled binary re-runs itself; from source, child.ts. */
function sandboxArgs(): string[] {
  if (Deno.build.standalone) return [SANDBOX_FLAG];
  const child = new URL("./child.ts", import.meta.url).href;
  return ["run", "--no-prompt", "--no-config", "--no-lock", child];
}

/** The sandbox's environment: the heap limit, and where deno keeps its cache (from source). */
function sandboxEnv(memoryMb: number): Record<string, string> {
  const env: Record<string, string> = {
    DENO_V8_FLAGS: `--max-old-space-size=${memoryMb}`,
    NO_COLOR: "1",
  };
  // PATH only so that a denied subprocess says "not capable" rather than "not found"; the
  // cache locations so that `deno run` finds its cache.
  const keep = Deno.build.standalone ? ["PATH"] : ["PATH", "DENO_DIR", "HOME", "XDG_CACHE_HOME"];
  for (const k of keep) {
    const v = Deno.env.get(k);
    if (v !== undefined) env[k] = v;
  }
  return env;
}
