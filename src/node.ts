/**
 * The composition root: builds one node from a {@link Config}, starts its
 * parts in order and stops them in reverse. No business logic lives here.
 *
 * @example
 * ```ts
 * const node = await Node.start(config, createLogger("info"));
 * await node.stop();
 * ```
 */
import type { Config } from "./config/mod.ts";
import { type Engine, openEngine, type Params } from "./engine/mod.ts";
import { HttpServer } from "./http/mod.ts";
import { PgServer } from "./pgwire/mod.ts";
import type { Logger } from "./log/mod.ts";
import { connectNats, EmbeddedNatsServer, findNatsServer, type NatsClient } from "./nats/mod.ts";
import {
  DEFAULT_MAX_PAYLOAD,
  Replication,
  replicationPlugin,
  subjectOf,
} from "./replication/mod.ts";
import { Snapshotter, type StartRestore } from "./snapshot/mod.ts";
import { type InterceptorHost, loadInterceptor } from "./interceptor/mod.ts";
import { claimSlot, idClient, idPlugin } from "./ids/mod.ts";
import { Late, type Part, Parts, together } from "./lifecycle/mod.ts";

/**
 * The connection to NATS as a part: on stop, ends waiting for a first connection that never
 * came, then drains the connection, or closes it when it is down (draining would wait for NATS).
 */
function natsConnection(abort: AbortController, client: Late<NatsClient>): Part {
  return {
    async stop() {
      abort.abort();
      const c = client.current();
      if (c?.isConnected()) await c.drain().catch(() => c.close());
      else await c?.close();
    },
  };
}

/**
 * How ha verifies its NATS server: `--nats-tls-ca`, else the embedded server's own
 * (self-signed) `--nats-tls-cert`, else the system CAs (undefined).
 */
function natsTlsOptions(config: Config): { caFile: string } | undefined {
  const ca = config.natsTlsCa ?? (config.natsTlsKey ? config.natsTlsCert : null);
  return ca ? { caFile: ca } : undefined;
}

/** A running node. */
export class Node {
  private stopping: Promise<void> | null = null;

  private constructor(
    readonly config: Config,
    readonly engine: Engine,
    readonly http: HttpServer,
    /** The PostgreSQL wire server, or null with `--pg-port 0`. */
    readonly pg: PgServer | null,
    /** Replication of this node's databases, or null when standalone. */
    readonly replication: Replication | null,
    /** The loaded `--interceptor`, or null. */
    readonly interceptor: InterceptorHost | null,
    private readonly logger: Logger,
    private readonly parts: Parts,
  ) {}

  /**
   * Opens the databases and starts every part in order: interceptor, embedded NATS server,
   * NATS connection, engine, replication, snapshots, front ends (HTTP, PG). Stops the started
   * parts on failure.
   */
  static async start(config: Config, logger: Logger): Promise<Node> {
    const log = logger.child({ node: config.name });
    if (config.natsPort === 0 && !config.natsConfig && config.replicationUrl.length === 0) {
      log.warn(
        "replication disabled: --nats-port 0 and no --replication-url; changes stay on this node",
      );
    }
    const embedded = config.natsPort !== 0 || config.natsConfig !== null;
    const replicate = embedded || config.replicationUrl.length > 0;
    const incarnation = crypto.randomUUID();
    const parts = new Parts(log);
    const nats = new Late<NatsClient>("NATS not reached yet");
    const snapshots = new Late<Snapshotter>("snapshots unavailable: NATS not reached yet");
    let engine: Engine | null = null;
    let replication: Replication | null = null;
    // Load the interceptor first: a broken resolver stops the node before anything opens.
    const interceptor = config.interceptor === null ? null : await loadInterceptor(
      config.interceptor,
      {
        timeoutMs: config.interceptorTimeoutMs,
        memoryMb: Math.floor(config.interceptorMemoryBytes / 2 ** 20),
        logger: log.child({ component: "interceptor" }),
        node: config.name,
        query: async (db, sql, params) => {
          if (!engine) throw new Error("the databases are not open yet");
          const [r] = await engine.get(db).execute([{ sql, params: params as Params }], {
            readOnly: true,
          });
          return { columns: r.columns.map((c) => c.name), rows: r.rows };
        },
      },
    );
    const natsTls = natsTlsOptions(config);
    try {
      if (interceptor) await parts.start("interceptor", interceptor);
      let server: EmbeddedNatsServer | null = null;
      if (embedded) {
        server = new EmbeddedNatsServer({
          bin: await findNatsServer({ flag: config.natsServerBin }),
          port: config.natsPort,
          host: config.natsAddr,
          storeDir: config.natsStoreDir,
          user: config.natsUser ?? undefined,
          pass: config.natsPass ?? undefined,
          configFile: config.natsConfig ?? undefined,
          tls: natsTls,
          tlsCert: config.natsTlsCert && config.natsTlsKey
            ? { certFile: config.natsTlsCert, keyFile: config.natsTlsKey }
            : undefined,
          serverName: config.name,
          logs: config.natsLogs,
          logger: log,
        });
        await parts.start("nats server", server);
      }
      // Connecting retries until NATS is reached; the node serves meanwhile (not ready).
      let connecting: Promise<NatsClient> | null = null;
      if (replicate) {
        const abort = new AbortController();
        connecting = connectNats({
          servers: config.replicationUrl.length > 0 ? [...config.replicationUrl] : [server!.url!],
          user: config.natsUser ?? undefined,
          pass: config.natsPass ?? undefined,
          tls: natsTls,
          name: config.name,
          logger: log,
          signal: abort.signal,
        });
        connecting.then((c) => nats.set(c), () => {}); // a failure is reported by replication
        await parts.start("nats connection", natsConnection(abort, nats));
        if (config.memory) await Deno.mkdir(config.asyncReplicationStoreDir, { recursive: true });
        // The embedded server is running, and a restore at start needs NATS: wait for both.
        if (embedded || config.fromLatestSnapshot) nats.set(await connecting);
      }
      const snapshotter = (client: NatsClient) =>
        new Snapshotter({
          nc: client.nc,
          stream: config.replicationStream,
          replicas: config.replicas,
          nodeName: config.name,
          logger: log,
          subjectOf: (id) => subjectOf(config.replicationStream, id),
          seqOf: (id) =>
            replication?.status().find((s) => s.database === id)?.subscriber?.appliedSeq ?? 0,
        });
      let dsns = [...config.dsns];
      let restored: StartRestore | null = null;
      const client = nats.current();
      if (client) {
        // Nothing of it runs before the "snapshots" part starts but this restore, awaited here.
        snapshots.set(snapshotter(client));
        if (config.fromLatestSnapshot) {
          restored = await snapshots.get().restoreAtStart(dsns, config.memory);
          dsns = restored.dsns;
        }
      } else if (!connecting && (config.fromLatestSnapshot || config.snapshotIntervalMs > 0)) {
        log.warn("snapshots need NATS: --from-latest-snapshot and --snapshot-interval ignored");
      }
      const maxPayload = client?.nc.info?.max_payload ?? DEFAULT_MAX_PAYLOAD;
      const ids = connecting
        ? idPlugin(config, client ? await claimSlot(config, client.nc) : null)
        : null;
      engine = await openEngine({
        dsns,
        memory: config.memory,
        concurrentQueries: config.concurrentQueries,
        extensions: [...config.extensions],
        attachDir: config.attachDir,
        plugins: connecting
          ? [replicationPlugin(config, incarnation, maxPayload), ...(ids ? [ids] : [])]
          : [],
        logger: log,
      }).finally(() => restored?.cleanup());
      const opened = engine;
      await parts.start("engine", { stop: () => opened.close() });
      if (connecting) {
        replication = new Replication({
          config,
          engine,
          nats: connecting,
          maxPayload,
          incarnation,
          logger: log,
          interceptor,
        });
        await parts.start("replication", replication);
        let stopped = false;
        await parts.start("snapshots", {
          start: () => {
            nats.whenReady().then((client) => {
              if (stopped) return;
              if (!snapshots.current()) snapshots.set(snapshotter(client));
              snapshots.get().startInterval(opened, config.snapshotIntervalMs);
            });
            return Promise.resolve();
          },
          stop: async () => {
            stopped = true;
            await snapshots.current()?.stop();
          },
        });
        if (ids && !client) {
          // Claimed once NATS is first reached.
          nats.whenReady().then(async (client) => {
            const slot = await claimSlot(config, client.nc);
            if (slot === null) return; // --id-scheme sqlite: no id plugin (`ids` is null then)
            for (const db of opened.databases()) await idClient(db).call("setSlot", slot);
          }).catch((e) => log.error("cannot claim an id slot", { error: String(e) }));
        }
      }
      const http = new HttpServer({
        engine: opened,
        logger: log,
        port: config.port,
        hostname: config.httpAddr,
        token: config.token,
        maxBodyBytes: config.maxBodyBytes,
        maxConnections: config.maxConnections,
        headerTimeoutMs: config.httpHeaderTimeoutMs,
        bodyTimeoutMs: config.httpBodyTimeoutMs,
        idleTimeoutMs: config.httpIdleTimeoutMs,
        readiness: () => replication?.readiness() ?? [],
        replication,
        snapshots: connecting
          ? { take: (db) => snapshots.get().take(db), open: (id) => snapshots.get().open(id) }
          : null,
      });
      const pg = config.pgPort === 0 ? null : new PgServer({
        engine: opened,
        port: config.pgPort,
        hostname: config.pgAddr,
        user: config.pgUser,
        password: config.pgPass,
        cert: config.pgCert,
        key: config.pgKey,
        requireTls: config.pgRequireTls,
        authTimeoutMs: config.pgAuthTimeoutMs,
        maxConnections: config.maxConnections,
        logger: log,
      });
      // A new front end is one more entry here.
      await parts.start("front ends", together([http, ...(pg ? [pg] : [])]));
      log.info("node started", { databases: opened.ids(), http: http.port, pg: pg?.port ?? 0 });
      return new Node(config, opened, http, pg, replication, interceptor, log, parts);
    } catch (e) {
      await parts.stop();
      throw e;
    }
  }

  /**
   * Stops the parts in reverse: the front ends stop accepting and finish in-flight requests,
   * snapshots and replication stop (flushing the outbox while NATS is up), the databases close,
   * the NATS connection drains, the embedded NATS server stops. Idempotent.
   */
  stop(): Promise<void> {
    this.stopping ??= (async () => {
      this.logger.info("node stopping");
      await this.parts.stop();
      this.logger.info("node stopped");
    })();
    return this.stopping;
  }
}
