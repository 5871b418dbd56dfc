/** The main thread's handle on one engine worker: request/response over postMessage. */
import { HaError } from "../errors/mod.ts";
import type { Reply, Request } from "./protocol.ts";

type Pending = { resolve: (v: unknown) => void; reject: (e: unknown) => void };

// Distributive Omit, so each request variant keeps its own fields.
type RequestBody = Request extends infer R ? R extends Request ? Omit<R, "id"> : never : never;

/** A worker running `worker.ts`, with correlated requests. */
export class WorkerClient {
  private readonly worker: Worker;
  private readonly pending = new Map<number, Pending>();
  private nextId = 1;
  private dead: HaError | null = null;
  /** Requests sent and not answered yet. */
  inflight = 0;

  constructor(name: string) {
    this.worker = new Worker(new URL("./worker.ts", import.meta.url).href, {
      type: "module",
      name,
    });
    this.worker.onmessage = (e: MessageEvent<Reply>) => {
      const r = e.data;
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

  /** Sends a request and resolves with the worker's answer. */
  request<T>(body: RequestBody): Promise<T> {
    if (this.dead) return Promise.reject(this.dead);
    const id = this.nextId++;
    this.inflight++;
    return new Promise<T>((resolve, reject) => {
      this.pending.set(id, { resolve: resolve as (v: unknown) => void, reject });
      this.worker.postMessage({ ...body, id });
    });
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

  private fail(reason: HaError): void {
    this.dead ??= reason;
    for (const p of this.pending.values()) p.reject(reason);
    this.pending.clear();
    this.inflight = 0;
  }
}
