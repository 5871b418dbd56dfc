/**
 * Notices a replication consumer that stopped delivering without failing. An R1 consumer lives
 * on one stream peer and reads that peer's replica; after a server crash and restart, nats-server
 * (seen with 2.9) can leave a replica stuck behind the leader, and a consumer placed on it keeps
 * answering pulls with idle heartbeats while delivering nothing: no error, no missed heartbeat,
 * so none of the subscriber's other restart triggers fires and the node silently stops applying.
 *
 * The check runs on a timer, never per message: once nothing new was received for a while, the
 * stream leader is asked for the subject's last sequence; if it is beyond what was received at
 * two checks in a row (not a message on its way), the consumer is recreated from local progress. A new R1 consumer is placed at random among the
 * online peers, so repeated recreation (with a growing wait) escapes a stuck one. An idle subject
 * (the leader's last sequence is the last received) or a slow but progressing delivery never
 * triggers it.
 *
 * @module
 */
import type { JetStreamManager } from "@nats-io/jetstream";
import type { Logger } from "../log/mod.ts";
import { Backoff } from "../retry/mod.ts";

/**
 * Silence after which the leader is asked, ms: far above the pull heartbeat (2.5 s) and a
 * batch's round trip, so a healthy consumer that is merely slow between messages is not
 * suspected; short enough that a stuck node catches up within seconds of the fault.
 */
export const STALL_AFTER_MS = 10_000;
/** Largest wait between recreations while the consumer keeps stalling (doubling from above). */
export const STALL_AFTER_MAX_MS = 40_000;
/** How often the timer looks at the received sequence (cheap: no request unless silent). */
const STALL_CHECK_MS = 2_500;

/** Options of {@link StallWatch}. */
export interface StallWatchOptions {
  jsm: JetStreamManager;
  stream: string;
  subject: string;
  consumer: string;
  logger: Logger;
  /** Highest stream sequence received. */
  received: () => number;
  /** A consumer is receiving (not being created, nor paused on a full backlog). */
  consuming: () => boolean;
  /** Recreates the consumer from local progress. */
  restart: (reason: string) => void;
  /** The clock, ms (tests inject one). */
  now?: () => number;
}

/** Watches one subscriber's consumer for silent stalls; see the module doc. */
export class StallWatch {
  /** Consumers recreated because they stalled. */
  stalls = 0;
  readonly #o: StallWatchOptions;
  readonly #now: () => number;
  readonly #wait = new Backoff({ initialMs: STALL_AFTER_MS, maxMs: STALL_AFTER_MAX_MS });
  #seen = -1;
  #since = 0;
  /** The leader had more at the last check: recreate if it still has at the next. */
  #suspect = false;
  #timer: ReturnType<typeof setInterval> | undefined;
  #checking: Promise<boolean> | null = null;

  constructor(o: StallWatchOptions) {
    this.#o = o;
    this.#now = o.now ?? Date.now;
  }

  /** Checks every few seconds until {@link stop}. */
  start(): void {
    this.#timer = setInterval(() => {
      this.#checking ??= this.check().finally(() => this.#checking = null);
    }, STALL_CHECK_MS);
    Deno.unrefTimer(this.#timer);
  }

  /** Stops the timer; awaits a check in flight. */
  async stop(): Promise<void> {
    clearInterval(this.#timer);
    await this.#checking;
  }

  /** One check; true when it recreated the consumer. */
  async check(): Promise<boolean> {
    const o = this.#o;
    const seq = o.received();
    if (seq !== this.#seen || !o.consuming()) {
      if (seq !== this.#seen) this.#wait.reset();
      this.#seen = seq;
      this.#since = this.#now();
      this.#suspect = false;
      return false;
    }
    const silentMs = this.#now() - this.#since;
    if (silentMs < this.#wait.peek()) return false;
    let last: number;
    try {
      // STREAM.MSG.GET is answered by the stream leader, never by the consumer's own replica.
      last = (await o.jsm.streams.getMessage(o.stream, { last_by_subj: o.subject }))?.seq ?? 0;
    } catch {
      return false; // NATS unreachable: the connection's own restart triggers cover that
    }
    // Received meanwhile, or restarted by another trigger: not stalled.
    if (o.received() !== seq || !o.consuming()) return false;
    if (last > seq && !this.#suspect) {
      // Confirmed at the next check: a message the leader just stored may be on its way.
      this.#suspect = true;
      return false;
    }
    this.#suspect = false;
    this.#since = this.#now();
    if (last <= seq) return false;
    this.stalls++;
    o.logger.warn("replication consumer stalled; recreating it", {
      consumer: o.consumer,
      receivedSeq: seq,
      leaderLastSeq: last,
      silentMs,
    });
    this.#wait.next();
    o.restart(`stalled: nothing received for ${silentMs} ms while the stream has ${last}`);
    return true;
  }
}
