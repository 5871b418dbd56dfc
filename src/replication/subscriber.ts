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
  AckPolicy,
  type ConsumerConfig,
  type ConsumerInfo,
  type ConsumerMessages,
  DeliverPolicy,
  type JetStreamClient,
  type JetStreamManager,
  type JsMsg,
} from "@nats-io/jetstream";
import type { ReplicationPolicy } from "../config/mod.ts";
import type { Database } from "../engine/mod.ts";
import type { Logger } from "../log/mod.ts";
import type { ChangeSet, Conflict, Resolution } from "../../interceptors/types.ts";
import {
  type ChangeSet as WireChangeSet,
  decodeChangeSet,
  decodeValue,
  encodeChangeSet,
  encodeValue,
  type WireValue,
} from "../cdc/mod.ts";
import { type InterceptorHost, toHookChangeSet, toWireChangeSet } from "../interceptor/mod.ts";
import type {
  ApplyMessage,
  ApplyResult,
  InterceptedBatch,
  WireConflict,
  WireResolution,
} from "./writer_plugin.ts";
import { INCARNATION_HEADER, MSG_ID_HEADER, NODE_HEADER } from "./headers.ts";
import { SIGNATURE_HEADER } from "./signature.ts";
import { checkMessage, type MessageRules } from "./validate.ts";

/**
 * Largest batch applied through an interceptor: its hook calls share one sandbox round trip and
 * one time limit, so a slow hook must fit the batch in `--interceptor-timeout`.
 */
const INTERCEPTED_BATCH = 256;

/** Received but unapplied changesets above which the consumer is paused (memory bound). */
const HIGH_WATER = 10_000;
/** The paused consumer is recreated when the backlog is down to this. */
const LOW_WATER = 1_000;

/** Options of {@link Subscriber}. */
export interface SubscriberOptions {
  js: JetStreamClient;
  jsm: JetStreamManager;
  stream: string;
  subject: string;
  /** The consumer's name: `<db>_<node>` (see `naming.ts`). */
  consumer: string;
  db: Database;
  pluginIndex: number;
  /** Where to start when the database has no recorded progress. */
  policy: ReplicationPolicy;
  logger: Logger;
  /** This node and process incarnation: own changesets of this run are skipped unapplied. */
  self: { node: string; incarnation: string };
  /**
   * Registers a listener of NATS reconnections (messages sent while disconnected are lost, so
   * the consumer is recreated); returns its removal.
   */
  onReconnect: (listener: () => void) => () => void;
  /** Largest batch applied in one transaction. Default 500. */
  maxBatch?: number;
  /** `--cluster-key` and `--max-clock-skew`: messages interceptor hooks may see. */
  rules?: MessageRules;
  /**
   * The `--interceptor`: when set, remote changesets are applied one at a time through its
   * hooks (beforeApply, resolveConflict, afterApply); without it, in batches.
   */
  host?: InterceptorHost | null;
  /**
   * Metrics sink: called for each applied remote changeset with its origin node and the seconds
   * from its commit there (its HLC) to its apply here.
   */
  observeLag?: (origin: string, seconds: number) => void;
}

/** A failing changeset as reported by {@link Subscriber.status}. */
export interface ApplyFailure {
  seq: number;
  error: string;
  attempts: number;
  since: string;
}

/** A snapshot of a subscriber's state. */
export interface SubscriberStatus {
  consumer: string;
  subject: string;
  database: string;
  /** A consumer is delivering to this subscriber. */
  running: boolean;
  /** Last stream sequence applied or skipped (recorded in SQLite). */
  appliedSeq: number;
  /** Last stream sequence received. */
  receivedSeq: number;
  /** Changesets received and waiting to be applied. */
  pending: number;
  applied: number;
  skipped: number;
  failing: ApplyFailure | null;
  /** Invalid messages refused since start (kept in `_ha_dead_letters`). */
  deadLettered: number;
  /** The last one refused, and why. */
  lastDeadLetter: { seq: number; reason: string; at: string } | null;
  /** How many times the consumer was (re)created from local progress, and the last reason. */
  restarts: number;
  lastRestart: { reason: string; at: string } | null;
}

/** One database's subscriber. */
export class Subscriber {
  private buffer: JsMsg[] = [];
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

  constructor(private readonly o: SubscriberOptions) {}

  /** Reads the local progress and starts consuming from it. */
  async start(): Promise<void> {
    const progress = await this.progress();
    this.policyPending = progress === null;
    this.appliedSeq = this.receivedSeq = progress ?? 0;
    this.unlisten = this.o.onReconnect(() => this.restart("NATS connection re-established"));
    this.loops = Promise.all([this.consumeLoop(), this.applyLoop()]);
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
      applied: this.applied,
      skipped: this.skipped,
      failing: this.failing,
      deadLettered: this.deadLettered,
      lastDeadLetter: this.lastDeadLetter,
      restarts: this.restarts,
      lastRestart: this.lastRestart,
    };
  }

  /** Skips the failing changeset (or every one up to `seq`). Returns the skipped sequence. */
  async skip(seq?: number): Promise<number> {
    const target = seq ?? this.failing?.seq ?? 0;
    if (target <= this.appliedSeq) return 0;
    await this.o.db.invoke(this.o.pluginIndex, "skip", { subject: this.o.subject, seq: target });
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
    await this.loops;
  }

  private async progress(): Promise<number | null> {
    return await this.o.db.invoke<number | null>(this.o.pluginIndex, "progress", this.o.subject);
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
    for (const d of r.deadLetters ?? []) {
      this.deadLettered++;
      this.lastDeadLetter = { ...d, at: new Date().toISOString() };
      this.o.logger.warn("invalid changeset refused (dead-lettered)", {
        consumer: this.o.consumer,
        seq: d.seq,
        reason: d.reason,
      });
    }
  }

  /**
   * Reports the lag of the remote changesets of `batch` up to `through`: the HLC (µs) ends
   * their `Nats-Msg-Id` (`<db>:<node>:<incarnation>:<hlc>`), so nothing is decoded.
   */
  private observeLag(batch: JsMsg[], through: number, sink: (o: string, s: number) => void) {
    const nowUs = Date.now() * 1000;
    for (const m of batch) {
      if (m.seq > through) break;
      const origin = m.headers?.get(NODE_HEADER);
      if (!origin || origin === this.o.self.node) continue;
      const id = m.headers!.get(MSG_ID_HEADER);
      const hlc = Number(id.slice(id.lastIndexOf(":") + 1));
      if (hlc > 0) sink(origin, Math.max(0, nowUs - hlc) / 1e6);
    }
  }

  private isOwn(m: JsMsg): boolean {
    return m.headers?.get(NODE_HEADER) === this.o.self.node &&
      m.headers?.get(INCARNATION_HEADER) === this.o.self.incarnation;
  }

  /** Creates consumers and receives from them until stopped. */
  private async consumeLoop(): Promise<void> {
    let backoff = 250;
    let reason = "start";
    while (!this.stopped) {
      if (this.buffer.length >= HIGH_WATER) {
        await new Promise<void>((r) => this.drained = r);
        this.drained = null;
        continue;
      }
      try {
        const began = Date.now();
        reason = await this.consumeOnce(reason);
        // A consumer that keeps ending at once must not be recreated in a busy loop.
        if (Date.now() - began >= 1_000) backoff = 250;
        else {
          await this.pause(backoff);
          backoff = Math.min(backoff * 2, 5_000);
        }
      } catch (e) {
        if (this.stopped) break;
        reason = (e as Error).message;
        this.o.logger.warn("replication consumer failed; recreating it", {
          consumer: this.o.consumer,
          error: reason,
          retryInMs: backoff,
        });
        await this.pause(backoff);
        backoff = Math.min(backoff * 2, 5_000);
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
      });
    }
    const messages = await this.o.js.consumers.getConsumerFromInfo(ci).consume({
      max_messages: 1000,
      // Short pulls: heartbeats every 2.5 s, so a lost consumer (its server stopped, deleted
      // by an operator) is noticed and recreated within seconds.
      expires: 5_000,
      abort_on_missing_resource: true,
    });
    this.messages = messages;
    this.running = true;
    this.watch(messages);
    try {
      // Stopped, reset or restarted while the consumer was being created.
      if (this.stopped) return "stopped";
      if (generation !== this.generation) return "reset by the operator";
      if (this.restartReason) return this.restartReason;
      let delivered = 0;
      for await (const m of messages) {
        if (this.stopped) break;
        if (generation !== this.generation) return "reset by the operator";
        if (m.info.deliverySequence !== delivered + 1) {
          return `delivery gap: expected consumer sequence ${delivered + 1}, got ` +
            `${m.info.deliverySequence} (stream sequence ${m.seq})`;
        }
        delivered = m.info.deliverySequence;
        if (m.seq <= this.receivedSeq) continue;
        this.receivedSeq = m.seq;
        this.buffer.push(m);
        this.wake?.();
        if (this.buffer.length >= HIGH_WATER) {
          return `paused while ${this.buffer.length} changesets wait to be applied`;
        }
      }
      return this.restartReason ?? "consumer ended";
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
    const { jsm, stream, consumer } = this.o;
    try {
      await jsm.consumers.delete(stream, consumer);
    } catch (e) {
      if (!/not found/i.test((e as Error).message)) throw e;
    }
    const cfg: Partial<ConsumerConfig> = {
      name: consumer,
      filter_subject: this.o.subject,
      ack_policy: AckPolicy.None,
      mem_storage: true,
      num_replicas: 1,
      // A consumer left by a killed process goes away by itself.
      inactive_threshold: 60_000_000_000,
      ...(this.policyPending ? startOf(this.o.policy) : {
        deliver_policy: DeliverPolicy.StartSequence,
        opt_start_seq: this.receivedSeq + 1,
      }),
    };
    const ci = await jsm.consumers.add(stream, cfg);
    if (ci.delivered.consumer_seq !== 0) {
      // Not ours: an older one of that name (its deletion not applied yet in a NATS cluster).
      throw new Error(
        `consumer ${consumer} still exists with ${ci.delivered.consumer_seq} deliveries`,
      );
    }
    if (this.policyPending) {
      // The server resolved the policy's start: record it so it is never evaluated again.
      const before = ci.delivered.stream_seq;
      await this.o.db.invoke(this.o.pluginIndex, "skip", { subject: this.o.subject, seq: before });
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
    this.buffer = [];
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

  /** Applies received messages in stream order until stopped. */
  private async applyLoop(): Promise<void> {
    let backoff = 250;
    while (!this.stopped) {
      if (this.resetRequests.length > 0) {
        await this.applyResets();
        backoff = 250;
        continue;
      }
      if (this.skipTo > 0) {
        this.appliedSeq = Math.max(this.appliedSeq, this.skipTo);
        const i = this.buffer.findIndex((m) => m.seq > this.skipTo);
        this.buffer.splice(0, i < 0 ? this.buffer.length : i);
        this.skipTo = 0;
        this.failing = null;
        backoff = 250;
      }
      if (this.buffer.length <= LOW_WATER) this.drained?.();
      if (this.buffer.length === 0) {
        await new Promise<void>((r) => this.wake = r);
        this.wake = null;
        continue;
      }
      // Own changesets of this process need no writer transaction.
      let own = 0;
      while (own < this.buffer.length && this.isOwn(this.buffer[own])) own++;
      if (own > 0) {
        const skipped = this.buffer.splice(0, own);
        this.skipped += own;
        this.appliedSeq = Math.max(this.appliedSeq, skipped[own - 1].seq);
        continue;
      }
      // Through an interceptor: smaller batches (its calls are in flight together).
      const single = this.o.host != null;
      const batch = this.buffer.slice(0, single ? INTERCEPTED_BATCH : this.o.maxBatch ?? 500);
      const msgs: ApplyMessage[] = batch.map((m) => ({
        seq: m.seq,
        subject: this.o.subject,
        data: m.string(),
        sig: m.headers?.get(SIGNATURE_HEADER) || undefined,
      }));
      let r: ApplyResult;
      try {
        r = single
          ? await applyIntercepted({ ...this.o, host: this.o.host! }, msgs)
          : await this.o.db.invoke<ApplyResult>(this.o.pluginIndex, "apply", msgs);
      } catch (e) {
        if (this.stopped) return;
        r = {
          through: 0,
          applied: 0,
          skipped: 0,
          error: { seq: batch[0].seq, message: String(e) },
        };
      }
      this.applied += r.applied;
      this.skipped += r.skipped;
      this.countDeadLetters(r);
      if (r.through > 0) {
        if (this.o.observeLag) this.observeLag(batch, r.through, this.o.observeLag);
        this.appliedSeq = Math.max(this.appliedSeq, r.through);
        const i = this.buffer.findIndex((m) => m.seq > r.through);
        this.buffer.splice(0, i < 0 ? this.buffer.length : i);
      }
      if (r.error) {
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
        await this.pause(backoff);
        backoff = Math.min(backoff * 2, 30_000);
      } else {
        this.failing = null;
        backoff = 250;
      }
    }
  }
}

/** What {@link applyIntercepted} needs. */
export interface InterceptedApply {
  host: InterceptorHost;
  db: Database;
  pluginIndex: number;
  self: { node: string };
  logger: Logger;
  /** Named in log lines. */
  consumer: string;
  /** What a message must be: invalid ones are not shown to hooks (the plugin dead-letters them). */
  rules?: MessageRules;
}

/**
 * Applies a batch of messages through the interceptor, in stream order:
 * 1. `beforeApply` for every remote changeset (calls in flight together): skip → recorded as
 *    done unapplied, rewrite → the rewritten changes are applied;
 * 2. under one writer lock: the plugin applies the batch in one transaction (a savepoint per
 *    changeset); with a `resolveConflict` hook it stops before a changeset with row conflicts,
 *    which are resolved in one sandbox call, and goes on with that changeset applied per the
 *    resolutions;
 * 3. `afterApply` for every applied changeset and for the one that failed (its transaction
 *    rolled back): null records the failed one as done, an error keeps it failing (retried).
 * Own changesets get no hooks. Resolves to what was committed (`through`) and the final error.
 */
export async function applyIntercepted(
  o: InterceptedApply,
  batch: ApplyMessage[],
): Promise<ApplyResult> {
  const { host, db, pluginIndex } = o;
  const views = new Map<number, ChangeSet>();
  const remote: { at: number; wire: WireChangeSet; cs: ChangeSet }[] = [];
  batch.forEach((m, at) => {
    let wire: WireChangeSet;
    try {
      wire = o.rules ? checkMessage(m, o.rules) : decodeChangeSet(m.data);
    } catch {
      return; // the plugin dead-letters it
    }
    // Hooks never run for this node's own changesets (earlier runs replayed on memory databases).
    if (wire.node === o.self.node) return;
    remote.push({ at, wire, cs: toHookChangeSet(wire, { stream_seq: m.seq, subject: m.subject }) });
  });
  // One sandbox round trip for the whole batch.
  const befores = await host.beforeApplyBatch(remote.map((r) => r.cs), db.id);
  const msgs = [...batch];
  remote.forEach((r, i) => {
    const m = batch[r.at];
    const before = befores[i];
    if (before.skip) msgs[r.at] = { ...m, skip: true };
    else if (!before.rewritten) views.set(m.seq, r.cs);
    else {
      views.set(m.seq, before.changeset);
      msgs[r.at] = {
        ...m,
        data: encodeChangeSet(toWireChangeSet(before.changeset, r.wire)),
        signed: m.data,
      };
    }
  });
  const detect = host.has("resolveConflict");
  const total: ApplyResult = { through: 0, applied: 0, skipped: 0, error: null, deadLetters: [] };
  const applied: number[] = [];
  await db.invokeLocked(pluginIndex, async (call) => {
    let rest = msgs;
    let resolved: Pick<InterceptedBatch, "resolvedSeq" | "resolutions"> = {};
    while (rest.length > 0) {
      let r: ApplyResult;
      try {
        const args: InterceptedBatch = { msgs: rest, detect, ...resolved };
        r = await call("applyIntercepted", args) as ApplyResult;
      } catch (e) {
        r = { through: 0, applied: 0, skipped: 0, error: { seq: rest[0].seq, message: String(e) } };
      }
      total.applied += r.applied;
      total.skipped += r.skipped;
      total.deadLetters!.push(...r.deadLetters ?? []);
      if (r.through > 0) total.through = r.through;
      applied.push(...r.appliedSeqs ?? []);
      total.error = r.error;
      if (r.error || !r.conflicts) return;
      const seq = r.conflicts.seq;
      const cs = views.get(seq)!;
      const res = await host.resolveConflicts(
        r.conflicts.list.map((w) => toConflict(w, cs)),
        db.id,
      );
      const resolutions: [number, WireResolution][] = [];
      res.forEach((x, i) => {
        const w = toWireResolution(x);
        if (w !== undefined) resolutions.push([r.conflicts!.list[i].change_index, w]);
      });
      resolved = { resolvedSeq: seq, resolutions };
      rest = rest.slice(rest.findIndex((m) => m.seq === seq));
    }
  });
  // One sandbox round trip: every applied changeset, then the failed one (if any).
  const failed = total.error;
  const after: { changeset: ChangeSet; error: { message: string } | null }[] = applied
    .filter((seq) => views.has(seq))
    .map((seq) => ({ changeset: views.get(seq)!, error: null }));
  const cs = failed ? views.get(failed.seq) : undefined;
  if (failed && cs) after.push({ changeset: cs, error: { message: failed.message } });
  const outcomes = await host.afterApplyBatch(after, db.id);
  if (!failed || !cs) return total;
  const err = outcomes[outcomes.length - 1];
  if (err !== null) return { ...total, error: { seq: failed.seq, message: err.message } };
  await db.invoke(pluginIndex, "skip", { subject: batch[0].subject, seq: failed.seq });
  o.logger.warn("changeset failed; error swallowed by the interceptor", {
    consumer: o.consumer,
    seq: failed.seq,
    error: failed.message,
  });
  return { ...total, through: failed.seq, skipped: total.skipped + 1, error: null };
}

/** The hook's view of a conflict the writer plugin found. */
function toConflict(w: WireConflict, changeset: Conflict["changeset"]): Conflict {
  const dec = (v: WireValue[] | null) => v === null ? null : v.map(decodeValue);
  return {
    table: w.table,
    columns: w.columns,
    pk_columns: w.pk_columns,
    local: { values: dec(w.local.values), hlc: w.local.hlc, node: w.local.node },
    remote: {
      operation: w.remote.operation,
      values: dec(w.remote.values),
      old_values: dec(w.remote.old_values),
      hlc: w.remote.hlc,
      node: w.remote.node,
    },
    change_index: w.change_index,
    changeset,
  };
}

function toWireResolution(r: Resolution): WireResolution | undefined {
  if (r === undefined) return undefined;
  if (r === "local" || r === "remote") return r;
  return { values: r.values.map(encodeValue) };
}

/** The start the policy selects, for a consumer of a database without recorded progress. */
function startOf(policy: ReplicationPolicy): Partial<ConsumerConfig> {
  switch (policy.kind) {
    case "all":
      return { deliver_policy: DeliverPolicy.All };
    case "last":
      return { deliver_policy: DeliverPolicy.Last };
    case "new":
      return { deliver_policy: DeliverPolicy.New };
    case "by_start_sequence":
      return { deliver_policy: DeliverPolicy.StartSequence, opt_start_seq: policy.seq };
    case "by_start_time":
      return { deliver_policy: DeliverPolicy.StartTime, opt_start_time: policy.time.toISOString() };
  }
}
