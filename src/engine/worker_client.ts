/** The main thread's handle on one engine worker: request/response over postMessage. */
import { HaError } from "../errors/mod.ts";
import type { InterruptLib, StopReason } from "./native/interrupt.ts";
import type { OpenReply, Reply, Request } from "./protocol.ts";
import type { Statement } from "./types.ts";

type Pending = {
  resolve: (v: unknown) => void;
  reject: (e: unknown) => void;
  /** A client's statement (stopped at shutdown), not ha's own work. */
  client: boolean;
  /** The ids of a group request's items, each stoppable alone. */
  items?: number[];
};

// Distributive Omit, so each request variant keeps its own fields.
type RequestBody = Request extends infer R ? R extends Request ? Omit<R, "id"> : never : never;

/** Requests that run client SQL. */
const CLIENT = new Set<Request["t"]>(["exec", "txBegin", "txExec", "describe", "txDescribe"]);

/** Options of a {@link WorkerClient}. */
export interface WorkerClientOptions {
  /** The `ha_interrupt` extension, to stop statements; null = not loaded. */
  native?: InterruptLib | null;
  /**
   * Without the extension, a cancelled request kills the worker instead (a reader: it holds
   * nothing the node needs; its thread may run on until the statement ends).
   */
  killable?: boolean;
  /** Called on each reply before anyone waiting for it resumes. */
  onReply?: () => void;
}

/** A worker running `worker.ts`, with correlated requests. */
export class WorkerClient {
  private readonly worker: Worker;
  private readonly pending = new Map<number, Pending>();
  private nextId = 1;
  private dead: HaError | null = null;
  /** The connection's `ha_interrupt` guard, known once open. */
  private guard: number | null = null;
  /** Requests sent and not answered yet. */
  inflight = 0;

  constructor(name: string, private readonly opts: WorkerClientOptions = {}) {
    this.worker = new Worker(new URL("./worker.ts", import.meta.url).href, {
      type: "module",
      name,
    });
    this.worker.onmessage = (e: MessageEvent<Reply>) => {
      const r = e.data;
      this.opts.onReply?.();
      const p = this.pending.get(r.id);
      if (!p) return;
      this.pending.delete(r.id);
      this.inflight--;
      if (r.ok) p.resolve(r.value);
      else p.reject(new HaError(r.error.code, r.error.message, r.error.details));
    };
    this.worker.onerror = (e: ErrorEvent) => {
      e.preventDefault();
      this.fail(new HaError("internal", `engine worker ${name} crashed: ${e.message}`));
    };
  }

  /** Opens the worker's connection. */
  async open(body: Extract<RequestBody, { t: "open" }>): Promise<void> {
    this.guard = (await this.request<OpenReply>(body)).guard;
  }

  /**
   * Sends a request and resolves with the worker's answer. Aborting `signal` stops its statement
   * (the worker then answers with a `cancelled` error). `transfer`: buffers of `body` moved, not
   * copied.
   */
  request<T>(body: RequestBody, signal?: AbortSignal, transfer?: ArrayBuffer[]): Promise<T> {
    if (this.dead) return Promise.reject(this.dead);
    if (signal?.aborted) return Promise.reject(cancelled());
    const id = this.nextId++;
    this.inflight++;
    const onAbort = () => this.stop(id, "cancel");
    signal?.addEventListener("abort", onAbort, { once: true });
    return new Promise<T>((resolve, reject) => {
      this.pending.set(id, {
        resolve: resolve as (v: unknown) => void,
        reject,
        client: CLIENT.has(body.t),
      });
      this.worker.postMessage({ ...body, id }, transfer ?? []);
    }).finally(() => signal?.removeEventListener("abort", onAbort));
  }

  /**
   * Sends a group of write requests (`execGroup`, group commit). Each item runs under an id of
   * its own, after the group's (the extension keeps a cancel for a later id until it starts), so
   * aborting an item's `signal` stops that item's statement only.
   */
  requestGroup<T>(
    items: { stmts: Statement[]; timeoutMs: number; signal?: AbortSignal }[],
  ): Promise<T> {
    if (this.dead) return Promise.reject(this.dead);
    const id = this.nextId++;
    const ids = items.map(() => this.nextId++);
    this.inflight++;
    const listeners = items.map((item, i) => {
      const onAbort = () => this.stopItem(id, ids[i], "cancel");
      item.signal?.addEventListener("abort", onAbort, { once: true });
      return onAbort;
    });
    return new Promise<T>((resolve, reject) => {
      this.pending.set(id, {
        resolve: resolve as (v: unknown) => void,
        reject,
        client: true,
        items: ids,
      });
      this.worker.postMessage(
        {
          t: "execGroup",
          id,
          items: items.map((item, i) => ({
            id: ids[i],
            stmts: item.stmts,
            timeoutMs: item.timeoutMs,
          })),
        } satisfies Request,
      );
    }).finally(() =>
      items.forEach((item, i) => item.signal?.removeEventListener("abort", listeners[i]))
    );
  }

  /** Stops the statements of every client request sent and not answered yet. */
  interrupt(reason: StopReason): void {
    for (const [id, p] of this.pending) {
      if (!p.client) continue;
      this.stop(id, reason);
      for (const item of p.items ?? []) this.stopItem(id, item, reason);
    }
  }

  /** Kills the worker at once; pending requests reject with `reason`. */
  terminate(reason: HaError = new HaError("cancelled", "worker terminated")): void {
    this.worker.terminate();
    this.fail(reason);
  }

  /** False once terminated or crashed. */
  get alive(): boolean {
    return this.dead === null;
  }

  private stop(id: number, reason: StopReason): void {
    if (!this.pending.has(id)) return;
    const { native, killable } = this.opts;
    if (native && this.guard !== null) native.cancel(this.guard, id, reason);
    else if (killable) this.terminate(cancelled());
  }

  /** Stops one item of the group request `id` (the writer is never killed for it). */
  private stopItem(id: number, item: number, reason: StopReason): void {
    const { native } = this.opts;
    if (this.pending.has(id) && native && this.guard !== null) {
      native.cancel(this.guard, item, reason);
    }
  }

  private fail(reason: HaError): void {
    this.dead ??= reason;
    for (const p of this.pending.values()) p.reject(reason);
    this.pending.clear();
    this.inflight = 0;
  }
}

function cancelled(): HaError {
  return new HaError("cancelled", "canceling statement due to user request");
}
