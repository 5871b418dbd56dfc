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
import { Replication, replicationPlugin, replicationRoutes, subjectOf } from "./replication/mod.ts";
import { snapshotRoutes, Snapshotter, type StartRestore } from "./snapshot/mod.ts";
import { type InterceptorHost, loadInterceptor } from "./interceptor/mod.ts";

/** The NATS side of a node: the embedded server, the connection, replication. */
interface NatsParts {
  server: EmbeddedNatsServer | null;
  client: NatsClient | null;
  replication: Replication | null;
  snapshots: Snapshotter | null;
}

/** Stops what exists, in order: replication → connection → embedded server. */
async function stopNats(parts: NatsParts): Promise<void> {
  await parts.snapshots?.stop();
  await parts.replication?.stop();
  await parts.client?.drain().catch(() => parts.client?.close());
  await parts.server?.stop();
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
    const nats: NatsParts = { server: null, client: null, replication: null, snapshots: null };
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
    try {
      if (embedded) {
        nats.server = new EmbeddedNatsServer({
          bin: await findNatsServer({ flag: config.natsServerBin }),
          port: config.natsPort,
          storeDir: config.natsStoreDir,
          user: config.natsUser ?? undefined,
          pass: config.natsPass ?? undefined,
          configFile: config.natsConfig ?? undefined,
          serverName: config.name,
          logs: config.natsLogs,
          logger: log,
        });
        await nats.server.start();
      }
      if (replicate) {
        nats.client = await connectNats({
          servers: config.replicationUrl.length > 0
            ? [...config.replicationUrl]
            : [nats.server!.url!],
          user: config.natsUser ?? undefined,
          pass: config.natsPass ?? undefined,
          name: config.name,
          logger: log,
        });
        if (config.asyncReplication && config.memory) {
          await Deno.mkdir(config.asyncReplicationStoreDir, { recursive: true });
        }
      }
      let dsns = [...config.dsns];
      let restored: StartRestore | null = null;
      if (nats.client) {
        nats.snapshots = new Snapshotter({
          nc: nats.client.nc,
          stream: config.replicationStream,
          replicas: config.replicas,
          nodeName: config.name,
          logger: log,
          subjectOf: (id) => subjectOf(config.replicationStream, id),
          seqOf: (id) =>
            nats.replication?.status().find((s) => s.database === id)?.subscriber.appliedSeq ?? 0,
        });
        if (config.fromLatestSnapshot) {
          restored = await nats.snapshots.restoreAtStart(dsns, config.memory);
          dsns = restored.dsns;
        }
      } else if (config.fromLatestSnapshot || config.snapshotIntervalMs > 0) {
        log.warn("snapshots need NATS: --from-latest-snapshot and --snapshot-interval ignored");
      }
      engine = await openEngine({
        dsns,
        memory: config.memory,
        concurrentQueries: config.concurrentQueries,
        extensions: [...config.extensions],
        plugins: nats.client
          ? [replicationPlugin(config, incarnation, nats.client.nc.info?.max_payload ?? 0)]
          : [],
        logger: log,
      }).finally(() => restored?.cleanup());
      if (nats.client) {
        nats.replication = new Replication({
          config,
          engine,
          nats: nats.client,
          incarnation,
          pluginIndex: 0,
          logger: log,
          interceptor,
          restored: new Set(restored?.sequences.keys() ?? []),
        });
        await nats.replication.start();
        nats.snapshots?.startInterval(engine, config.snapshotIntervalMs);
      }
      const replication = nats.replication;
      const snapshots = nats.snapshots;
      http = new HttpServer({
        engine,
        logger: log,
        port: config.port,
        token: config.token,
        maxBodyBytes: config.maxBodyBytes,
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
          user: config.pgUser,
          password: config.pgPass,
          cert: config.pgCert,
          key: config.pgKey,
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
