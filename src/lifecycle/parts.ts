/**
 * The parts of a node (NATS server, connection, engine, replication, front ends...) started in
 * order and stopped in reverse, so that a node's start, its cleanup after a failed start and its
 * stop are one list instead of three hand-written sequences.
 *
 * @module
 */
import type { Logger } from "../log/mod.ts";

/**
 * Something a node starts and stops. `HttpServer`, `PgServer`, `EmbeddedNatsServer` and
 * `Replication` satisfy it as they are; a part handed over already running (an opened engine,
 * a loaded interceptor) has no `start`.
 */
export interface Part {
  start?(): Promise<void>;
  /** Stops the part and waits for its in-flight work. Called once, only after `start` resolved. */
  stop(): Promise<void>;
}

/** The started parts of a node, stopped in reverse order of their start. */
export class Parts {
  readonly #started: { name: string; part: Part }[] = [];
  #stopping: Promise<void> | null = null;

  constructor(private readonly logger: Logger) {}

  /** Starts `part` and records it for {@link stop}; returns it. Not recorded when start throws. */
  async start<T extends Part>(name: string, part: T): Promise<T> {
    if (this.#stopping) throw new Error(`cannot start ${name}: the node is stopping`);
    await part.start?.();
    this.#started.push({ name, part });
    return part;
  }

  /**
   * Stops every started part, last started first. A part that fails to stop is logged and the
   * others still stop. Idempotent.
   */
  stop(): Promise<void> {
    this.#stopping ??= (async () => {
      for (let p = this.#started.pop(); p; p = this.#started.pop()) {
        try {
          await p.part.stop();
        } catch (e) {
          this.logger.error("stopping a part failed", { part: p.name, error: String(e) });
        }
      }
    })();
    return this.#stopping;
  }
}

/**
 * Parts started in order but stopped at once: the front ends, so that every one of them stops
 * accepting before any waits for its in-flight requests. When one fails to start, those already
 * started are stopped.
 */
export function together(parts: Part[]): Part {
  const started: Part[] = [];
  const stopAll = async () => {
    const stops = await Promise.allSettled(started.splice(0).map((p) => p.stop()));
    const failed = stops.find((s) => s.status === "rejected");
    if (failed) throw (failed as PromiseRejectedResult).reason;
  };
  return {
    async start() {
      try {
        for (const p of parts) {
          await p.start?.();
          started.push(p);
        }
      } catch (e) {
        await stopAll().catch(() => {});
        throw e;
      }
    },
    stop: stopAll,
  };
}
