/**
 * Replication of every database of a node through one JetStream stream: the stream, one
 * {@link Publisher} and one {@link Subscriber} per database, status for `/replications` and
 * `/readyz`.
 *
 * A node serves before NATS is reachable: {@link Replication.start} only loads the outboxes and
 * takes commits; a supervised task waits for the connection, then creates the stream, starts
 * publishing (outbox first) and applying, retrying until it succeeds or the node stops.
 *
 * @module
 */
import type { InterceptorHost } from "../interceptor/mod.ts";
import {
  type ConsumerInfo,
  jetstream,
  type JetStreamClient,
  type JetStreamManager,
  jetstreamManager,
  StorageType,
  type StreamConfig,
} from "@nats-io/jetstream";
import type { Config } from "../config/mod.ts";
import type { Engine, PluginSpec } from "../engine/mod.ts";
import { HaError } from "../errors/mod.ts";
import type { Logger } from "../log/mod.ts";
import { isNotFound, isStreamNameInUse, JetStreamPublisher, type NatsClient } from "../nats/mod.ts";
import { Backoff } from "../retry/mod.ts";
import { consumerOf, subjectOf } from "./naming.ts";
import { Publisher, type PublisherStatus } from "./publisher.ts";
import { Subscriber, type SubscriberStatus } from "./subscriber.ts";
import { tombstoneCutoff } from "./versions.ts";
import { CONFLICT_COUNTS } from "./conflicts.ts";
import {
  type CommitPayload,
  REPLICATION_PLUGIN,
  replicationClient,
  type ReplicationPluginOptions,
} from "./plugin_api.ts";

/** NATS's default `max_payload`, assumed until the server is reached. */
export const DEFAULT_MAX_PAYLOAD = 1024 * 1024;

/** Retry of a failed replication start (stream, consumers): first delay, doubling. */
const START_RETRY_INITIAL_MS = 500;
/** The longest wait between replication start attempts. */
const START_RETRY_MAX_MS = 10_000;
/** Stream creation races with other nodes': retries after the first attempt, and their wait. */
const STREAM_CREATE_RETRIES = 20;
const STREAM_CREATE_RETRY_MS = 500;
/** The stream's de-duplication window (`Nats-Msg-Id`), unless `max_age` is shorter. */
const DUPLICATE_WINDOW_NS = 2 * 60 * 1_000_000_000;
/** Tombstones are purged every `--replication-max-age`, within these bounds. */
const PURGE_INTERVAL_MIN_MS = 1_000;
const PURGE_INTERVAL_MAX_MS = 3_600_000;
/**
 * Request timeout of the delete that precedes a consumer's recreation, ms. It is answered by the
 * consumer's own server once the removal is applied, in milliseconds, and never when that server
 * is down (nats-server 2.9): creating then goes on anyway (`subscriber.ts`). Not shorter: a
 * create that reaches the metadata leader before it applied the removal reuses the old
 * consumer's placement (the server that is down) and times out.
 */
const CONSUMER_DELETE_TIMEOUT_MS = 2_000;
/** At stop, the longest wait for JetStream to confirm queued changesets. */
const STOP_PUBLISH_WAIT_MAX_MS = 10_000;

/**
 * The writer plugin every database needs for replication. `maxPayload` is the NATS server's
 * `max_payload` (`nc.info.max_payload`, {@link DEFAULT_MAX_PAYLOAD} until it is known): larger
 * transactions are refused before COMMIT. The outbox of a memory database is a file in
 * `--async-replication-store-dir` in both modes: a synchronous write answered with 503
 * "committed locally, queued" must survive a crash too.
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
    outboxDir: config.memory ? config.asyncReplicationStoreDir : null,
    maxPayload,
    clusterKey: config.clusterKey,
    maxClockSkewMs: config.maxClockSkewMs,
    logLevel: config.logLevel,
    clockOffsetMs: config.testClockOffsetMs ?? 0,
  };
  return {
    name: REPLICATION_PLUGIN,
    url: new URL("./writer_plugin.ts", import.meta.url).href,
    options,
  };
}

/** Options of {@link Replication}. */
export interface ReplicationOptions {
  config: Config;
  engine: Engine;
  /** The connection, once made (it retries forever; rejects only on refused credentials). */
  nats: Promise<NatsClient>;
  /** The `max_payload` given to {@link replicationPlugin}. */
  maxPayload: number;
  /** The process incarnation given to {@link replicationPlugin}. */
  incarnation: string;
  logger: Logger;
  /** The loaded `--interceptor` (its hooks run on remote changesets), or null. */
  interceptor?: InterceptorHost | null;
  /** Metrics sink: the lag of each applied remote changeset (see `SubscriberOptions`). */
  observeLag?: (db: string, origin: string, seconds: number) => void;
}

/** Status of one database's replication. */
export interface DatabaseReplicationStatus {
  database: string;
  publisher: PublisherStatus;
  /** Null until NATS was reached. */
  subscriber: SubscriberStatus | null;
}

/** Replication of a node's databases. */
export class Replication {
  private client: NatsClient | null = null;
  private jsm: JetStreamManager | null = null;
  private publish: JetStreamPublisher | null = null;
  /** Why replication is not running yet (null once it runs). */
  private waiting: string | null = "NATS not connected yet";
  private attaching: Promise<void> | null = null;
  /** Resolved by {@link stop}: ends waiting for NATS and retry pauses. */
  private readonly halted = Promise.withResolvers<"halted">();
  private readonly publishers = new Map<string, Publisher>();
  private readonly subscribers = new Map<string, Subscriber>();
  private stopping: Promise<void> | null = null;
  private purgeTimer: ReturnType<typeof setInterval> | null = null;
  private purging: Promise<void> | null = null;
  private readonly log: Logger;

  constructor(private readonly o: ReplicationOptions) {
    this.log = o.logger.child({ component: "replication" });
  }

  /**
   * Loads every database's outbox and takes its commits (the node may serve from now on), then
   * connects in the background: see the module doc.
   */
  async start(): Promise<void> {
    const { config, engine } = this.o;
    for (const db of engine.databases()) {
      const pub = new Publisher({
        subject: subjectOf(config.replicationStream, db.id),
        db,
        timeoutMs: config.replicationTimeoutMs,
        self: { node: config.name, incarnation: this.o.incarnation },
        logger: this.log.child({ db: db.id }),
        clusterKey: config.clusterKey,
      });
      await pub.load();
      this.publishers.set(db.id, pub);
      db.onCommit((payloads) => this.onCommit(pub, payloads));
    }
    this.attaching = this.attach();
    const maxAge = config.replicationMaxAgeMs;
    if (maxAge > 0) {
      const timer = setInterval(() => {
        this.purging ??= this.purgeTombstones().finally(() => this.purging = null);
      }, Math.max(PURGE_INTERVAL_MIN_MS, Math.min(maxAge, PURGE_INTERVAL_MAX_MS)));
      Deno.unrefTimer(timer);
      this.purgeTimer = timer;
    }
  }

  /**
   * Waits for NATS, then starts publishing and applying; retries until it works or stops. A
   * connection refused for good (credentials) is reported, not retried.
   */
  private async attach(): Promise<void> {
    let nats: NatsClient | "halted";
    try {
      nats = await Promise.race([this.o.nats, this.halted.promise]);
    } catch (e) {
      if (this.stopping) return;
      this.waiting = `replication stopped: ${(e as Error).message}`;
      this.log.error("cannot connect to NATS; nothing is replicated", {
        error: (e as Error).message,
      });
      return;
    }
    if (nats === "halted") return;
    this.client = nats;
    const backoff = new Backoff({ initialMs: START_RETRY_INITIAL_MS, maxMs: START_RETRY_MAX_MS });
    for (let attempt = 1; !this.stopping; attempt++) {
      try {
        await this.attachOnce(nats);
        return;
      } catch (e) {
        if (this.stopping) return;
        this.waiting = `replication not started: ${(e as Error).message}`;
        this.log.error("replication cannot start yet; retrying", {
          error: (e as Error).message,
          attempt,
          retryInMs: backoff.peek(),
        });
        let timer: ReturnType<typeof setTimeout> | undefined;
        await Promise.race([
          new Promise((r) => timer = setTimeout(r, backoff.next())),
          this.halted.promise,
        ]);
        clearTimeout(timer);
      }
    }
  }

  private async attachOnce(nats: NatsClient): Promise<void> {
    const { config, engine } = this.o;
    const maxPayload = nats.nc.info?.max_payload ?? 0;
    if (maxPayload > 0 && maxPayload !== this.o.maxPayload) {
      for (const db of engine.databases()) {
        await replicationClient(db).call("setMaxPayload", maxPayload);
      }
    }
    const js = jetstream(nats.nc);
    const jsm = await jetstreamManager(nats.nc);
    await this.ensureStream(jsm);
    const jsmDelete = await jetstreamManager(nats.nc, {
      timeout: CONSUMER_DELETE_TIMEOUT_MS,
      checkAPI: false,
    });
    if (this.stopping) return;
    this.jsm = jsm;
    // One ack subscription per connection, kept across start retries.
    const publish = config.readOnly ? null : this.publish ??= new JetStreamPublisher(nats.nc);
    for (const db of engine.databases()) {
      // A read-only follower publishes nothing (an outbox left by an earlier run stays there).
      if (publish) this.publishers.get(db.id)!.attach(publish);
      await this.startSubscriber(js, jsm, jsmDelete, db.id);
    }
    this.waiting = null;
    this.log.info("replication started", {
      stream: config.replicationStream,
      mode: config.asyncReplication ? "async" : "sync",
      databases: engine.ids(),
    });
  }

  private async startSubscriber(
    js: JetStreamClient,
    jsm: JetStreamManager,
    jsmDelete: JetStreamManager,
    id: string,
  ): Promise<void> {
    if (this.subscribers.has(id) || this.stopping) return;
    const { config } = this.o;
    const sub = new Subscriber({
      js,
      jsm,
      jsmDelete,
      stream: config.replicationStream,
      subject: subjectOf(config.replicationStream, id),
      consumer: consumerOf(id, config.name),
      db: this.o.engine.get(id),
      policy: config.replicationPolicy,
      self: { node: config.name, incarnation: this.o.incarnation },
      logger: this.log.child({ db: id }),
      host: this.o.interceptor ?? null,
      rules: { clusterKey: config.clusterKey, maxClockSkewMs: config.maxClockSkewMs },
      onReconnect: (l) => this.client!.onReconnect(l),
      observeLag: this.o.observeLag ? (o, s) => this.o.observeLag!(id, o, s) : undefined,
    });
    await sub.start();
    this.subscribers.set(id, sub);
    // Stopped meanwhile: stop() may have passed the subscribers already.
    if (this.stopping) await sub.stop();
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
        const n = await replicationClient(db).call("purgeTombstones", cutoff);
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
    const dup = DUPLICATE_WINDOW_NS;
    const cfg: Partial<StreamConfig> & { name: string } = {
      name: c.replicationStream,
      subjects: [`${c.replicationStream}.>`],
      storage: StorageType.File,
      max_age: maxAgeNs,
      num_replicas: c.replicas,
      duplicate_window: maxAgeNs > 0 ? Math.min(dup, maxAgeNs) : dup,
    };
    for (let attempt = 0;; attempt++) {
      if (this.stopping) return;
      try {
        try {
          const info = await jsm.streams.info(c.replicationStream);
          await this.updateStream(jsm, info.config, cfg);
          return;
        } catch (e) {
          if (!isNotFound(e)) throw e;
        }
        await jsm.streams.add(cfg);
        this.log.info("stream created", { stream: cfg.name, subjects: cfg.subjects });
        return;
      } catch (e) {
        if (isStreamNameInUse(e)) return;
        if (attempt >= STREAM_CREATE_RETRIES) throw e;
        await new Promise((r) => setTimeout(r, STREAM_CREATE_RETRY_MS));
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
      subscriber: this.subscribers.get(id)?.status() ?? null,
    }));
  }

  /** Per database, conflicts per table (see `conflicts.ts`), read without the writer. */
  async conflicts(): Promise<Record<string, Record<string, number>>> {
    const out: Record<string, Record<string, number>> = {};
    for (const id of this.publishers.keys()) {
      const [r] = await this.o.engine.get(id).execute([{ sql: CONFLICT_COUNTS }], {
        readOnly: true,
      });
      out[id] = Object.fromEntries(r.rows.map(([t, n]) => [String(t), Number(n)]));
    }
    return out;
  }

  /** Problems for `/readyz` (empty = ready). */
  readiness(): string[] {
    const problems: string[] = [];
    if (this.client && !this.client.isConnected()) problems.push("NATS not connected");
    if (this.waiting) problems.push(this.waiting);
    for (const s of this.status()) {
      if (!s.subscriber) continue;
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

  /**
   * Whether NATS is connected now: null before it was first reached, false while the connection
   * is down (nothing can be asked of JetStream then; callers answer from local state).
   */
  natsConnected(): boolean | null {
    return this.client ? this.client.isConnected() : null;
  }

  /** Consumers of the replication stream (JetStream consumer info). */
  async consumers(): Promise<ConsumerInfo[]> {
    const out: ConsumerInfo[] = [];
    for await (const ci of this.manager().consumers.list(this.o.config.replicationStream)) {
      out.push(ci);
    }
    return out;
  }

  /**
   * One consumer: its JetStream info (null while this node's own is being recreated) and, for
   * this node's subscribers, their status. HaError not_found when unknown.
   */
  async consumer(
    name: string,
  ): Promise<{ info: ConsumerInfo | null; status: SubscriberStatus | null }> {
    const own = this.own(name);
    try {
      const info = await this.manager().consumers.info(this.o.config.replicationStream, name);
      return { info, status: own?.status() ?? null };
    } catch (e) {
      if (own && isNotFound(e)) {
        return { info: null, status: own.status() };
      }
      throw notFoundOr(name, e);
    }
  }

  /**
   * Deletes a consumer; HaError not_found when unknown. This node's own subscriber is not left
   * deaf: it resumes from the progress recorded in SQLite with a new consumer (logged).
   */
  async deleteConsumer(name: string): Promise<void> {
    const own = this.own(name);
    if (own) return await own.reset("DELETE /replications by the operator");
    try {
      await this.manager().consumers.delete(this.o.config.replicationStream, name);
    } catch (e) {
      throw notFoundOr(name, e);
    }
  }

  /** Skips the failing changeset of this node's consumer `name` (or up to `seq`). */
  async skip(name: string, seq?: number): Promise<number> {
    const own = this.own(name);
    if (own) return await own.skip(seq);
    throw new HaError("not_found", `replication "${name}" not found on this node`);
  }

  private own(name: string): Subscriber | undefined {
    return [...this.subscribers.values()].find((s) => s.status().consumer === name);
  }

  private manager(): JetStreamManager {
    if (!this.jsm) {
      throw new HaError("unavailable", this.waiting ?? "replication not started");
    }
    return this.jsm;
  }

  /**
   * Flushes publishers (up to the replication timeout, 10 s at most, not at all when NATS is
   * down), then stops subscribers. Idempotent.
   */
  stop(): Promise<void> {
    this.stopping ??= (async () => {
      this.halted.resolve("halted");
      if (this.purgeTimer !== null) clearInterval(this.purgeTimer);
      await this.purging;
      // With NATS down there is nothing to wait for: the outbox keeps what is unpublished.
      const up = this.client?.isConnected() ?? false;
      const ms = up ? Math.min(this.o.config.replicationTimeoutMs, STOP_PUBLISH_WAIT_MAX_MS) : 0;
      await Promise.allSettled([...this.publishers.values()].map((p) => p.stop(ms)));
      await Promise.allSettled([...this.subscribers.values()].map((s) => s.stop()));
      await this.attaching;
    })();
    return this.stopping;
  }
}

function notFoundOr(name: string, e: unknown): HaError {
  const msg = e instanceof Error ? e.message : String(e);
  if (isNotFound(e)) return new HaError("not_found", `replication "${name}" not found`);
  return new HaError("unavailable", `replication "${name}": ${msg}`);
}
