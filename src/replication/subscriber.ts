/**
 * Applies a database's changesets from the stream. The node's own record of what it applied (the
 * stream sequence the writer plugin stores in the same SQLite transaction as the apply) is the
 * only truth about where to resume: every consumer this subscriber reads from is created by it,
 * from that record + 1, named `<db>_<node>`, ack-none and in memory. It is recreated (deleted,
 * then created from the last sequence received) whenever delivery may have lost a message: a
 * gap in the consumer's delivery sequence, missed heartbeats, the consumer deleted, the NATS
 * connection re-established. So pull requests left by an earlier process, or answered while the
 * connection was down, can never make a changeset look delivered. Messages are applied in
 * batches (one transaction each) by the writer plugin; a changeset that fails is retried with
 * backoff and reported, and the operator can skip it.
 *
 * `--replication-policy` applies once, on the first start of a database (no progress recorded):
 * the start it selects is resolved to a stream sequence by the server and stored as progress, so
 * a restart resumes from there instead of evaluating `new` or `last` again. Memory databases
 * record nothing durable, so they start from the policy on every start.
 *
 * @module
 */
import {
  type ConsumerInfo,
  type ConsumerMessages,
  DeliverPolicy,
  type JsMsg,
} from "@nats-io/jetstream";
import {
  type ApplyMessage,
  type ApplyResult,
  type ReplicationClient,
  replicationClient,
} from "./plugin_api.ts";
import { applyIntercepted } from "./apply_intercepted.ts";
import { type Delivery, readAckReply } from "./ack_reply.ts";
import { Backlog, DEFAULT_BACKLOG_BYTES, type Received } from "./backlog.ts";
import { replaceConsumer, startOf } from "./consumer_start.ts";
import { pack } from "./packed.ts";
import { INCARNATION_HEADER, includes, NODE_HEADER, rawHeaders } from "./headers.ts";
import { SIGNATURE_HEADER } from "./signature.ts";
import { Backoff } from "../retry/mod.ts";
import { StallWatch } from "./stall.ts";
import type { ApplyFailure, SubscriberOptions, SubscriberStatus } from "./subscriber_types.ts";

export type { ApplyFailure, SubscriberOptions, SubscriberStatus };

/**
 * Largest batch applied through an interceptor: its hook calls share one sandbox round trip and
 * one time limit, so a slow hook must fit the batch in `--interceptor-timeout`.
 */
const INTERCEPTED_BATCH = 256;

const decoder = new TextDecoder();

/** Default {@link SubscriberOptions.maxBatch}: changesets applied in one transaction. */
export const DEFAULT_APPLY_BATCH = 500;
/** Messages a pull asks for at once (`max_messages` of `consume`). */
const PULL_MAX_MESSAGES = 1000;
/** Re-pull when this many are left of what was asked for (one pull request per 750 received). */
const PULL_THRESHOLD_MESSAGES = 250;
/**
 * Lifetime of one pull request, ms: short pulls carry heartbeats every half of it (2.5 s), so
 * a lost consumer (its server stopped, deleted by an operator) is noticed within seconds.
 */
const PULL_EXPIRES_MS = 5_000;
/** A consumer that lived this long ended for a reason: recreate it without waiting. */
const CONSUMER_HEALTHY_MS = 1_000;
/** Waits between consumer recreations: first delay, doubling up to the cap. */
const CONSUMER_RETRY_INITIAL_MS = 250;
const CONSUMER_RETRY_MAX_MS = 5_000;
/** Waits between attempts to apply a failing changeset: first delay, doubling up to the cap. */
const APPLY_RETRY_INITIAL_MS = 250;
const APPLY_RETRY_MAX_MS = 30_000;

/**
 * Apply batches sent to the writer before the answer to the previous one is back: the next waits
 * in the writer thread, not for the answer's trip through this thread (issue 13, lag).
 */
const MAX_IN_FLIGHT = 2;

/** An apply batch sent to the writer. */
interface InFlight {
  batch: Received[];
  /** Its last stream sequence. */
  last: number;
  /** Its answer, once {@link InFlight.done} (a failure to send is an answer with an error). */
  result: ApplyResult | null;
  done: Promise<void>;
}

/** One database's subscriber. */
export class Subscriber {
  private readonly buffer: Backlog;
  /** Highest stream sequence received: a recreated consumer starts after it. */
  private receivedSeq = 0;
  /** No progress recorded yet: the next consumer starts where the policy says. */
  private policyPending = false;
  private wake: (() => void) | null = null;
  private drained: (() => void) | null = null;
  private readonly pauses = new Set<() => void>();
  /** Bumped by a reset: messages of a consumer created before it are dropped. */
  private generation = 0;
  private stopped = false;
  private loops: Promise<unknown> | null = null;
  private messages: ConsumerMessages | null = null;
  private restartReason: string | null = null;
  private resetRequests: { reason: string; done: () => void }[] = [];
  private unlisten: (() => void) | null = null;
  private appliedSeq = 0;
  private applied = 0;
  private skipped = 0;
  private failing: ApplyFailure | null = null;
  private deadLettered = 0;
  private lastDeadLetter: SubscriberStatus["lastDeadLetter"] = null;
  private running = false;
  private skipTo = 0;
  private restarts = 0;
  private lastRestart: { reason: string; at: string } | null = null;
  /** Apply batches sent to the writer, not answered yet, oldest first. */
  private readonly inflight: InFlight[] = [];

  private readonly plugin: ReplicationClient;
  private readonly stall: StallWatch;
  /** This process's incarnation (a UUID), UTF-8: an own message's headers contain it. */
  private readonly incarnation: Uint8Array;

  constructor(private readonly o: SubscriberOptions) {
    this.plugin = replicationClient(o.db);
    this.incarnation = new TextEncoder().encode(o.self.incarnation);
    this.buffer = new Backlog({ bytes: o.backlogBytes ?? DEFAULT_BACKLOG_BYTES });
    this.stall = new StallWatch({
      ...o,
      received: () => this.receivedSeq,
      consuming: () => this.running,
      restart: (reason) => this.restart(reason),
    });
  }

  /** Reads the local progress and starts consuming from it. */
  async start(): Promise<void> {
    const progress = await this.progress();
    this.policyPending = progress === null;
    this.appliedSeq = this.receivedSeq = progress ?? 0;
    this.unlisten = this.o.onReconnect(() => this.restart("NATS connection re-established"));
    this.loops = Promise.all([this.consumeLoop(), this.applyLoop()]);
    this.stall.start();
  }

  /** The current state. */
  status(): SubscriberStatus {
    return {
      consumer: this.o.consumer,
      subject: this.o.subject,
      database: this.o.db.id,
      running: this.running,
      appliedSeq: this.appliedSeq,
      receivedSeq: this.receivedSeq,
      pending: this.buffer.length,
      pendingBytes: this.buffer.bytes,
      applied: this.applied,
      skipped: this.skipped,
      failing: this.failing,
      deadLettered: this.deadLettered,
      lastDeadLetter: this.lastDeadLetter,
      restarts: this.restarts,
      lastRestart: this.lastRestart,
      stalls: this.stall.stalls,
    };
  }

  /** Skips the failing changeset (or every one up to `seq`). Returns the skipped sequence. */
  async skip(seq?: number): Promise<number> {
    const target = seq ?? this.failing?.seq ?? 0;
    if (target <= this.appliedSeq) return 0;
    await this.plugin.call("skip", { subject: this.o.subject, seq: target });
    this.o.logger.warn("changesets skipped by the operator", {
      subject: this.o.subject,
      upTo: target,
    });
    this.skipTo = target;
    this.wake?.();
    this.interruptPauses();
    return target;
  }

  /**
   * Drops what was received but not applied and recreates the consumer from the progress
   * recorded in SQLite (what `DELETE /replications/<db>_<node>` does on this node). Resolves
   * once the new consumer is being created.
   */
  reset(reason: string): Promise<void> {
    if (this.stopped) return Promise.resolve();
    const done = new Promise<void>((r) => this.resetRequests.push({ reason, done: r }));
    this.wake?.();
    this.interruptPauses();
    return done;
  }

  /** Stops consuming; awaits the batch in progress. Idempotent. */
  async stop(): Promise<void> {
    this.stopped = true;
    this.unlisten?.();
    this.wake?.();
    this.drained?.();
    this.interruptPauses();
    for (const r of this.resetRequests.splice(0)) r.done();
    this.messages?.stop();
    await Promise.all([this.loops, this.stall.stop()]);
  }

  private async progress(): Promise<number | null> {
    return await this.plugin.call("progress", this.o.subject);
  }

  /**
   * Ends the current consumer (or the one being created); the consume loop recreates it after
   * the last received.
   */
  private restart(reason: string): void {
    if (this.stopped) return;
    this.restartReason ??= reason;
    this.messages?.stop();
  }

  private countDeadLetters(r: ApplyResult): void {
    if (!r.deadLetters?.length) return;
    for (const d of r.deadLetters) {
      this.deadLettered++;
      this.lastDeadLetter = { ...d, at: new Date().toISOString() };
      this.o.logger.warn("invalid changeset refused (dead-lettered)", {
        consumer: this.o.consumer,
        seq: d.seq,
        reason: d.reason,
      });
    }
  }

  private isOwn({ msg }: Received): boolean {
    // Most messages are other nodes': told apart without decoding their headers (issue 13).
    const raw = rawHeaders(msg);
    if (raw !== undefined && !includes(raw, this.incarnation)) return false;
    return msg.headers?.get(NODE_HEADER) === this.o.self.node &&
      msg.headers?.get(INCARNATION_HEADER) === this.o.self.incarnation;
  }

  /** Creates consumers and receives from them until stopped. */
  private async consumeLoop(): Promise<void> {
    const backoff = new Backoff({
      initialMs: CONSUMER_RETRY_INITIAL_MS,
      maxMs: CONSUMER_RETRY_MAX_MS,
    });
    let reason = "start";
    while (!this.stopped) {
      if (this.buffer.full()) {
        await new Promise<void>((r) => this.drained = r);
        this.drained = null;
        continue;
      }
      try {
        const began = Date.now();
        reason = await this.consumeOnce(reason);
        // A consumer that keeps ending at once must not be recreated in a busy loop.
        if (Date.now() - began >= CONSUMER_HEALTHY_MS) backoff.reset();
        else await this.pause(backoff.next());
      } catch (e) {
        if (this.stopped) break;
        reason = (e as Error).message;
        const wait = backoff.next();
        this.o.logger.warn("replication consumer failed; recreating it", {
          consumer: this.o.consumer,
          error: reason,
          retryInMs: wait,
        });
        await this.pause(wait);
      }
    }
  }

  /** One consumer's life: create it, receive until it must be replaced; returns why. */
  private async consumeOnce(why: string): Promise<string> {
    const generation = this.generation;
    this.restartReason = null;
    const ci = await this.createConsumer();
    if (why !== "start") {
      this.restarts++;
      this.lastRestart = { reason: why, at: new Date().toISOString() };
      this.o.logger.info("replication consumer recreated from local progress", {
        consumer: this.o.consumer,
        reason: why,
        fromSeq: this.receivedSeq + 1,
        server: ci.cluster?.leader,
      });
    }
    // A callback, not the async iterator: no promise per message (issue 13, catch-up).
    let ended: string | null = null;
    let messages: ConsumerMessages | null = null;
    const end = (why: string) => {
      ended ??= why;
      messages?.stop();
    };
    let delivered = 0;
    const d: Delivery = { stream: 0, delivery: 0 };
    const receive = (m: JsMsg) => {
      if (ended !== null) return;
      if (this.stopped) return end("stopped");
      if (generation !== this.generation) return end("reset by the operator");
      if (this.restartReason) return end(this.restartReason);
      // `reply` is public on nats.js's JsMsgImpl, not in the JsMsg interface.
      readAckReply((m as JsMsg & { reply: string }).reply, d);
      if (d.delivery !== delivered + 1) {
        return end(
          `delivery gap: expected consumer sequence ${delivered + 1}, got ` +
            `${d.delivery} (stream sequence ${d.stream})`,
        );
      }
      delivered = d.delivery;
      if (d.stream <= this.receivedSeq) return;
      this.receivedSeq = d.stream;
      this.buffer.push({ seq: d.stream, data: m.data, msg: m });
      this.wake?.();
      if (this.buffer.full()) end(`paused while ${this.buffer.describe()} wait to be applied`);
    };
    messages = await this.o.js.consumers.getConsumerFromInfo(ci).consume({
      max_messages: PULL_MAX_MESSAGES,
      threshold_messages: PULL_THRESHOLD_MESSAGES,
      expires: PULL_EXPIRES_MS,
      abort_on_missing_resource: true,
      callback: receive,
    });
    this.messages = messages;
    this.running = true;
    this.watch(messages);
    try {
      // Stopped, reset or restarted while the consumer was being created.
      if (this.stopped) return "stopped";
      if (generation !== this.generation) return "reset by the operator";
      if (this.restartReason) return this.restartReason;
      if (ended === null) {
        const err = await messages.closed();
        if (err && ended === null && !this.stopped) throw err;
      }
      return ended ?? this.restartReason ?? "consumer ended";
    } finally {
      this.running = false;
      this.messages = null;
      messages.stop();
    }
  }

  /** Recreates a consumer whose delivery must be distrusted (see the module doc). */
  private watch(messages: ConsumerMessages): void {
    (async () => {
      for await (const s of messages.status()) {
        switch (s.type) {
          case "heartbeats_missed":
            this.restart(`${s.count} heartbeats missed`);
            break;
          case "consumer_deleted":
          case "consumer_not_found":
          case "stream_not_found":
            this.restart(s.type.replaceAll("_", " "));
            break;
        }
      }
    })().catch(() => {});
  }

  /**
   * Deletes this node's consumer (left by an earlier process or this one, with whatever pull
   * requests it still holds) and creates it from the last received sequence, or from the
   * policy on the first start, whose resolved position becomes the recorded progress.
   */
  private async createConsumer(): Promise<ConsumerInfo> {
    const { consumer } = this.o;
    const ci = await replaceConsumer(
      this.o,
      this.policyPending ? startOf(this.o.policy) : {
        deliver_policy: DeliverPolicy.StartSequence,
        opt_start_seq: this.receivedSeq + 1,
      },
    );
    if (this.policyPending) {
      // The server resolved the policy's start: record it so it is never evaluated again.
      const before = ci.delivered.stream_seq;
      await this.plugin.call("skip", { subject: this.o.subject, seq: before });
      this.policyPending = false;
      this.appliedSeq = this.receivedSeq = Math.max(this.appliedSeq, before);
      this.o.logger.info("replication policy resolved", {
        consumer,
        policy: this.o.policy.kind,
        fromSeq: before + 1,
      });
    }
    return ci;
  }

  /** Waits `ms`, or less when stopped, reset or skipped. */
  private async pause(ms: number): Promise<void> {
    let timer: ReturnType<typeof setTimeout> | undefined;
    let done!: () => void;
    await new Promise<void>((r) => {
      done = r;
      this.pauses.add(r);
      timer = setTimeout(r, ms);
    });
    clearTimeout(timer);
    this.pauses.delete(done);
  }

  private interruptPauses(): void {
    for (const r of this.pauses) r();
  }

  /** Operator resets, between batches: back to the progress recorded in SQLite. */
  private async applyResets(): Promise<void> {
    const requests = this.resetRequests.splice(0);
    const progress = await this.progress().catch(() => null);
    this.generation++;
    this.buffer.clear();
    if (progress !== null) this.appliedSeq = progress;
    this.receivedSeq = this.appliedSeq;
    this.failing = null;
    const reason = requests.map((r) => r.reason).join("; ");
    this.o.logger.warn("replication consumer reset; resuming from local progress", {
      consumer: this.o.consumer,
      reason,
      fromSeq: this.appliedSeq + 1,
    });
    this.restart(reason);
    this.interruptPauses();
    this.drained?.();
    for (const r of requests) r.done();
  }

  /** `Ha-Signature` of each (decoding headers is a large share of a message's cost). */
  private sigs(batch: Received[]): (string | undefined)[] | undefined {
    if (this.o.rules?.clusterKey === null) return undefined;
    return batch.map((m) => m.msg.headers?.get(SIGNATURE_HEADER) || undefined);
  }

  private toApply(batch: Received[]): ApplyMessage[] {
    const sigs = this.sigs(batch);
    return batch.map((m, i) => ({
      seq: m.seq,
      subject: this.o.subject,
      data: decoder.decode(m.data),
      sig: sigs?.[i],
    }));
  }

  /** Applies received messages in stream order until stopped. */
  private async applyLoop(): Promise<void> {
    const backoff = new Backoff({ initialMs: APPLY_RETRY_INITIAL_MS, maxMs: APPLY_RETRY_MAX_MS });
    while (!this.stopped) {
      if (this.resetRequests.length > 0 || this.skipTo > 0) {
        // Between batches: nothing in flight.
        if (this.inflight.length > 0) {
          await this.settleOldest(backoff);
          continue;
        }
        if (this.resetRequests.length > 0) {
          await this.applyResets();
          backoff.reset();
          continue;
        }
        this.appliedSeq = Math.max(this.appliedSeq, this.skipTo);
        this.buffer.dropThrough(this.skipTo);
        this.skipTo = 0;
        this.failing = null;
        backoff.reset();
      }
      if (this.buffer.low()) this.drained?.();
      const next = this.unsent();
      const room = this.inflight.length < (this.o.host == null ? MAX_IN_FLIGHT : 1);
      // A batch behind one in flight starts with a remote changeset (own ones at the head are
      // skipped here once nothing is in flight: no writer transaction for them).
      if (
        room && next < this.buffer.length &&
        (this.inflight.length === 0 || !this.isOwn(this.buffer.at(next)))
      ) {
        if (this.inflight.length === 0) {
          // Own changesets of this process need no writer transaction.
          let own = 0;
          while (own < this.buffer.length && this.isOwn(this.buffer.at(own))) own++;
          if (own > 0) {
            const skipped = this.buffer.shift(own);
            this.skipped += own;
            this.appliedSeq = Math.max(this.appliedSeq, skipped[own - 1].seq);
            continue;
          }
        }
        await this.send(next);
        continue;
      }
      if (this.inflight.length === 0) {
        await new Promise<void>((r) => this.wake = r);
        this.wake = null;
        continue;
      }
      // The oldest answer, or (room for another batch) a new message, whichever comes first.
      const oldest = this.inflight[0];
      await Promise.race([
        oldest.done,
        ...(room ? [new Promise<void>((r) => this.wake = r)] : []),
      ]);
      this.wake = null;
      if (oldest.result) await this.settleOldest(backoff);
    }
    await Promise.all(this.inflight.map((f) => f.done));
  }

  /** Index in the backlog of the first message not sent to the writer. */
  private unsent(): number {
    if (this.inflight.length === 0) return 0;
    const sent = this.inflight[this.inflight.length - 1].last;
    let i = 0;
    while (i < this.buffer.length && this.buffer.at(i).seq <= sent) i++;
    return i;
  }

  /**
   * Sends the backlog from index `from` (at most one batch) to the writer and returns once it
   * was posted. The batch is taken when the writer is free to take it (what arrived while
   * waiting joins it); it waits in the writer thread behind what holds the writer (e.g. a local
   * group commit), and behind the batch in flight, if any, which it must follow: it is applied
   * only if that one was applied whole (`after`).
   */
  private async send(from: number): Promise<void> {
    const prev = this.inflight[this.inflight.length - 1];
    const f: InFlight = { batch: [], last: 0, result: null, done: Promise.resolve() };
    let posted!: () => void;
    const sent = new Promise<void>((r) => posted = r);
    const max = this.o.maxBatch ?? DEFAULT_APPLY_BATCH;
    const apply = async (): Promise<ApplyResult> => {
      if (this.o.host != null) {
        // Through an interceptor: smaller batches (its calls are in flight together).
        f.batch = this.buffer.first(INTERCEPTED_BATCH);
        f.last = f.batch[f.batch.length - 1].seq;
        posted();
        return await applyIntercepted({ ...this.o, host: this.o.host }, this.toApply(f.batch));
      }
      return await this.plugin.sendNext("applyPacked", () => {
        f.batch = this.buffer.slice(from, from + max);
        f.last = f.batch[f.batch.length - 1].seq;
        posted();
        const p = pack(this.o.subject, f.batch, this.sigs(f.batch));
        if (prev) p.after = prev.last;
        return p;
      }, (p) => [p.buf]);
    };
    f.done = apply().then((r) => {
      f.result = r;
    }, (e) => {
      f.result = this.stopped ? { through: 0, applied: 0, skipped: 0, error: null } : {
        through: 0,
        applied: 0,
        skipped: 0,
        error: { seq: (f.batch[0] ?? this.buffer.at(from)).seq, message: String(e) },
      };
    });
    this.inflight.push(f);
    await Promise.race([sent, f.done]);
  }

  /**
   * Takes the oldest batch's answer. After a failure (or a stale answer), the batches sent behind
   * it are awaited (the writer refuses them as stale) before anything is sent again, from the
   * first message not applied; after a failure, once the backoff has passed.
   */
  private async settleOldest(backoff: Backoff): Promise<void> {
    const f = this.inflight[0];
    await f.done;
    this.inflight.shift();
    const r = f.result!;
    const failed = this.account(r);
    if (!failed && !r.stale) {
      backoff.reset();
      return;
    }
    while (this.inflight.length > 0) {
      const g = this.inflight.shift()!;
      await g.done;
      this.account(g.result!);
    }
    if (failed && !this.stopped) await this.pause(backoff.next());
  }

  /** Books one batch's answer; returns whether it failed. */
  private account(r: ApplyResult): boolean {
    if (r.stale) return false;
    this.applied += r.applied;
    this.skipped += r.skipped;
    this.countDeadLetters(r);
    if (r.through > 0) {
      const observe = this.o.observeLag;
      if (observe) { for (const [origin, s] of r.lags ?? []) observe(origin, s); }
      this.appliedSeq = Math.max(this.appliedSeq, r.through);
      this.buffer.dropThrough(r.through);
    }
    if (!r.error) {
      this.failing = null;
      return false;
    }
    const first = this.failing?.seq === r.error.seq ? this.failing : null;
    this.failing = {
      seq: r.error.seq,
      error: r.error.message,
      attempts: (first?.attempts ?? 0) + 1,
      since: first?.since ?? new Date().toISOString(),
    };
    this.o.logger.error("cannot apply changeset; retrying", {
      consumer: this.o.consumer,
      seq: r.error.seq,
      attempts: this.failing.attempts,
      error: r.error.message,
    });
    return true;
  }
}
