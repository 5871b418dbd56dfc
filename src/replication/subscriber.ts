/**
 * Applies a database's changesets from the stream: one durable consumer per (database, node),
 * batches of whatever has arrived applied in one transaction by the writer plugin, progress
 * (stream sequence) recorded in that transaction, acknowledged afterwards (ack-all). A changeset
 * that fails is retried with backoff and reported; the operator can skip it.
 *
 * @module
 */
import {
  AckPolicy,
  type ConsumerConfig,
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
import { INCARNATION_HEADER, NODE_HEADER } from "./headers.ts";
import { SIGNATURE_HEADER } from "./signature.ts";
import { checkMessage, type MessageRules } from "./validate.ts";

/**
 * Largest batch applied through an interceptor: its hook calls share one sandbox round trip and
 * one time limit, so a slow hook must fit the batch in `--interceptor-timeout`.
 */
const INTERCEPTED_BATCH = 256;

/** Options of {@link Subscriber}. */
export interface SubscriberOptions {
  js: JetStreamClient;
  jsm: JetStreamManager;
  stream: string;
  subject: string;
  consumer: string;
  db: Database;
  pluginIndex: number;
  policy: ReplicationPolicy;
  /** Replay from the policy's start on every start (memory databases). */
  replay: boolean;
  logger: Logger;
  /** This node and process incarnation: own changesets of this run are acknowledged unapplied. */
  self: { node: string; incarnation: string };
  /** Largest batch applied in one transaction. Default 500. */
  maxBatch?: number;
  /** `--cluster-key` and `--max-clock-skew`: messages interceptor hooks may see. */
  rules?: MessageRules;
  /**
   * The `--interceptor`: when set, remote changesets are applied one at a time through its
   * hooks (beforeApply, resolveConflict, afterApply); without it, in batches.
   */
  host?: InterceptorHost | null;
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
  running: boolean;
  /** Last stream sequence applied or skipped. */
  appliedSeq: number;
  applied: number;
  skipped: number;
  failing: ApplyFailure | null;
  /** Invalid messages refused since start (kept in `_ha_dead_letters`). */
  deadLettered: number;
  /** The last one refused, and why. */
  lastDeadLetter: { seq: number; reason: string; at: string } | null;
}

/** One database's subscriber. */
export class Subscriber {
  private buffer: JsMsg[] = [];
  private maxSeen = 0;
  private wake: (() => void) | null = null;
  private stopped = false;
  private loop: Promise<void> | null = null;
  private messages: ConsumerMessages | null = null;
  private appliedSeq = 0;
  private applied = 0;
  private skipped = 0;
  private failing: ApplyFailure | null = null;
  private deadLettered = 0;
  private lastDeadLetter: SubscriberStatus["lastDeadLetter"] = null;
  private running = false;
  private skipTo = 0;

  constructor(private readonly o: SubscriberOptions) {}

  /** Creates (or resumes) the durable consumer and starts applying. */
  async start(): Promise<void> {
    this.appliedSeq = await this.o.db.invoke<number>(
      this.o.pluginIndex,
      "progress",
      this.o.subject,
    );
    await this.ensureConsumer(this.o.replay);
    this.loop = this.run();
  }

  /** The current state. */
  status(): SubscriberStatus {
    return {
      consumer: this.o.consumer,
      subject: this.o.subject,
      database: this.o.db.id,
      running: this.running,
      appliedSeq: this.appliedSeq,
      applied: this.applied,
      skipped: this.skipped,
      failing: this.failing,
      deadLettered: this.deadLettered,
      lastDeadLetter: this.lastDeadLetter,
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
    return target;
  }

  /** Stops consuming; awaits the batch in progress. Idempotent. */
  async stop(): Promise<void> {
    this.stopped = true;
    this.wake?.();
    try {
      await this.messages?.close();
    } catch { /* closing anyway */ }
    await this.loop;
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

  private isOwn(m: JsMsg): boolean {
    return m.headers?.get(NODE_HEADER) === this.o.self.node &&
      m.headers?.get(INCARNATION_HEADER) === this.o.self.incarnation;
  }

  private async ensureConsumer(replay: boolean): Promise<void> {
    const { jsm, stream, consumer } = this.o;
    let exists = false;
    try {
      await jsm.consumers.info(stream, consumer);
      exists = true;
    } catch { /* not found */ }
    if (exists && replay) {
      await jsm.consumers.delete(stream, consumer);
      exists = false;
    }
    if (exists) return;
    const cfg: Partial<ConsumerConfig> = {
      durable_name: consumer,
      filter_subject: this.o.subject,
      ack_policy: AckPolicy.All,
      max_ack_pending: 10_000,
      ack_wait: 60_000_000_000,
      ...startOf(this.appliedSeq > 0 ? null : this.o.policy, this.appliedSeq),
    };
    try {
      await jsm.consumers.add(stream, cfg);
    } catch (e) {
      if (!/already|exists/i.test((e as Error).message)) throw e;
    }
  }

  private async run(): Promise<void> {
    let backoff = 500;
    while (!this.stopped) {
      try {
        const c = await this.o.js.consumers.get(this.o.stream, this.o.consumer);
        // Short pulls: heartbeats every 2.5 s, so a consumer whose leader moved to another
        // server (a NATS cluster node stopped) is pulled from again within seconds, not ~45 s.
        this.messages = await c.consume({ max_messages: 1000, expires: 5_000 });
        this.running = true;
        const pump = this.process();
        for await (const m of this.messages) {
          if (m.seq <= this.maxSeen) continue;
          this.maxSeen = m.seq;
          this.buffer.push(m);
          this.wake?.();
        }
        this.running = false;
        this.wake?.();
        await pump;
        backoff = 500;
      } catch (e) {
        this.running = false;
        if (this.stopped) break;
        this.o.logger.warn("replication consumer failed; retrying", {
          consumer: this.o.consumer,
          error: (e as Error).message,
        });
      }
      if (this.stopped) break;
      await sleep(backoff);
      backoff = Math.min(backoff * 2, 10_000);
      try {
        await this.ensureConsumer(false);
      } catch { /* retried next round */ }
    }
    this.running = false;
  }

  /** Applies buffered messages until the consumer ends. */
  private async process(): Promise<void> {
    let backoff = 250;
    while (!this.stopped) {
      if (this.skipTo > 0) {
        this.appliedSeq = Math.max(this.appliedSeq, this.skipTo);
        const i = this.buffer.findIndex((m) => m.seq > this.skipTo);
        const dropped = i < 0 ? this.buffer.splice(0) : this.buffer.splice(0, i);
        dropped.at(-1)?.ack();
        this.skipTo = 0;
        this.failing = null;
        backoff = 250;
      }
      if (this.buffer.length === 0) {
        if (!this.running) return;
        await new Promise<void>((r) => this.wake = r);
        this.wake = null;
        continue;
      }
      // Own changesets of this process need no writer transaction: acknowledge them at once.
      let own = 0;
      while (own < this.buffer.length && this.isOwn(this.buffer[own])) own++;
      if (own > 0) {
        const skipped = this.buffer.splice(0, own);
        skipped[own - 1].ack();
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
        this.appliedSeq = Math.max(this.appliedSeq, r.through);
        const i = batch.findIndex((m) => m.seq === r.through);
        this.buffer.splice(0, i + 1);
        batch[i].ack();
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
        for (const m of batch) if (m.seq >= r.error.seq) m.working();
        await Promise.race([sleep(backoff), new Promise<void>((res) => this.wake = res)]);
        this.wake = null;
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

function startOf(policy: ReplicationPolicy | null, done: number): Partial<ConsumerConfig> {
  if (policy === null) {
    return { deliver_policy: DeliverPolicy.StartSequence, opt_start_seq: done + 1 };
  }
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

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
