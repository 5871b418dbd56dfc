/**
 * Replication of every database of a node through one JetStream stream: the stream, one
 * {@link Publisher} and one {@link Subscriber} per database, status for `/replications` and
 * `/readyz`.
 *
 * @module
 */
import type { InterceptorHost } from "../interceptor/mod.ts";
import {
  type ConsumerInfo,
  jetstream,
  type JetStreamManager,
  jetstreamManager,
  StorageType,
  type StreamConfig,
} from "@nats-io/jetstream";
import type { Config } from "../config/mod.ts";
import type { Engine, PluginSpec } from "../engine/mod.ts";
import { HaError } from "../errors/mod.ts";
import type { Logger } from "../log/mod.ts";
import type { NatsClient } from "../nats/mod.ts";
import { consumerOf, subjectOf } from "./naming.ts";
import { Publisher, type PublisherStatus } from "./publisher.ts";
import { Subscriber, type SubscriberStatus } from "./subscriber.ts";
import { tombstoneCutoff } from "./versions.ts";
import type { CommitPayload, ReplicationPluginOptions } from "./writer_plugin.ts";

/**
 * The writer plugin every database needs for replication. `maxPayload` is the NATS server's
 * `max_payload` (`nc.info.max_payload`): larger transactions are refused before COMMIT.
 */
export function replicationPlugin(
  config: Config,
  incarnation: string,
  maxPayload: number,
): PluginSpec {
  const options: ReplicationPluginOptions = {
    node: config.name,
    incarnation,
    rowIdentify: config.rowIdentify,
    disableDdlSync: config.disableDdlSync,
    memory: config.memory,
    outboxDir: config.asyncReplication && config.memory ? config.asyncReplicationStoreDir : null,
    maxPayload,
    clockOffsetMs: config.testClockOffsetMs ?? 0,
  };
  return { url: new URL("./writer_plugin.ts", import.meta.url).href, options };
}

/** Options of {@link Replication}. */
export interface ReplicationOptions {
  config: Config;
  engine: Engine;
  nats: NatsClient;
  /** The process incarnation given to {@link replicationPlugin}. */
  incarnation: string;
  /** Index of {@link replicationPlugin} in the engine's plugin list. */
  pluginIndex: number;
  logger: Logger;
  /** The loaded `--interceptor` (its hooks run on remote changesets), or null. */
  interceptor?: InterceptorHost | null;
  /**
   * Databases restored from a snapshot at start: like memory databases, their consumer is
   * recreated from the restored progress, so an older acknowledgement point cannot skip
   * changesets the snapshot does not contain.
   */
  restored?: ReadonlySet<string>;
}

/** Status of one database's replication. */
export interface DatabaseReplicationStatus {
  database: string;
  publisher: PublisherStatus;
  subscriber: SubscriberStatus;
}

/** Replication of a node's databases. */
export class Replication {
  private jsm: JetStreamManager | null = null;
  private readonly publishers = new Map<string, Publisher>();
  private readonly subscribers = new Map<string, Subscriber>();
  private stopping: Promise<void> | null = null;
  private purgeTimer: ReturnType<typeof setInterval> | null = null;
  private purging: Promise<void> | null = null;
  private readonly log: Logger;

  constructor(private readonly o: ReplicationOptions) {
    this.log = o.logger.child({ component: "replication" });
  }

  /** Creates the stream if needed, starts publishers (outbox first) and subscribers. */
  async start(): Promise<void> {
    const { config, nats, engine } = this.o;
    const js = jetstream(nats.nc);
    const jsm = await jetstreamManager(nats.nc);
    this.jsm = jsm;
    await this.ensureStream(jsm);
    for (const db of engine.databases()) {
      const subject = subjectOf(config.replicationStream, db.id);
      const log = this.log.child({ db: db.id });
      const pub = new Publisher({
        js,
        subject,
        db,
        pluginIndex: this.o.pluginIndex,
        timeoutMs: config.replicationTimeoutMs,
        self: { node: config.name, incarnation: this.o.incarnation },
        logger: log,
      });
      this.publishers.set(db.id, pub);
      db.onCommit((payloads) => this.onCommit(pub, payloads));
      await pub.start();
      const sub = new Subscriber({
        js,
        jsm,
        stream: config.replicationStream,
        subject,
        consumer: consumerOf(db.id, config.name),
        db,
        pluginIndex: this.o.pluginIndex,
        policy: config.replicationPolicy,
        replay: db.source.memory || (this.o.restored?.has(db.id) ?? false),
        self: { node: config.name, incarnation: this.o.incarnation },
        logger: log,
        host: this.o.interceptor ?? null,
      });
      this.subscribers.set(db.id, sub);
      await sub.start();
    }
    const maxAge = config.replicationMaxAgeMs;
    if (maxAge > 0) {
      const timer = setInterval(() => {
        this.purging ??= this.purgeTombstones().finally(() => this.purging = null);
      }, Math.max(1_000, Math.min(maxAge, 3_600_000)));
      Deno.unrefTimer(timer);
      this.purgeTimer = timer;
    }
    this.log.info("replication started", {
      stream: config.replicationStream,
      mode: config.asyncReplication ? "async" : "sync",
      databases: engine.ids(),
    });
  }

  /**
   * Purges the tombstones of every database that the stream can no longer contradict
   * (see {@link tombstoneCutoff}). Runs periodically when the stream has a max age.
   */
  async purgeTombstones(): Promise<void> {
    const cutoff = tombstoneCutoff(Date.now(), this.o.config.replicationMaxAgeMs);
    if (cutoff === null) return;
    for (const db of this.o.engine.databases()) {
      try {
        const n = await db.invoke<number>(this.o.pluginIndex, "purgeTombstones", cutoff);
        if (n > 0) this.log.debug("tombstones purged", { db: db.id, count: n });
      } catch (e) {
        this.log.warn("tombstone purge failed", { db: db.id, error: (e as Error).message });
      }
    }
  }

  private async onCommit(pub: Publisher, payloads: unknown[]): Promise<void> {
    const mine = payloads.filter((p): p is CommitPayload =>
      (p as CommitPayload | null)?.kind === "changeset"
    );
    if (mine.length === 0) return;
    const stored = Promise.all(mine.map((p) => pub.enqueue(p)));
    if (this.o.config.asyncReplication) {
      stored.catch(() => {});
      return;
    }
    const ms = this.o.config.replicationTimeoutMs;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timedOut = new Promise<"timeout">((r) => timer = setTimeout(() => r("timeout"), ms));
    const outcome = await Promise.race([stored, timedOut]);
    clearTimeout(timer);
    if (outcome === "timeout") {
      throw new HaError(
        "unavailable",
        `replication unavailable: the write was committed locally but JetStream did not confirm ` +
          `it within ${ms} ms; it is queued and will be published when NATS is reachable`,
      );
    }
  }

  private async ensureStream(jsm: JetStreamManager): Promise<void> {
    const c = this.o.config;
    const maxAgeNs = c.replicationMaxAgeMs * 1_000_000;
    const dup = 2 * 60 * 1_000_000_000;
    const cfg: Partial<StreamConfig> & { name: string } = {
      name: c.replicationStream,
      subjects: [`${c.replicationStream}.>`],
      storage: StorageType.File,
      max_age: maxAgeNs,
      num_replicas: c.replicas,
      duplicate_window: maxAgeNs > 0 ? Math.min(dup, maxAgeNs) : dup,
    };
    for (let attempt = 0;; attempt++) {
      try {
        try {
          const info = await jsm.streams.info(c.replicationStream);
          await this.updateStream(jsm, info.config, cfg);
          return;
        } catch (e) {
          if (!/not found/i.test((e as Error).message)) throw e;
        }
        await jsm.streams.add(cfg);
        this.log.info("stream created", { stream: cfg.name, subjects: cfg.subjects });
        return;
      } catch (e) {
        if (/already in use|exists/i.test((e as Error).message)) return;
        if (attempt >= 20) throw e;
        await new Promise((r) => setTimeout(r, 500));
      }
    }
  }

  /**
   * Brings an existing stream to the configured max age, replicas and subjects (the flags may
   * have changed since it was created). A refused update is logged, not fatal: replication
   * works with the stream as it is.
   */
  private async updateStream(
    jsm: JetStreamManager,
    current: StreamConfig,
    want: Partial<StreamConfig> & { name: string },
  ): Promise<void> {
    const subjects = current.subjects ?? [];
    const missing = (want.subjects ?? []).filter((s) => !subjects.includes(s));
    if (
      current.max_age === want.max_age && current.num_replicas === want.num_replicas &&
      missing.length === 0
    ) return;
    try {
      await jsm.streams.update(want.name, {
        max_age: want.max_age,
        num_replicas: want.num_replicas,
        duplicate_window: want.duplicate_window,
        subjects: [...subjects, ...missing],
      });
      this.log.info("stream updated", {
        stream: want.name,
        max_age_ms: (want.max_age ?? 0) / 1_000_000,
        replicas: want.num_replicas,
      });
    } catch (e) {
      this.log.warn("stream config not updated", {
        stream: want.name,
        error: (e as Error).message,
      });
    }
  }

  /** Status of every database. */
  status(): DatabaseReplicationStatus[] {
    return [...this.publishers.keys()].map((id) => ({
      database: id,
      publisher: this.publishers.get(id)!.status(),
      subscriber: this.subscribers.get(id)!.status(),
    }));
  }

  /** Problems for `/readyz` (empty = ready). */
  readiness(): string[] {
    const problems: string[] = [];
    if (!this.o.nats.isConnected()) problems.push("NATS not connected");
    for (const s of this.status()) {
      const f = s.subscriber.failing;
      if (f) {
        problems.push(
          `replication of ${s.database}: changeset seq ${f.seq} fails to apply (${f.error}); ` +
            `${f.attempts} attempts`,
        );
      } else if (!s.subscriber.running) {
        problems.push(`replication of ${s.database}: subscriber not running`);
      }
      if (s.publisher.lastError) {
        problems.push(
          `replication of ${s.database}: ${s.publisher.pending} changesets waiting for ` +
            `publication (${s.publisher.lastError})`,
        );
      }
    }
    return problems;
  }

  /** Consumers of the replication stream (JetStream consumer info). */
  async consumers(): Promise<ConsumerInfo[]> {
    const out: ConsumerInfo[] = [];
    for await (const ci of this.manager().consumers.list(this.o.config.replicationStream)) {
      out.push(ci);
    }
    return out;
  }

  /** One consumer's info; HaError not_found when unknown. */
  async consumer(name: string): Promise<ConsumerInfo> {
    try {
      return await this.manager().consumers.info(this.o.config.replicationStream, name);
    } catch (e) {
      throw notFoundOr(name, e);
    }
  }

  /** Deletes a consumer; HaError not_found when unknown. */
  async deleteConsumer(name: string): Promise<void> {
    try {
      await this.manager().consumers.delete(this.o.config.replicationStream, name);
    } catch (e) {
      throw notFoundOr(name, e);
    }
  }

  /** Skips the failing changeset of this node's consumer `name` (or up to `seq`). */
  async skip(name: string, seq?: number): Promise<number> {
    for (const s of this.subscribers.values()) {
      if (s.status().consumer === name) return await s.skip(seq);
    }
    throw new HaError("not_found", `replication "${name}" not found on this node`);
  }

  private manager(): JetStreamManager {
    if (!this.jsm) throw new HaError("unavailable", "replication not started");
    return this.jsm;
  }

  /** Flushes publishers (up to the replication timeout), then stops subscribers. Idempotent. */
  stop(): Promise<void> {
    this.stopping ??= (async () => {
      if (this.purgeTimer !== null) clearInterval(this.purgeTimer);
      await this.purging;
      const ms = Math.min(this.o.config.replicationTimeoutMs, 10_000);
      await Promise.allSettled([...this.publishers.values()].map((p) => p.stop(ms)));
      await Promise.allSettled([...this.subscribers.values()].map((s) => s.stop()));
    })();
    return this.stopping;
  }
}

function notFoundOr(name: string, e: unknown): HaError {
  const msg = e instanceof Error ? e.message : String(e);
  if (/not found/i.test(msg)) return new HaError("not_found", `replication "${name}" not found`);
  return new HaError("unavailable", `replication "${name}": ${msg}`);
}
