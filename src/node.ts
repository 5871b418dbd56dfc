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
  replicationRoutes,
  subjectOf,
} from "./replication/mod.ts";
import { HaError } from "./errors/mod.ts";
import { snapshotRoutes, Snapshotter, type StartRestore } from "./snapshot/mod.ts";
import { type InterceptorHost, loadInterceptor } from "./interceptor/mod.ts";
import { claimSlot, idPlugin } from "./ids/mod.ts";

/** The NATS side of a node: the embedded server, the connection, replication. */
interface NatsParts {
  server: EmbeddedNatsServer | null;
  client: NatsClient | null;
  replication: Replication | null;
  snapshots: Snapshotter | null;
  /** Ends waiting for a first connection that never came. */
  abort: AbortController;
}

/**
 * Stops what exists, in order: connecting → replication → connection → embedded server. A
 * connection that is down is closed, not drained (draining would wait for NATS).
 */
async function stopNats(parts: NatsParts): Promise<void> {
  parts.abort.abort();
  await parts.snapshots?.stop();
  await parts.replication?.stop();
  if (parts.client?.isConnected()) await parts.client.drain().catch(() => parts.client?.close());
  else await parts.client?.close();
  await parts.server?.stop();
}

/**
 * How ha verifies its NATS server: `--nats-tls-ca`, else the embedded server's own
 * (self-signed) `--nats-tls-cert`, else the system CAs (undefined).
 */
function natsTlsOptions(config: Config): { caFile: string } | undefined {
  const ca = config.natsTlsCa ?? (config.natsTlsKey ? config.natsTlsCert : null);
  return ca ? { caFile: ca } : undefined;
}

/**
 * `value()` once it exists; until then every property access throws `HaError("unavailable")`
 * with `why` (the HTTP routes of a part created when NATS is first reached).
 */
function lateBound<T extends object>(value: () => T | null, why: string): T {
  return new Proxy({} as T, {
    get(_, key) {
      const v = value();
      if (v === null) throw new HaError("unavailable", why);
      const member = Reflect.get(v, key);
      return typeof member === "function" ? member.bind(v) : member;
    },
  });
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
    private readonly logger: Logger,
    private readonly nats: NatsParts,
    /** The loaded `--interceptor`, or null. */
    readonly interceptor: InterceptorHost | null,
  ) {}

  /** Replication of this node's databases, or null when standalone. */
  get replication(): Replication | null {
    return this.nats.replication;
  }

  /** Opens the databases and starts every front end. Cleans up on failure. */
  static async start(config: Config, logger: Logger): Promise<Node> {
    const log = logger.child({ node: config.name });
    if (config.natsPort === 0 && !config.natsConfig && config.replicationUrl.length === 0) {
      log.warn(
        "replication disabled: --nats-port 0 and no --replication-url; changes stay on this node",
      );
    }
    const nats: NatsParts = {
      server: null,
      client: null,
      replication: null,
      snapshots: null,
      abort: new AbortController(),
    };
    const embedded = config.natsPort !== 0 || config.natsConfig !== null;
    const replicate = embedded || config.replicationUrl.length > 0;
    const incarnation = crypto.randomUUID();
    let engine: Engine | null = null;
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
    let http: HttpServer | null = null;
    let pg: PgServer | null = null;
    const natsTls = natsTlsOptions(config);
    try {
      if (embedded) {
        nats.server = new EmbeddedNatsServer({
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
          cluster: config.natsClusterPort === 0 ? undefined : {
            name: config.natsClusterName,
            port: config.natsClusterPort,
            routes: config.natsRoutes,
          },
          serverName: config.name,
          logs: config.natsLogs,
          logger: log,
        });
        await nats.server.start();
      }
      // Connecting retries until NATS is reached; the node serves meanwhile (not ready).
      let connecting: Promise<NatsClient> | null = null;
      if (replicate) {
        connecting = connectNats({
          servers: config.replicationUrl.length > 0
            ? [...config.replicationUrl]
            : [nats.server!.url!],
          user: config.natsUser ?? undefined,
          pass: config.natsPass ?? undefined,
          tls: natsTls,
          name: config.name,
          logger: log,
          signal: nats.abort.signal,
        });
        connecting.catch(() => {}); // reported by replication
        if (config.memory) await Deno.mkdir(config.asyncReplicationStoreDir, { recursive: true });
        // The embedded server is running, and a restore at start needs NATS: wait for both.
        if (embedded || config.fromLatestSnapshot) nats.client = await connecting;
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
            nats.replication?.status().find((s) => s.database === id)?.subscriber?.appliedSeq ??
              0,
        });
      let dsns = [...config.dsns];
      let restored: StartRestore | null = null;
      if (nats.client) {
        nats.snapshots = snapshotter(nats.client);
        if (config.fromLatestSnapshot) {
          restored = await nats.snapshots.restoreAtStart(dsns, config.memory);
          dsns = restored.dsns;
        }
      } else if (!connecting && (config.fromLatestSnapshot || config.snapshotIntervalMs > 0)) {
        log.warn("snapshots need NATS: --from-latest-snapshot and --snapshot-interval ignored");
      }
      const maxPayload = nats.client?.nc.info?.max_payload ?? DEFAULT_MAX_PAYLOAD;
      const ids = connecting
        ? idPlugin(config, nats.client ? await claimSlot(config, nats.client.nc) : null)
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
      if (connecting) {
        nats.replication = new Replication({
          config,
          engine,
          nats: connecting,
          maxPayload,
          incarnation,
          pluginIndex: 0,
          logger: log,
          interceptor,
        });
        await nats.replication.start();
        const opened = engine;
        const startSnapshots = (client: NatsClient) => {
          if (nats.abort.signal.aborted) return;
          nats.client = client;
          nats.snapshots ??= snapshotter(client);
          nats.snapshots.startInterval(opened, config.snapshotIntervalMs);
        };
        if (nats.client) startSnapshots(nats.client);
        else connecting.then(startSnapshots, () => {});
        if (ids && !nats.client) {
          // Plugin 1: the id plugin after replication's. Claimed once NATS is first reached.
          connecting.then(async (client) => {
            const slot = await claimSlot(config, client.nc);
            for (const db of opened.databases()) await db.invoke(1, "setSlot", slot);
          }).catch((e) => log.error("cannot claim an id slot", { error: String(e) }));
        }
      }
      const replication = nats.replication;
      const snapshots = connecting
        ? lateBound(() => nats.snapshots, "snapshots unavailable: NATS not reached yet")
        : null;
      http = new HttpServer({
        engine,
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
        extensions: [
          ...(replication ? [replicationRoutes(replication)] : []),
          ...(snapshots ? [snapshotRoutes(snapshots)] : []),
        ],
      });
      await http.start();
      if (config.pgPort !== 0) {
        pg = new PgServer({
          engine,
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
        await pg.start();
      }
    } catch (e) {
      await pg?.stop();
      await http?.stop();
      await stopNats(nats).catch(() => {});
      await interceptor?.stop();
      await engine?.close();
      throw e;
    }
    log.info("node started", { databases: engine.ids(), http: http!.port, pg: pg?.port ?? 0 });
    return new Node(config, engine, http!, pg, log, nats, interceptor);
  }

  /** Stops accepting, finishes in-flight work, closes databases. Idempotent. */
  stop(): Promise<void> {
    this.stopping ??= (async () => {
      this.logger.info("node stopping");
      await Promise.all([this.http.stop(), this.pg?.stop()]);
      await stopNats(this.nats);
      await this.interceptor?.stop();
      await this.engine.close();
      this.logger.info("node stopped");
    })();
    return this.stopping;
  }
}
