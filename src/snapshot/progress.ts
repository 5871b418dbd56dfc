/**
 * Progress of long transfers (snapshot upload, restore download): a log line every few seconds
 * with the percentage done and the throughput, and a summary at the end.
 *
 * @module
 */
import type { Fields, Logger } from "../log/mod.ts";

const MB = 1024 * 1024;

/** Totals of a finished transfer. */
export interface TransferStats {
  /** Bytes moved. */
  bytes: number;
  /** Wall time in seconds. */
  seconds: number;
  /** Throughput in MiB/s. */
  mbPerSec: number;
}

/**
 * Counts bytes of a transfer and logs `msg` with `{percent, mb, totalMb, mbPerSec}` at most every
 * `everyMs` (checked as bytes arrive, so no timer is left behind).
 *
 * @example
 * ```ts
 * const p = new Progress(logger, "restoring snapshot", { db: "app.db" }, info.size);
 * for await (const chunk of stream) p.add(chunk.length);
 * logger.info("restored", { ...p.stats() });
 * ```
 */
export class Progress {
  readonly #started = performance.now();
  #last = this.#started;
  #bytes = 0;

  constructor(
    private readonly log: Logger,
    private readonly msg: string,
    private readonly fields: Fields,
    private readonly total: number,
    private readonly everyMs = 3_000,
  ) {}

  /** Records `n` more bytes; logs when `everyMs` passed since the last line. */
  add(n: number): void {
    this.#bytes += n;
    const now = performance.now();
    if (now - this.#last < this.everyMs) return;
    this.#last = now;
    const s = this.stats();
    this.log.info(this.msg, {
      ...this.fields,
      percent: this.total > 0 ? Math.floor((this.#bytes / this.total) * 1000) / 10 : null,
      mb: round(this.#bytes / MB),
      totalMb: round(this.total / MB),
      mbPerSec: s.mbPerSec,
    });
  }

  /** Bytes so far, elapsed time and throughput. */
  stats(): TransferStats {
    const seconds = (performance.now() - this.#started) / 1000;
    return {
      bytes: this.#bytes,
      seconds: round(seconds),
      mbPerSec: seconds > 0 ? round(this.#bytes / MB / seconds) : 0,
    };
  }
}

function round(x: number): number {
  return Math.round(x * 10) / 10;
}
