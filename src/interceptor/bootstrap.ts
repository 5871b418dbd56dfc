/**
 * The code that runs the user module in the sandbox process (`child.ts`), on its main thread:
 * imports the module, answers hook calls by id, relays `ctx.query`/`ctx.log`/`console.*` to ha,
 * reports crashes, and locks away what a hook must not use (nested workers).
 *
 * Messages leave already encoded (`[type, text]`) for the process to frame.
 *
 * @module
 */
import type { BootstrapInit, WorkerMessage } from "./protocol.ts";
import { decodeWire, encodeWire } from "./wire.ts";

/** How the bootstrap talks to ha (the process's pipes). */
export interface SandboxScope {
  /** Sends `[type, encoded message]`. */
  postMessage(message: [string, string]): void;
  /** Set by the bootstrap: receives every frame from ha as text. */
  onmessage: ((e: { data: string }) => void) | null;
}

type AnyFn = (...args: unknown[]) => unknown;

/** Runs the sandbox: see the module documentation. */
export function sandboxMain(
  scope: SandboxScope,
  init: BootstrapInit,
): void {
  const post = (m: WorkerMessage): void => scope.postMessage([m.type, encodeWire(m)]);
  const hookNames = ["beforeApply", "afterApply", "resolveConflict"];

  // No nested workers: they would escape the per-isolate heap limit and the call deadline.
  class Refused {
    constructor() {
      throw new TypeError("interceptors cannot start workers");
    }
  }
  Object.defineProperty(globalThis, "Worker", {
    value: Refused,
    writable: false,
    configurable: false,
  });

  const wireError = (e: unknown): { name: string; message: string; stack?: string } => {
    try {
      if (e instanceof Error) {
        // Name the module as the host knows it, for source maps.
        const stack = String(e.stack ?? "").replaceAll(init.url, init.stackUrl);
        return { name: e.name, message: String(e.message), stack };
      }
      return { name: "Error", message: `non-Error thrown: ${String(e)}` };
    } catch {
      return { name: "Error", message: "unprintable value thrown" };
    }
  };
  const fatal = (error: { name: string; message: string; stack?: string }): void => {
    try {
      post({ type: "fatal", error });
    } catch { /* the host times out instead */ }
  };

  // Crashes: report them instead of letting the runtime print and propagate them.
  globalThis.addEventListener("error", (e) => {
    e.preventDefault();
    const ev = e as ErrorEvent;
    fatal(wireError(ev.error ?? new Error(ev.message)));
  });
  globalThis.addEventListener("unhandledrejection", (e) => {
    e.preventDefault();
    fatal(wireError((e as PromiseRejectionEvent).reason));
  });
  const realClose = globalThis.close.bind(globalThis);
  Object.defineProperty(globalThis, "close", {
    value: () => {
      fatal({ name: "WorkerExit", message: "the interceptor closed its worker (close())" });
      realClose();
    },
    writable: false,
    configurable: false,
  });
  {
    const realExit = Deno.exit;
    Object.defineProperty(Deno, "exit", {
      value: (code?: unknown) => {
        fatal({ name: "WorkerExit", message: `the interceptor called Deno.exit(${String(code)})` });
        realExit(code as number | undefined);
      },
      writable: false,
      configurable: false,
    });
  }

  // console.* → the host's structured log.
  const inspect = (v: unknown): string => {
    if (typeof v === "string") return v;
    try {
      return Deno.inspect(v);
    } catch {
      return String(v);
    }
  };
  const levels: [string, string][] = [
    ["log", "info"],
    ["info", "info"],
    ["debug", "debug"],
    ["trace", "debug"],
    ["warn", "warn"],
    ["error", "error"],
  ];
  const con = console as unknown as Record<string, AnyFn>;
  for (const [method, level] of levels) {
    con[method] = (...args: unknown[]) => {
      post({ type: "log", level, msg: args.map(inspect).join(" ") });
    };
  }

  // ctx.query: one promise per query id, answered by the host.
  let nextQid = 0;
  const queries = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();
  const context = (id: number, db: string, hook: string) => ({
    database: db,
    node: init.node,
    query(sql: unknown, params?: unknown): Promise<unknown> {
      const qid = ++nextQid;
      return new Promise((resolve, reject) => {
        queries.set(qid, { resolve, reject });
        try {
          post({ type: "query", id, qid, sql, params });
        } catch (e) {
          queries.delete(qid);
          reject(new TypeError(`query parameters cannot be sent: ${wireError(e).message}`));
        }
      });
    },
    log(msg: unknown, fields?: unknown): void {
      try {
        post({ type: "log", level: "info", msg: String(msg), fields, hook, db });
      } catch {
        post({ type: "log", level: "info", msg: String(msg), hook, db });
      }
    },
  });

  const hooks: Record<string, AnyFn> = {};

  const cloneError = (e: unknown) => ({
    name: "DataCloneError",
    message: `the hook returned a value that cannot be sent to ha (${wireError(e).message})`,
  });
  const answer = (id: number, value: unknown): void => {
    try {
      post({ type: "result", id, ok: true, value });
    } catch (e) {
      if (Array.isArray(value)) {
        // A batch: keep the items that can be sent, report the others.
        const items = value.map((item: { ok: boolean; value?: unknown }) => {
          try {
            encodeWire(item);
            return item;
          } catch (err) {
            return { ok: false, error: cloneError(err) };
          }
        });
        try {
          post({ type: "result", id, ok: true, value: items });
          return;
        } catch { /* fall through */ }
      }
      post({ type: "result", id, ok: false, error: cloneError(e) });
    }
  };

  const onCall = async (
    m: { id: number; hook: string; db: string; args: unknown[] },
  ): Promise<void> => {
    // Batched calls run the hook once per item, in order, each item failing on its own.
    const batched: Record<string, [string, (item: unknown) => unknown[]]> = {
      resolveConflicts: ["resolveConflict", (c) => [c]],
      beforeApplyBatch: ["beforeApply", (cs) => [cs]],
      afterApplyBatch: ["afterApply", (pair) => pair as unknown[]],
    };
    const batch = batched[m.hook];
    const ctx = context(m.id, m.db, batch ? batch[0] : m.hook);
    try {
      if (batch) {
        const [hook, argsOf] = batch;
        const items: unknown[] = [];
        for (const item of m.args[0] as unknown[]) {
          try {
            items.push({ ok: true, value: await hooks[hook](...argsOf(item), ctx) });
          } catch (e) {
            items.push({ ok: false, error: wireError(e) });
          }
        }
        answer(m.id, items);
      } else if (m.hook === "beforeApply") {
        answer(m.id, await hooks.beforeApply(m.args[0], ctx));
      } else {
        answer(m.id, await hooks.afterApply(m.args[0], m.args[1], ctx));
      }
    } catch (e) {
      post({ type: "result", id: m.id, ok: false, error: wireError(e) });
    }
  };

  const onMessage = (e: { data: string }): void => {
    if (e.data === "ping") {
      scope.postMessage(["pong", ""]);
      return;
    }
    const m = decodeWire(e.data) as {
      type: string;
      qid: number;
      ok: boolean;
      value?: unknown;
      error?: string;
    };
    if (m.type === "queryResult") {
      const q = queries.get(m.qid);
      if (!q) return;
      queries.delete(m.qid);
      if (m.ok) q.resolve(m.value);
      else q.reject(new Error(m.error));
    } else if (m.type === "call") {
      void onCall(m as unknown as { id: number; hook: string; db: string; args: unknown[] });
    }
  };

  import(init.url).then(
    (mod: Record<string, unknown>) => {
      const named: Record<string, string> = {};
      const defaultHooks: Record<string, string> = {};
      const def = mod.default;
      for (const h of hookNames) {
        if (h in mod) named[h] = typeof mod[h];
        if (def !== null && typeof def === "object" && h in def) {
          defaultHooks[h] = typeof (def as Record<string, unknown>)[h];
        }
      }
      const source = Object.keys(named).length > 0 ? mod : (def ?? {}) as Record<string, unknown>;
      for (const h of hookNames) {
        if (typeof source[h] === "function") {
          const fn = source[h] as AnyFn;
          hooks[h] = (...args: unknown[]) => fn.apply(source, args);
        }
      }
      scope.onmessage = onMessage;
      post({
        type: "ready",
        info: {
          named,
          defaultType: def === null ? "null" : typeof def,
          defaultHooks,
          exports: Object.keys(mod).filter((k) => k !== "default"),
        },
      });
    },
    (e: unknown) => post({ type: "loadError", error: wireError(e) }),
  );
}
