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
import {
  BUILD_HINT,
  type Engine,
  EXTENSION_URL,
  findInterruptExtension,
  openEngine,
  type Params,
} from "./engine/mod.ts";
import type { HttpServer } from "./http/mod.ts";
import type { PgServer } from "./pgwire/mod.ts";
import type { Logger } from "./log/mod.ts";
import { HaError } from "./errors/mod.ts";
import { connectNats, EmbeddedNatsServer, findNatsServer, type NatsClient } from "./nats/mod.ts";
import {
  DEFAULT_MAX_PAYLOAD,
  Replication,
  replicationPlugin,
  subjectOf,
} from "./replication/mod.ts";
import type { Snapshotter, StartRestore } from "./snapshot/mod.ts";
import type { InterceptorHost } from "./interceptor/mod.ts";
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

/**
 * The modules a node needs only once NATS is reached: imported while the embedded NATS server (a
 * separate process) starts, so that loading them overlaps its start-up. The snapshot modules
 * (with the NATS object store client) are not among them: they load when snapshots are first
 * used (a node's idle memory, issue 13).
 */
async function laterModules() {
  const [http, pg, ids, metrics] = await Promise.all([
    import("./http/mod.ts"),
    import("./pgwire/mod.ts"),
    import("./ids/mod.ts"),
    import("./metrics/mod.ts"),
  ]);
  return {
    HttpServer: http.HttpServer,
    PgServer: pg.PgServer,
    claimSlot: ids.claimSlot,
    claimSlotUntil: ids.claimSlotUntil,
    idClient: ids.idClient,
    idPlugin: ids.idPlugin,
    HaMetrics: metrics.HaMetrics,
  };
}

/**
 * The statement-interrupt extension (`ha_interrupt.so`), or null when it is missing and
 * `--statement-timeout 0` says the node may run without stoppable statements.
 */
async function interruptExtension(config: Config, log: Logger): Promise<string | null> {
  const path = await findInterruptExtension();
  if (path !== null) return path;
  const where = decodeURIComponent(EXTENSION_URL.pathname);
  if (config.statementTimeoutMs > 0) {
    throw new HaError(
      "config",
      `the SQLite extension that stops statements is missing (${where}): ${BUILD_HINT}; or ` +
        "start with --statement-timeout 0 to run without statement timeouts, cancel and " +
        "disconnect handling",
    );
  }
  log.warn(
    "ha_interrupt.so missing: running statements cannot be stopped (no PG cancel, HTTP " +
      "disconnects do not stop them, shutdown waits for them)",
    { path: where, hint: BUILD_HINT },
  );
  return null;
}

/** A running node. */
export class Node {
  private stopping: Promise<void> | null = null;

  private constructor(
    readonly config: Config,
    readonly engine: Engine,
    /** The HTTP API, or null when the library runs the node without one (port 0). */
    readonly http: HttpServer | null,
    /** The PostgreSQL wire server, or null with `--pg-port 0`. */
    readonly pg: PgServer | null,
    /** Replication of this node's databases, or null when standalone. */
    readonly replication: Replication | null,
    /** The loaded `--interceptor`, or null. */
    readonly interceptor: InterceptorHost | null,
    private readonly logger: Logger,
    private readonly parts: Parts,
    /**
     * Settles once the node has its id slot (or needs none): with an external NATS not reached
     * at start it is claimed later, and until then an INSERT that needs an id is refused.
     */
    readonly slotClaimed: Promise<void>,
    /** What keeps the node from being ready, as `/readyz` reports it (empty = ready). */
    readonly readiness: () => string[],
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
    const later = laterModules();
    later.catch(() => {}); // awaited below
    // Checked first: a node that cannot stop statements must not start half-way.
    const interrupt = await interruptExtension(config, log);
    const parts = new Parts(log);
    const nats = new Late<NatsClient>("NATS not reached yet");
    const snapshots = new Late<Snapshotter>("snapshots unavailable: NATS not reached yet");
    let engine: Engine | null = null;
    let replication: Replication | null = null;
    let slotClaimed: Promise<void> = Promise.resolve();
    let slotPending = false;
    // Load the interceptor first: a broken resolver stops the node before anything opens.
    // Its modules load only with --interceptor (a node's idle memory, issue 13).
    const interceptor = config.interceptor === null ? null : await (
      await import("./interceptor/load.ts")
    ).loadInterceptor(
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
          cluster: config.natsClusterPort === 0 ? undefined : {
            name: config.natsClusterName,
            port: config.natsClusterPort,
            routes: config.natsRoutes,
          },
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
        // The embedded server is running (when it is the one we use), and a restore at start
        // needs NATS: wait for both. An external --replication-url may be down: serve meanwhile.
        const ownServer = embedded && config.replicationUrl.length === 0;
        if (ownServer || config.fromLatestSnapshot) nats.set(await connecting);
      }
      const { HttpServer, PgServer, claimSlot, claimSlotUntil, idClient, idPlugin, HaMetrics } =
        await later;
      const metrics = new HaMetrics();
      const snapshotter = async (client: NatsClient) =>
        new (await import("./snapshot/mod.ts")).Snapshotter({
          nc: client.nc,
          stream: config.replicationStream,
          replicas: config.replicas,
          nodeName: config.name,
          readOnly: config.readOnly,
          logger: log,
          subjectOf: (id) => subjectOf(config.replicationStream, id),
          seqOf: (id) =>
            replication?.status().find((s) => s.database === id)?.subscriber?.appliedSeq ?? 0,
        });
      // The snapshotter is made (its modules loaded) on first use: the restore at start, the
      // interval, or the first snapshot request; a node without them never loads it (issue 13).
      const snapshotsNow = async (): Promise<Snapshotter> => {
        const client = snapshots.current() ? null : nats.current();
        if (client) {
          const made = await snapshotter(client);
          if (!snapshots.current()) snapshots.set(made);
        }
        return snapshots.get();
      };
      let dsns = [...config.dsns];
      let restored: StartRestore | null = null;
      const client = nats.current();
      if (client) {
        // Nothing of it runs before the "snapshots" part starts but this restore, awaited here.
        if (config.fromLatestSnapshot) {
          restored = await (await snapshotsNow()).restoreAtStart(dsns, config.memory);
          dsns = restored.dsns;
        }
      } else if (!connecting && (config.fromLatestSnapshot || config.snapshotIntervalMs > 0)) {
        log.warn("snapshots need NATS: --from-latest-snapshot and --snapshot-interval ignored");
      }
      const maxPayload = client?.nc.info?.max_payload ?? DEFAULT_MAX_PAYLOAD;
      // A read-only follower inserts nothing: it claims no id slot.
      const wantsSlot = connecting !== null && !config.readOnly;
      let slot: number | null = null;
      let claimLater = wantsSlot && !client;
      if (wantsSlot && client) {
        try {
          slot = await claimSlot(config, client.nc);
        } catch (e) {
          // JetStream not answering yet (a restarted cluster member waiting for a metadata
          // leader): serve meanwhile, as when NATS is not reached at start.
          if (!(e instanceof HaError) || e.code !== "unavailable") throw e;
          log.warn("no id slot yet; claiming it in the background", { error: e.message });
          claimLater = true;
        }
      }
      const ids = wantsSlot ? idPlugin(config, slot) : null;
      engine = await openEngine({
        dsns,
        memory: config.memory,
        concurrentQueries: config.concurrentQueries,
        extensions: [...config.extensions],
        attachDir: config.attachDir,
        readOnly: config.readOnly,
        interrupt,
        statementTimeoutMs: config.statementTimeoutMs,
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
          observeLag: metrics.observeLag,
        });
        await parts.start("replication", replication);
        let stopped = false;
        await parts.start("snapshots", {
          start: () => {
            nats.whenReady().then(async () => {
              if (stopped || config.snapshotIntervalMs <= 0) return;
              const made = await snapshotsNow();
              if (!stopped) made.startInterval(opened, config.snapshotIntervalMs);
            }).catch((e) => log.warn("cannot start snapshots", { error: String(e) }));
            return Promise.resolve();
          },
          stop: async () => {
            stopped = true;
            await snapshots.current()?.stop();
          },
        });
        if (ids && claimLater) {
          // Claimed once NATS is first reached and JetStream answers, however long that takes.
          slotPending = true;
          const abort = new AbortController();
          slotClaimed = nats.whenReady().then(async (client) => {
            const slot = await claimSlotUntil(
              config,
              client.nc,
              abort.signal,
              (e, ms) =>
                log.warn("cannot claim an id slot yet; retrying", {
                  error: e.message,
                  retryInMs: ms,
                }),
            );
            if (slot === undefined) return; // stopping
            // null: --id-scheme sqlite, no id plugin (`ids` is null then)
            if (slot !== null) {
              for (const db of opened.databases()) await idClient(db).call("setSlot", slot);
            }
            slotPending = false;
          }).catch((e) => {
            if (!abort.signal.aborted) log.error("cannot claim an id slot", { error: String(e) });
          });
          await parts.start("id slot claim", { stop: () => Promise.resolve(abort.abort()) });
        }
      }
      const readiness = () => [
        ...(replication?.readiness() ?? []),
        ...(slotPending ? ["no id slot yet (JetStream not reached since start)"] : []),
      ];
      const http = config.port === 0 ? null : new HttpServer({
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
        readiness,
        replication,
        snapshots: connecting
          ? {
            take: async (db) => (await snapshotsNow()).take(db),
            open: async (id, signal) => (await snapshotsNow()).open(id, signal),
            latest: async (id) => (await snapshotsNow()).latest(id),
          }
          : null,
        metrics,
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
        onQuery: metrics.pgQuery,
      });
      const running = replication;
      metrics.watch({
        replication: running ? () => running.status() : undefined,
        conflicts: running ? () => running.conflicts() : undefined,
        natsConnected: running ? () => running.natsConnected() : undefined,
        pgConnections: pg ? () => pg.connectionCount : undefined,
      });
      await parts.start("metrics", metrics);
      // A new front end is one more entry here. HTTP last: once /healthz answers, every front end
      // accepts connections.
      await parts.start("front ends", together([pg, http].filter((p) => p !== null)));
      log.info("node started", {
        databases: opened.ids(),
        http: http?.port ?? 0,
        pg: pg?.port ?? 0,
        readOnly: config.readOnly,
      });
      return new Node(
        config,
        opened,
        http,
        pg,
        replication,
        interceptor,
        log,
        parts,
        slotClaimed,
        readiness,
      );
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
      // Like PostgreSQL's default (fast) shutdown: running client statements are stopped and
      // roll back, so a runaway one cannot hold the stop.
      this.engine.stopClients();
      await this.parts.stop();
      this.logger.info("node stopped");
    })();
    return this.stopping;
  }
}
