/**
 * What the snapshot tests run on: one real nats-server, one client, a temp directory, in-process
 * engines and snapshotters, all stopped by `close`.
 */
import { type Engine, openEngine } from "../../../src/engine/mod.ts";
import { createLogger, type Logger } from "../../../src/log/mod.ts";
import { connectNats, EmbeddedNatsServer, type NatsClient } from "../../../src/nats/mod.ts";
import { buildApp } from "../../../src/http/mod.ts";
import { Snapshotter, type SnapshotterOptions } from "../../../src/snapshot/mod.ts";
import { freePort } from "./cluster.ts";

export const STREAM = "ha_replication";
export const BUCKET = `${STREAM}_SNAPSHOTS`;

/** One nats-server, one client, temp dirs, engines and snapshotters; `close` stops all. */
export class SnapshotFixture {
  server!: EmbeddedNatsServer;
  client!: NatsClient;
  dir = "";
  /** Every log line of the fixture's engines and snapshotters. */
  lines: string[] = [];
  engines: Engine[] = [];
  snapshotters: Snapshotter[] = [];
  /** Options of every `snapshotter()`. */
  protected defaults: Partial<SnapshotterOptions> = {};

  /** Starts the server and the client in a new temp directory. */
  protected async open(prefix: string, defaults: Partial<SnapshotterOptions>): Promise<void> {
    this.defaults = defaults;
    this.dir = await Deno.makeTempDir({ prefix });
    this.server = new EmbeddedNatsServer({
      bin: "/usr/sbin/nats-server",
      host: "127.0.0.1",
      port: freePort(),
      storeDir: `${this.dir}/nats`,
      serverName: "snap",
      logger: createLogger("error", () => {}),
    });
    await this.server.start();
    this.client = await connectNats({
      servers: [this.server.url!],
      name: "snap-test",
      logger: createLogger("error", () => {}),
      reconnectTimeWaitMs: 100,
    });
  }

  static async start(): Promise<SnapshotFixture> {
    const f = new SnapshotFixture();
    await f.open("ha-snapshot-test-", { idleTimeoutMs: 3_000, timeoutMs: 3_000 });
    return f;
  }

  get logger(): Logger {
    return createLogger("debug", (l) => this.lines.push(l));
  }

  snapshotter(o: Partial<SnapshotterOptions> = {}): Snapshotter {
    const s = new Snapshotter({
      nc: this.client.nc,
      stream: STREAM,
      replicas: 1,
      nodeName: "node1",
      logger: this.logger,
      ...this.defaults,
      ...o,
    });
    this.snapshotters.push(s);
    return s;
  }

  /** The HTTP app over `engine` with `snapshots` (no token, 1 MiB bodies, always ready). */
  app(engine: Engine, snapshots: Snapshotter): ReturnType<typeof buildApp> {
    return buildApp({
      engine,
      logger: this.logger,
      token: null,
      maxBodyBytes: 1 << 20,
      readiness: () => [],
      snapshots,
    });
  }

  async engine(dsns: string[], memory = false): Promise<Engine> {
    // These engines stand in for replication, which keeps _ha_* tables in the database.
    const e = await openEngine({
      dsns,
      memory,
      concurrentQueries: 4,
      logger: this.logger,
      allowInternalWrites: true,
    });
    this.engines.push(e);
    return e;
  }

  async close(): Promise<void> {
    for (const s of this.snapshotters) await s.stop().catch(() => {});
    for (const e of this.engines) await e.close().catch(() => {});
    await this.client?.close().catch(() => {});
    await this.server?.stop().catch(() => {});
    await Deno.remove(this.dir, { recursive: true }).catch(() => {});
  }
}
