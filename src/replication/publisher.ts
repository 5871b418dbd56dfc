/**
 * Publishes a database's committed changesets to JetStream in commit order, pipelined (many
 * publishes in flight, one connection keeps their order), each with `Nats-Msg-Id` = changeset id
 * so a resend is de-duplicated. Changesets stay in the outbox table until stored by JetStream;
 * failures are retried with backoff from the first unacknowledged one.
 *
 * @module
 */
import type { JetStreamClient } from "@nats-io/jetstream";
import { headers, type MsgHdrs } from "@nats-io/transport-node";
import type { Database } from "../engine/mod.ts";
import type { Logger } from "../log/mod.ts";
import type { CommitPayload, OutboxRow } from "./writer_plugin.ts";

/** Header naming the node that published a changeset. */
export const NODE_HEADER = "Ha-Node";
/** Header naming the process incarnation that published a changeset. */
export const INCARNATION_HEADER = "Ha-Incarnation";

/** Options of {@link Publisher}. */
export interface PublisherOptions {
  js: JetStreamClient;
  subject: string;
  db: Database;
  /** Index of the replication plugin in the engine's plugin list. */
  pluginIndex: number;
  /** Per-publish timeout (`--replication-timeout`). */
  timeoutMs: number;
  logger: Logger;
  /** This node and process incarnation, sent as headers so subscribers skip own changesets cheaply. */
  self: { node: string; incarnation: string };
  /** Maximum publishes in flight. Default 256. */
  window?: number;
}

interface Item {
  outboxId: number;
  id: string;
  data: string;
  acked: boolean;
  sent: boolean;
  waiters: (() => void)[];
}

/** A snapshot of a publisher's state (for `/replications` and `/readyz`). */
export interface PublisherStatus {
  subject: string;
  /** Changesets committed but not yet stored by JetStream. */
  pending: number;
  published: number;
  lastError: string | null;
}

/** In-order, pipelined publisher of one database's outbox. */
export class Publisher {
  private readonly queue: Item[] = [];
  private inflight = 0;
  private failed = false;
  private stopped = false;
  private published = 0;
  private lastError: string | null = null;
  private backoff = 250;
  private retryTimer: ReturnType<typeof setTimeout> | null = null;
  private deleteUpTo = 0;
  private deleting: Promise<void> | null = null;
  private deleteTimer: ReturnType<typeof setTimeout> | null = null;
  private readonly window: number;
  private readonly idle: (() => void)[] = [];
  private readonly hdrs: MsgHdrs;

  constructor(private readonly o: PublisherOptions) {
    this.window = o.window ?? 256;
    this.hdrs = headers();
    this.hdrs.set(NODE_HEADER, o.self.node);
    this.hdrs.set(INCARNATION_HEADER, o.self.incarnation);
  }

  /** Loads changesets left in the outbox by an earlier run and starts publishing them. */
  async start(): Promise<void> {
    let after = 0;
    for (;;) {
      const rows = await this.o.db.invoke<OutboxRow[]>(this.o.pluginIndex, "outboxPending", {
        after,
        limit: 1000,
      });
      for (const r of rows) this.push(r);
      if (rows.length < 1000) break;
      after = rows[rows.length - 1].outboxId;
    }
    if (this.queue.length > 0) {
      this.o.logger.info("publishing changesets left in the outbox", { count: this.queue.length });
    }
    this.kick();
  }

  /** Queues a committed changeset; resolves once JetStream stored it (and all before it). */
  enqueue(p: CommitPayload): Promise<void> {
    const item = this.push(p);
    const done = new Promise<void>((resolve) => item.waiters.push(resolve));
    this.kick();
    return done;
  }

  /** The current state. */
  status(): PublisherStatus {
    return {
      subject: this.o.subject,
      pending: this.queue.length,
      published: this.published,
      lastError: this.lastError,
    };
  }

  /** Waits up to `ms` for the queue to drain, then stops publishing. Idempotent. */
  async stop(ms: number): Promise<void> {
    if (this.queue.length > 0 && !this.stopped) {
      let timer: ReturnType<typeof setTimeout> | undefined;
      await Promise.race([
        new Promise<void>((r) => this.idle.push(r)),
        new Promise<void>((r) => timer = setTimeout(r, ms)),
      ]);
      clearTimeout(timer);
    }
    this.stopped = true;
    if (this.retryTimer !== null) clearTimeout(this.retryTimer);
    if (this.deleteTimer !== null) clearTimeout(this.deleteTimer);
    this.deleteTimer = null;
    await this.deleting;
    await this.flushDeletes();
  }

  private push(p: { outboxId: number; id: string; data: string }): Item {
    const item: Item = {
      outboxId: p.outboxId,
      id: p.id,
      data: p.data,
      acked: false,
      sent: false,
      waiters: [],
    };
    this.queue.push(item);
    return item;
  }

  private kick(): void {
    if (this.failed || this.stopped) return;
    for (const item of this.queue) {
      if (this.inflight >= this.window) break;
      if (item.sent || item.acked) continue;
      item.sent = true;
      this.inflight++;
      this.send(item);
    }
  }

  private send(item: Item): void {
    this.o.js.publish(this.o.subject, item.data, {
      msgID: item.id,
      timeout: this.o.timeoutMs,
      headers: this.hdrs,
    }).then(
      () => {
        item.acked = true;
        this.published++;
      },
      (e: unknown) => {
        item.sent = false;
        if (!this.failed) {
          this.failed = true;
          this.lastError = e instanceof Error ? e.message : String(e);
          this.o.logger.warn("publish failed; will retry", {
            subject: this.o.subject,
            error: this.lastError,
          });
        }
      },
    ).finally(() => {
      this.inflight--;
      this.advance();
      if (this.failed) {
        if (this.inflight === 0) this.scheduleRetry();
      } else this.kick();
    });
  }

  private advance(): void {
    while (this.queue.length > 0 && this.queue[0].acked) {
      const item = this.queue.shift()!;
      this.deleteUpTo = Math.max(this.deleteUpTo, item.outboxId);
      for (const w of item.waiters) w();
    }
    if (this.queue.length === 0) {
      this.lastError = null;
      for (const r of this.idle.splice(0)) r();
    }
    this.scheduleDelete();
  }

  private scheduleRetry(): void {
    if (this.stopped || this.retryTimer !== null) return;
    // Everything not yet stored is resent in order; Nats-Msg-Id de-duplicates.
    for (const item of this.queue) if (!item.acked) item.sent = false;
    this.retryTimer = setTimeout(() => {
      this.retryTimer = null;
      this.failed = false;
      this.kick();
    }, this.backoff);
    this.backoff = Math.min(this.backoff * 2, 5_000);
  }

  private scheduleDelete(): void {
    if (this.deleteTimer !== null || this.stopped) return;
    this.deleteTimer = setTimeout(() => {
      this.deleteTimer = null;
      this.backoff = 250;
      this.deleting = this.flushDeletes();
    }, 100);
  }

  private deleted = 0;
  private async flushDeletes(): Promise<void> {
    const upTo = this.deleteUpTo;
    if (upTo <= this.deleted) return;
    try {
      await this.o.db.invoke(this.o.pluginIndex, "outboxDelete", upTo);
      this.deleted = upTo;
    } catch (e) {
      this.o.logger.debug("outbox cleanup failed", { error: (e as Error).message });
    }
  }
}
