/**
 * Short reads on the main thread. A point select costs less in SQLite than its round trip to a
 * reader worker (postMessage and structured clone both ways, on both threads), so a statement
 * already known to be a read runs here first, on a read-only connection opened like a reader
 * worker's, under a small budget enforced by the `ha_interrupt` extension. A statement the
 * budget stops is reported back (null) and re-run on a reader worker with the rest of its
 * statement timeout: reads have no side effects. A cancel cannot arrive while a read runs here
 * (the main thread is busy with it); it applies to the worker re-run, if any.
 *
 * @example
 * ```ts
 * const inline = new InlineReader({ ...spec, readOnly: true }, lib);
 * if (inline.accepts(stmts)) reply = inline.run(stmts, timeoutMs) ?? await onWorker(stmts);
 * ```
 * @module
 */
import type { StatementSync } from "node:sqlite";
import { toHaError } from "../errors/mod.ts";
import { partsOf, readBatch } from "./batch.ts";
import { Connection, type OpenSpec } from "./connection.ts";
import { type InterruptLib, stoppedError } from "./native/interrupt.ts";
import type { ExecReply } from "./protocol.ts";
import type { Statement } from "./types.ts";

/**
 * How long a read may hold the main thread before it moves to a worker (ms). Every other
 * connection, and NATS heartbeats, wait at most this long for one read.
 */
export const INLINE_BUDGET_MS = 10;
/**
 * A known read that takes longer here on average (ms) also goes to the workers for a while: it
 * leaves the main thread to the connections, whose point selects take tens of microseconds.
 */
const SHORT_MS = 2;
/** Weight of the latest run in a statement's average time. */
const COST_WEIGHT = 0.1;
/**
 * A run counts for at most this long (ms) in the average: on a busy machine the main thread is
 * descheduled now and then for tens of ms in the middle of a 30 µs point select, and one such
 * run sent the statement to the workers for 2 s (with auto-parameterization and prepared
 * statements: every key's point select, at 2–5× the CPU per query). A statement slow every time
 * still gets there in a few runs; one past the budget at once.
 */
const SAMPLE_CAP_MS = 2 * SHORT_MS;

/** A known read's average time after one more run of `ms` (see `InlineReader.timed`). */
export function nextAverage(avg: number, ms: number): number {
  return avg * (1 - COST_WEIGHT) + Math.min(ms, SAMPLE_CAP_MS) * COST_WEIGHT;
}

/** Whether a known read of this average time goes to the workers. */
export function tooSlow(avg: number): boolean {
  return avg > SHORT_MS;
}
/** How long a statement the budget stopped goes straight to the workers (ms). */
const SLOW_FOR_MS = 2000;
const SLOW_SIZE = 256;
/** Longest statement of unknown kind prepared on the main thread (characters). */
const MAX_UNKNOWN_SQL = 1000;

/** The main thread's read-only connection of one database. */
export class InlineReader {
  private conn: Connection | null = null;
  private broken = false;
  private request = 0;
  /** Whether the shared read transaction (see `startSnapshot`) is open. */
  private snapshot = false;
  /** Ends the shared read transaction every millisecond while reads come; null = stopped. */
  private ticker: ReturnType<typeof setInterval> | null = null;
  /** The shared read transaction's statements, prepared once. */
  private tx: { begin: StatementSync; commit: StatementSync } | null = null;
  /** WAL: a read transaction held for a millisecond never makes the writer wait. */
  private wal = false;
  /**
   * Until when statements of unknown kind go to the workers: one of them overran the budget
   * lately (each new text of a slow query sent with literals would cost the main thread a
   * budget otherwise).
   */
  private unknownSlowUntil = 0;
  /** Average time here (ms) of known reads seen lately (see `timed`). */
  private readonly costs = new Map<string, number>();
  /** Statement texts the budget stopped recently, with when they may run here again. */
  private readonly slow = new Map<string, number>();

  /** When the last `run` began (`performance.now()`): what a stopped read has used of its time. */
  started = 0;

  /** `spec`: a reader worker's (read-only); `native`: the extension it loads. */
  constructor(
    private readonly spec: OpenSpec,
    private readonly native: InterruptLib,
    private readonly budgetMs = INLINE_BUDGET_MS,
  ) {}

  /**
   * True when `stmts` may run here: one statement, not stopped by the budget lately; one not
   * `known` to be a read only when short (it is prepared here to learn its kind, which the
   * budget does not bound: the simple query protocol sends each point select as new text).
   */
  accepts(stmts: Statement[], known: boolean): boolean {
    if (this.broken || stmts.length !== 1) return false;
    const sql = stmts[0]?.sql;
    if (typeof sql !== "string") return false;
    if (!known && (sql.length > MAX_UNKNOWN_SQL || performance.now() < this.unknownSlowUntil)) {
      return false;
    }
    if (partsOf(sql).length !== 1) return false;
    const until = this.slow.get(sql);
    if (until === undefined) return true;
    if (performance.now() < until) return false;
    this.slow.delete(sql);
    return true;
  }

  /**
   * Runs a read batch here. Null when the budget stopped it (run it on a worker) or the
   * connection cannot be opened; a statement timeout within the budget fails as on a worker.
   */
  run(stmts: Statement[], timeoutMs: number, known: boolean): ExecReply | null {
    const c = this.open();
    if (c === null || c.guard === null) return null;
    const own = timeoutMs > 0 && timeoutMs <= this.budgetMs;
    this.native.begin(c.guard, ++this.request, own ? timeoutMs : this.budgetMs);
    const started = this.started = performance.now();
    try {
      if (this.wal) this.startSnapshot(c);
      const reply = readBatch(c, stmts);
      if (known) this.timed(stmts[0].sql, performance.now() - started);
      return reply;
    } catch (e) {
      if (!c.inTransaction) this.endSnapshot();
      const stopped = this.native.reason(c.guard);
      // The main thread never waits for a lock: a worker does (busy_timeout).
      if (stopped === null && busy(e)) return null;
      if (stopped === null) throw e;
      if (stopped === "timeout" && !own) {
        this.markSlow(stmts[0].sql);
        if (!known) this.unknownSlowUntil = performance.now() + SLOW_FOR_MS;
        return null;
      }
      throw stoppedError(toHaError(e), stopped, timeoutMs);
    }
  }

  /**
   * Ends the shared read transaction: called when the writer answers anything (a write it
   * acknowledged must show in the reads after it) and by a timer within a millisecond or so.
   */
  endSnapshot(): void {
    if (!this.snapshot) return;
    this.snapshot = false;
    this.conn?.unpinSchema();
    if (this.conn?.inTransaction) this.tx?.commit.run();
  }

  /**
   * Reads within a millisecond share a read transaction: a WAL read transaction's start and end
   * (file locks, the WAL index) cost several times a point select, and a 0 ms timer (one turn)
   * shared it among half as many reads. One interval ends them while reads keep coming (a
   * timer set per read transaction was ~4 % of a point read's main thread); a tick that finds
   * none open stops it.
   */
  private startSnapshot(c: Connection): void {
    if (this.snapshot) return;
    this.tx ??= { begin: c.db.prepare("BEGIN"), commit: c.db.prepare("COMMIT") };
    this.tx.begin.run();
    this.snapshot = true;
    this.ticker ??= setInterval(() => {
      if (this.snapshot) return this.endSnapshot();
      clearInterval(this.ticker!);
      this.ticker = null;
    }, 1);
    c.pinSchema();
  }

  /**
   * Keeps a moving average of a known read's time here: a read this costly on average, run
   * often, would hold the main thread the connections share, and several workers could run it
   * in parallel. An average, because a single slow run is mostly the thread being descheduled.
   */
  private timed(sql: string, ms: number): void {
    const avg = nextAverage(this.costs.get(sql) ?? 0, ms);
    this.costs.delete(sql);
    if (tooSlow(avg)) return this.markSlow(sql);
    if (this.costs.size >= SLOW_SIZE) this.costs.delete(this.costs.keys().next().value!);
    this.costs.set(sql, avg);
  }

  private markSlow(sql: string): void {
    if (this.slow.size >= SLOW_SIZE) this.slow.delete(this.slow.keys().next().value!);
    this.slow.set(sql, performance.now() + SLOW_FOR_MS);
  }

  close(): void {
    this.endSnapshot();
    if (this.ticker !== null) clearInterval(this.ticker);
    this.ticker = null;
    this.conn?.close();
    this.conn = null;
    this.broken = true;
  }

  private open(): Connection | null {
    if (this.conn === null && !this.broken) {
      try {
        const c = new Connection(this.spec);
        c.exec("PRAGMA busy_timeout = 0");
        this.wal = c.scalar("PRAGMA journal_mode") === "wal";
        this.conn = c;
      } catch {
        this.broken = true; // the workers report why, on their own connections
      }
    }
    return this.conn;
  }
}

const SQLITE_BUSY = 5;
const SQLITE_LOCKED = 6;

function busy(e: unknown): boolean {
  const code = (toHaError(e).details.sqliteCode ?? 0) & 0xff;
  return code === SQLITE_BUSY || code === SQLITE_LOCKED;
}
