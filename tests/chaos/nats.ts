/**
 * External nats-server processes for the chaos suite: one server, or three clustered servers
 * (JetStream replicas 3). Each server keeps its store directory across kill and restart, like a
 * machine that reboots; clients never learn the servers' real addresses (`no_advertise`), so a
 * node's traffic always goes through the suite's proxies.
 *
 * @example
 * ```ts
 * const servers = await NatsServers.start(dir, 3);
 * await servers.kill(0);
 * await servers.restart(0);
 * await servers.stop();
 * ```
 * @module
 */
import { findNatsServer } from "../../src/nats/mod.ts";
import { freePort, logTo, pidAlive, waitFor } from "../integration/helpers/cluster.ts";

/** One nats-server the suite runs. */
export interface NatsServer {
  name: string;
  port: number;
  configFile: string;
  logFile: string;
  child: Deno.ChildProcess | null;
}

/** A set of nats-servers (1 standalone, or a cluster). */
export class NatsServers {
  private constructor(readonly list: NatsServer[], private readonly bin: string) {}

  /** Writes configs and starts `count` servers under `dir`; waits until each accepts TCP. */
  static async start(dir: string, count: number): Promise<NatsServers> {
    const bin = await findNatsServer({ flag: null });
    const ports = Array.from({ length: count }, () => ({ client: freePort(), route: freePort() }));
    const list: NatsServer[] = [];
    for (const [i, p] of ports.entries()) {
      const name = `nats${i + 1}`;
      const store = `${dir}/${name}`;
      await Deno.mkdir(store, { recursive: true });
      const routes = ports.filter((o) => o !== p).map((o) => `nats://127.0.0.1:${o.route}`);
      const cluster = count > 1
        ? `cluster {\n  name: chaos\n  listen: 127.0.0.1:${p.route}\n  no_advertise: true\n` +
          `  routes: [ ${routes.join(", ")} ]\n}\n`
        : "";
      const configFile = `${store}/server.conf`;
      await Deno.writeTextFile(
        configFile,
        `server_name: ${name}\nlisten: 127.0.0.1:${p.client}\nmax_payload: 8MB\n` +
          `jetstream {\n  store_dir: "${store}/js"\n}\n${cluster}`,
      );
      list.push({ name, port: p.client, configFile, logFile: `${store}/server.log`, child: null });
    }
    const servers = new NatsServers(list, bin);
    await Promise.all(list.map((_, i) => servers.restart(i)));
    return servers;
  }

  /** (Re)starts server `i` on its port and store; waits until it accepts connections. */
  async restart(i: number): Promise<void> {
    const s = this.list[i];
    const log = await Deno.open(s.logFile, { write: true, create: true, append: true });
    const child = new Deno.Command(this.bin, {
      args: ["-c", s.configFile],
      stdout: "piped",
      stderr: "piped",
      stdin: "null",
    }).spawn();
    logTo(log, child);
    s.child = child;
    await waitFor(`${s.name} listening`, async () => {
      if (!pidAlive(child.pid)) throw new Error(`${s.name} exited; see ${s.logFile}`);
      const c = await Deno.connect({ hostname: "127.0.0.1", port: s.port }).catch(() => null);
      c?.close();
      return c !== null;
    }, 30_000);
  }

  /** SIGKILLs server `i` and waits for its exit. */
  async kill(i: number): Promise<void> {
    const child = this.list[i].child;
    if (!child) return;
    try {
      child.kill("SIGKILL");
    } catch { /* gone */ }
    await child.status;
    this.list[i].child = null;
  }

  /** Stops every server (SIGKILL: the store survives, as it would a crash). */
  async stop(): Promise<void> {
    await Promise.all(this.list.map((_, i) => this.kill(i)));
  }
}
