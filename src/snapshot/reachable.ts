/**
 * Waiting for the snapshot store at start: a node started with `--from-latest-snapshot` while
 * JetStream does not answer yet (a cluster electing its metadata leader, a server restarting)
 * tries again for a while instead of exiting at the first timeout.
 *
 * @module
 */
import { HaError } from "../errors/mod.ts";
import type { Logger } from "../log/mod.ts";
import { Backoff } from "../retry/mod.ts";

/** How long a restore at start waits for the store to answer, by default (ms). */
const REACHABLE_WAIT_MS = 120_000;

/** Whether `e` says the store or stream did not answer (not that a snapshot is bad). */
function isUnreachable(e: unknown): boolean {
  return e instanceof HaError && e.details.unreachable === true;
}

/**
 * Runs `attempt`, and again after a growing pause (1 s up to 5 s) each time it fails because the
 * store did not answer ({@link isUnreachable}), until `waitMs` have passed; then, or on any
 * other failure, throws.
 */
export async function whenReachable<T>(
  attempt: () => Promise<T>,
  o: { log: Logger; what: string; waitMs?: number },
): Promise<T> {
  const until = Date.now() + (o.waitMs ?? REACHABLE_WAIT_MS);
  const backoff = new Backoff({ initialMs: 1_000, maxMs: 5_000 });
  for (;;) {
    try {
      return await attempt();
    } catch (e) {
      const delay = backoff.next();
      if (!isUnreachable(e) || Date.now() + delay > until) throw e;
      o.log.warn(`${o.what}: the snapshot store does not answer yet; trying again`, {
        retryInMs: delay,
        error: (e as HaError).message,
      });
      await new Promise((r) => setTimeout(r, delay));
    }
  }
}
