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
import { type Engine, openEngine } from "./engine/mod.ts";
import { HttpServer } from "./http/mod.ts";
import type { Logger } from "./log/mod.ts";

/** A running node. */
export class Node {
  private stopping: Promise<void> | null = null;

  private constructor(
    readonly config: Config,
    readonly engine: Engine,
    readonly http: HttpServer,
    private readonly logger: Logger,
  ) {}

  /** Opens the databases and starts every front end. Cleans up on failure. */
  static async start(config: Config, logger: Logger): Promise<Node> {
    const log = logger.child({ node: config.name });
    if (config.natsPort === 0 && config.replicationUrl.length === 0) {
      log.warn(
        "replication disabled: --nats-port 0 and no --replication-url; changes stay on this node",
      );
    }
    const engine = await openEngine({
      dsns: [...config.dsns],
      memory: config.memory,
      concurrentQueries: config.concurrentQueries,
      extensions: [...config.extensions],
      logger: log,
    });
    const http = new HttpServer({
      engine,
      logger: log,
      port: config.port,
      token: config.token,
      maxBodyBytes: config.maxBodyBytes,
      readiness: () => [],
    });
    try {
      await http.start();
    } catch (e) {
      await engine.close();
      throw e;
    }
    log.info("node started", { databases: engine.ids(), http: http.port });
    return new Node(config, engine, http, log);
  }

  /** Stops accepting, finishes in-flight work, closes databases. Idempotent. */
  stop(): Promise<void> {
    this.stopping ??= (async () => {
      this.logger.info("node stopping");
      await this.http.stop();
      await this.engine.close();
      this.logger.info("node stopped");
    })();
    return this.stopping;
  }
}
