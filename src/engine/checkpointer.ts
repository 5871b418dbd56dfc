/**
 * WAL checkpoints of a file database off the writer. SQLite's automatic checkpoint runs inside
 * the COMMIT that crosses `wal_autocheckpoint` pages, with two fsyncs, and every write queued
 * behind that COMMIT waits for them (about 40 % of the wall time per insert with change capture,
 * docs/perf.md). Instead the writer opens with `wal_autocheckpoint=0`, and a connection of its
 * own, on its own thread, runs `PRAGMA wal_checkpoint(PASSIVE)` after every
 * {@link CHECKPOINT_EVERY} writer transactions, or {@link CHECKPOINT_DELAY_MS} after fewer.
 * Durability does not change: `synchronous` and the WAL are the same, only who copies WAL frames
 * into the database file, and when, differs.
 *
 * The worker (an isolate, ~10 MB) starts only while writes keep coming: the checkpoint of an
 * isolated burst of fewer writes (a node's start, a rare write) runs on the writer, idle then, as
 * SQLite's own would have; the worker ends after {@link IDLE_MS} without writes.
 *
 * A passive checkpoint that overlaps a commit leaves the WAL not fully copied, and SQLite only
 * rewinds the WAL at a write that starts with nothing left to copy: when the WAL grows past
 * {@link WAL_LIMIT_FRAMES} anyway, the writer checkpoints itself once (as before), which rewinds.
 *
 * @module
 */
import type { Logger } from "../log/mod.ts";
import type { OpenSpec } from "./connection.ts";
import type { CheckpointReply } from "./protocol.ts";
import { WorkerClient } from "./worker_client.ts";

/** Writer transactions after which a checkpoint runs (SQLite's default: 1000 WAL pages, ~175). */
const CHECKPOINT_EVERY = 64;
/** Delay from a write to the checkpoint that follows it when fewer transactions come. */
const CHECKPOINT_DELAY_MS = 500;
/** The checkpointing worker ends after this long without writes. */
const IDLE_MS = 30_000;
/** WAL size (frames, ~4 KiB each) above which the writer checkpoints itself. */
export const WAL_LIMIT_FRAMES = 4096;

/**
 * Whether `spec` (a writer's) can be checkpointed from another connection: a file database in
 * WAL mode, not opened with exclusive locking, whose DSN does not choose `wal_autocheckpoint`.
 */
export function offloadable(spec: OpenSpec): boolean {
  if (spec.memory || spec.readOnly) return false;
  const p = new Map(spec.pragmas.map(([k, v]) => [k.toLowerCase(), v.toLowerCase()]));
  return p.get("journal_mode") === "wal" && p.get("locking_mode") !== "exclusive" &&
    !p.has("wal_autocheckpoint");
}

/** Checkpoints one database from a worker of its own, some time after writes. */
export class Checkpointer {
  private worker: WorkerClient | null = null;
  private timer: ReturnType<typeof setTimeout> | null = null;
  private running: Promise<void> | null = null;
  private closed = false;
  /** Writer transactions since the last checkpoint started. */
  private writes = 0;
  /** Ends the worker after {@link IDLE_MS} without writes. */
  private idle: ReturnType<typeof setTimeout> | null = null;
  /** When the last checkpoint started (`performance.now()`), or -Infinity. */
  private lastRun = -Infinity;

  /**
   * @param spec the writer's open spec.
   * @param onWriter runs a checkpoint on the writer (under its lock), not counted as a write.
   */
  constructor(
    private readonly name: string,
    private readonly spec: OpenSpec,
    private readonly onWriter: () => Promise<CheckpointReply>,
    private readonly logger: Logger,
  ) {}

  /** A writer transaction ended: a checkpoint follows after enough of them, or soon after. */
  touch(): void {
    if (this.closed) return;
    this.writes++;
    if (this.idle !== null) clearTimeout(this.idle);
    this.idle = null;
    if (!this.running) this.next();
  }

  /** Stops checkpointing (SQLite checkpoints at the last close anyway). Idempotent. */
  async close(): Promise<void> {
    this.closed = true;
    if (this.timer !== null) clearTimeout(this.timer);
    if (this.idle !== null) clearTimeout(this.idle);
    this.timer = this.idle = null;
    await this.running;
    await this.release();
  }

  /** Schedules the next checkpoint for the writes since the last one began. */
  private next(): void {
    if (this.closed) return;
    if (this.writes === 0) {
      // Nothing written since: the worker (an isolate, ~9 MB) goes until writes come back.
      if (this.worker !== null && this.idle === null) {
        this.idle = setTimeout(() => {
          this.idle = null;
          if (this.timer === null && !this.running) void this.release();
        }, IDLE_MS);
        Deno.unrefTimer(this.idle);
      }
      return;
    }
    const ms = this.writes >= CHECKPOINT_EVERY ? 0 : CHECKPOINT_DELAY_MS;
    if (this.timer !== null) {
      if (ms > 0) return;
      clearTimeout(this.timer);
    }
    this.timer = setTimeout(() => {
      this.timer = null;
      const many = this.writes >= CHECKPOINT_EVERY;
      this.writes = 0;
      this.running = this.run(many).finally(() => {
        this.running = null;
        this.next();
      });
    }, ms);
    Deno.unrefTimer(this.timer);
  }

  /** @param many whether {@link CHECKPOINT_EVERY} writes came (else the delay passed). */
  private async run(many: boolean): Promise<void> {
    const quiet = performance.now() - this.lastRun >= IDLE_MS;
    this.lastRun = performance.now();
    try {
      // An isolated burst: not worth starting the worker for.
      if (!many && quiet && !this.worker?.alive) return void await this.onWriter();
      let r: CheckpointReply;
      try {
        r = await (await this.open()).request<CheckpointReply>({ t: "checkpoint" });
      } catch (e) {
        // Without its own connection the writer checkpoints, as SQLite would have.
        this.logger.debug("checkpoint off the writer failed", { error: (e as Error).message });
        r = await this.onWriter();
      }
      if (r.log > WAL_LIMIT_FRAMES && !this.closed) await this.onWriter();
    } catch (e) {
      if (!this.closed) this.logger.warn("WAL checkpoint failed", { error: (e as Error).message });
    }
  }

  private async release(): Promise<void> {
    const w = this.worker;
    this.worker = null;
    await w?.request({ t: "close" }).catch(() => {});
    w?.terminate();
  }

  private async open(): Promise<WorkerClient> {
    if (this.worker?.alive) return this.worker;
    const w = new WorkerClient(`checkpointer:${this.name}`);
    try {
      await w.open({ t: "open", databaseId: this.name, spec: this.spec, plugins: [] });
    } catch (e) {
      w.terminate();
      throw e;
    }
    if (this.closed) {
      w.terminate();
      throw new Error("closed");
    }
    this.worker = w;
    return w;
  }
}
