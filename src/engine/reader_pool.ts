/**
 * The reader workers of one database: started on the first read that needs one (most reads run
 * on the main thread: inline_reader.ts), up to a maximum, and ended after {@link IDLE_MS}
 * without requests. Each is an isolate with its own SQLite connection (~10 MB): a node that
 * served a burst of long reads goes back to its idle footprint; the next such read starts a
 * reader again (tens of ms).
 *
 * @module
 */
import type { OpenSpec } from "./connection.ts";
import type { InterruptLib } from "./native/interrupt.ts";
import { WorkerClient } from "./worker_client.ts";

/** A reader ends after this long without requests. */
const IDLE_MS = 60_000;

/** Reader workers of one database, on demand. */
export class ReaderPool {
  private readonly readers: WorkerClient[] = [];
  /** When each reader was last handed out (`performance.now()`). */
  private readonly used = new Map<WorkerClient, number>();
  private sweep: ReturnType<typeof setTimeout> | null = null;

  /** @param spec the database's open spec (opened read-only here). */
  constructor(
    private readonly id: string,
    private readonly spec: OpenSpec,
    private readonly native: InterruptLib | null,
    private readonly max: number,
    private readonly idleMs = IDLE_MS,
  ) {}

  /** The readers running now. */
  get all(): readonly WorkerClient[] {
    return this.readers;
  }

  /** An idle reader, a new one while fewer than the maximum run, else the least busy. */
  async pick(): Promise<WorkerClient> {
    this.prune((r) => !r.alive);
    const idle = this.readers.find((r) => r.inflight === 0);
    if (idle) return this.use(idle);
    if (this.readers.length >= Math.max(1, this.max)) {
      return this.use(this.readers.reduce((a, b) => (b.inflight < a.inflight ? b : a)));
    }
    const r = new WorkerClient(`reader:${this.id}`, { native: this.native, killable: true });
    this.readers.push(this.use(r));
    try {
      await r.open({
        t: "open",
        databaseId: this.id,
        spec: { ...this.spec, readOnly: true },
        plugins: [],
      });
    } catch (e) {
      this.prune((x) => x === r);
      r.terminate();
      throw e;
    }
    return r;
  }

  /** Closes every reader's connection and ends them. */
  async close(): Promise<void> {
    if (this.sweep !== null) clearTimeout(this.sweep);
    this.sweep = null;
    const rs = this.prune(() => true);
    await Promise.allSettled(rs.map((r) => r.request({ t: "close" })));
    for (const r of rs) r.terminate();
  }

  private use(r: WorkerClient): WorkerClient {
    this.used.set(r, performance.now());
    if (this.sweep === null) {
      this.sweep = setTimeout(() => this.retire(), this.idleMs);
      Deno.unrefTimer(this.sweep);
    }
    return r;
  }

  /** Ends the readers unused for `idleMs`; checks again while some run. */
  private retire(): void {
    this.sweep = null;
    const now = performance.now();
    const old = this.prune((r) => r.inflight === 0 && now - this.used.get(r)! >= this.idleMs);
    for (const r of old) void r.request({ t: "close" }).catch(() => {}).then(() => r.terminate());
    if (this.readers.length === 0) return;
    const oldest = Math.min(...this.readers.map((r) => this.used.get(r)!));
    this.sweep = setTimeout(() => this.retire(), Math.max(100, oldest + this.idleMs - now));
    Deno.unrefTimer(this.sweep);
  }

  /** Removes the readers matching `f` from the pool (no new request reaches them); returns them. */
  private prune(f: (r: WorkerClient) => boolean): WorkerClient[] {
    const out = this.readers.filter(f);
    for (const r of out) {
      this.readers.splice(this.readers.indexOf(r), 1);
      this.used.delete(r);
    }
    return out;
  }
}
