/**
 * Exponential backoff, the one retry policy of ha's loops (publisher, subscriber, replication
 * start, nats-server supervisor, interceptor worker restarts): each failure waits twice as long
 * as the one before, from `initialMs` up to `maxMs`, and a success starts over. It only computes
 * delays: callers wait their own way (an interruptible pause, a timer, or a deadline against an
 * injected clock, as tests of the interceptor host do).
 *
 * @example
 * ```ts
 * const backoff = new Backoff({ initialMs: 250, maxMs: 5_000 });
 * while (!stopped) {
 *   try {
 *     await attempt();
 *     backoff.reset();
 *   } catch {
 *     await pause(backoff.next()); // 250, 500, 1000, ... 5000, 5000
 *   }
 * }
 * ```
 *
 * @module
 */

/** Options of {@link Backoff}. */
export interface BackoffOptions {
  /** The first delay, in ms (also the delay after {@link Backoff.reset}); more than 0. */
  initialMs: number;
  /** The largest delay, in ms. */
  maxMs: number;
}

/** Doubling delays between `initialMs` and `maxMs`. */
export class Backoff {
  readonly initialMs: number;
  readonly maxMs: number;
  #next: number;

  constructor(o: BackoffOptions) {
    this.initialMs = o.initialMs;
    this.maxMs = o.maxMs;
    this.#next = o.initialMs;
  }

  /** The delay to wait now; the one after is twice as long (at most `maxMs`). */
  next(): number {
    const ms = this.#next;
    this.#next = Math.min(ms * 2, this.maxMs);
    return ms;
  }

  /** The delay {@link next} will return, without consuming it (for log lines). */
  peek(): number {
    return this.#next;
  }

  /** Starts over from `initialMs` (after a success). */
  reset(): void {
    this.#next = this.initialMs;
  }
}
