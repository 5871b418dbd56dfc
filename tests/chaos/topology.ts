/**
 * The cluster a chaos run builds and damages: 3–5 `ha` nodes (memory and file databases,
 * synchronous and asynchronous replication) on one of three NATS layouts, each node reaching
 * NATS only through its own {@link Proxy} so the suite can cut, stall or slow that link.
 *
 * - `embedded`: node1 runs the embedded nats-server; every node (node1 too) connects through
 *   its proxy to it. Killing node1 kills the server with it.
 * - `external`: one nats-server the suite runs.
 * - `cluster3`: three clustered nats-servers, streams with `--replicas 3`; a node has one proxy
 *   per server and lists all three.
 *
 * Nodes are started with the integration helpers (`Cluster`), restarted on the same ports and
 * directories, and every process is ended by pid.
 * @module
 */
import {
  Cluster,
  descendants,
  freePort,
  type HaNode,
  pidAlive,
  waitFor,
} from "../integration/helpers/cluster.ts";
import { NatsServers } from "./nats.ts";
import type { Prng } from "./prng.ts";
import { Proxy } from "./proxy.ts";

/** The NATS layout. */
export type Topology = "embedded" | "external" | "cluster3";

/** Every layout. */
export const TOPOLOGIES: readonly Topology[] = ["embedded", "external", "cluster3"];

/** What a node is. */
export interface NodeSpec {
  name: string;
  memory: boolean;
  async: boolean;
  /** Started with `--from-latest-snapshot` (and restarted with it, as its config would say). */
  fromSnapshot: boolean;
}

/** A node of the run, across its restarts. */
export interface ChaosNode {
  spec: NodeSpec;
  /** The running process, or null while it is down. */
  proc: HaNode | null;
  /** The last process (kept for ports, directory and logs while down). */
  last: HaNode | null;
  pgPort: number;
  proxies: Proxy[];
  /** SIGSTOPped now. */
  paused: boolean;
  /** The test-only clock offset it runs with (ms). */
  clockOffsetMs: number;
  starts: number;
}

/** Node specs for `count` nodes: memory and file, sync and async, all mixed, seeded. */
export function planNodes(count: number, rng: Prng): NodeSpec[] {
  // Both kinds of each property appear whenever count >= 2; the seed decides which node.
  const memory = rng.shuffle(Array.from({ length: count }, (_, i) => i % 2 === 0));
  const async = rng.shuffle(Array.from({ length: count }, (_, i) => i % 3 === 1));
  return memory.map((m, i) => ({
    name: `node${i + 1}`,
    memory: m,
    async: async[i],
    fromSnapshot: false,
  }));
}

/** The running cluster of one chaos run. */
export class ChaosCluster {
  readonly cluster = new Cluster();
  readonly nodes = new Map<string, ChaosNode>();
  servers: NatsServers | null = null;
  /** node1's embedded nats-server port (`embedded`). */
  readonly embeddedPort: number;

  constructor(readonly topology: Topology, readonly replicationTimeout = "2s") {
    this.embeddedPort = topology === "embedded" ? freePort() : 0;
  }

  /** Direct (unproxied) NATS addresses, for the checker. */
  natsPorts(): number[] {
    if (this.topology === "embedded") return [this.embeddedPort];
    return this.servers!.list.map((s) => s.port);
  }

  /** Starts the NATS side, then every node (node1 first when it hosts NATS). */
  async start(specs: NodeSpec[]): Promise<void> {
    if (this.topology !== "embedded") {
      this.servers = await NatsServers.start(
        this.cluster.root,
        this.topology === "cluster3" ? 3 : 1,
      );
    }
    const [first, ...rest] = specs;
    if (this.topology === "embedded") {
      await this.add(first);
      await Promise.all(rest.map((s) => this.add(s)));
    } else {
      await Promise.all(specs.map((s) => this.add(s)));
    }
  }

  /** Adds and starts a node. */
  async add(spec: NodeSpec): Promise<ChaosNode> {
    const upstreams = this.natsPorts().map((port) => ({ hostname: "127.0.0.1", port }));
    const node: ChaosNode = {
      spec,
      proc: null,
      last: null,
      pgPort: freePort(),
      proxies: upstreams.map((u) => new Proxy(u)),
      paused: false,
      clockOffsetMs: 0,
      starts: 0,
    };
    this.nodes.set(spec.name, node);
    await this.boot(node);
    return node;
  }

  /** Nodes whose process runs (paused ones included). */
  running(): ChaosNode[] {
    return [...this.nodes.values()].filter((n) => n.proc !== null);
  }

  /** Starts a node's process (again) and waits for `/healthz`. */
  async boot(node: ChaosNode): Promise<void> {
    const s = node.spec;
    const dir = `${this.cluster.root}/${s.name}`;
    const args = [
      "--pg-port",
      String(node.pgPort),
      "--replication-timeout",
      this.replicationTimeout,
      ...(s.async ? ["--async-replication"] : []),
      ...(this.topology === "cluster3" ? ["--replicas", "3"] : []),
      ...(this.topology === "embedded" && s.name === "node1"
        ? ["--nats-port", String(this.embeddedPort)]
        : []),
      ...(s.fromSnapshot ? ["--from-latest-snapshot"] : []),
    ];
    const env: Record<string, string> = node.clockOffsetMs !== 0
      ? { HA_TEST_CLOCK_OFFSET_MS: String(node.clockOffsetMs) }
      : {};
    const before = this.cluster.nodes.length;
    try {
      node.proc = await this.cluster.start(s.name, {
        memory: s.memory,
        dsns: s.memory ? [] : [`${dir}/ha.db`],
        natsUrl: node.proxies.map((p) => p.url).join(","),
        args,
        env,
        reuse: node.last ?? undefined,
      });
    } catch (e) {
      // A process that never became healthy must not hold the ports for the next try.
      const failed = this.cluster.nodes[before];
      if (failed) {
        node.last = failed;
        await this.cluster.kill(failed, "SIGKILL");
      }
      throw e;
    }
    node.last = node.proc;
    node.starts++;
  }

  /** SIGKILLs a node and its children (a machine crash). */
  async crash(node: ChaosNode): Promise<void> {
    if (!node.proc) return;
    if (node.paused) this.resume(node);
    await this.cluster.kill(node.proc, "SIGKILL");
    node.proc = null;
  }

  /** SIGTERM, SIGKILL (with children) after `graceMs`. Returns how long the stop took. */
  async shutdown(node: ChaosNode, graceMs = 15_000): Promise<number> {
    const p = node.proc;
    if (!p) return 0;
    if (node.paused) this.resume(node);
    const t = Date.now();
    const kids = descendants(p.pid);
    signal(p.pid, "SIGTERM");
    const timer = setTimeout(() => {
      signal(p.pid, "SIGKILL");
      for (const k of kids) signal(k, "SIGKILL");
    }, graceMs);
    await p.child.status;
    clearTimeout(timer);
    await waitFor(`${p.name} children gone`, () => kids.every((k) => !pidAlive(k)), 10_000)
      .catch(() => kids.forEach((k) => signal(k, "SIGKILL")));
    node.proc = null;
    return Date.now() - t;
  }

  pause(node: ChaosNode): void {
    if (!node.proc || node.paused) return;
    signal(node.proc.pid, "SIGSTOP");
    node.paused = true;
  }

  resume(node: ChaosNode): void {
    if (!node.proc || !node.paused) return;
    signal(node.proc.pid, "SIGCONT");
    node.paused = false;
  }

  /** SIGKILLs the embedded nats-server child of node1 (its supervisor restarts it). */
  killEmbeddedNats(): boolean {
    const host = this.nodes.get("node1")?.proc;
    if (!host) return false;
    const pid = descendants(host.pid).find((p) => {
      try {
        return Deno.readTextFileSync(`/proc/${p}/cmdline`).includes("nats-server");
      } catch {
        return false;
      }
    });
    if (pid === undefined) return false;
    signal(pid, "SIGKILL");
    return true;
  }

  /** Ends every process (by pid) and proxy; removes the cluster directory. */
  async stop(): Promise<void> {
    for (const n of this.nodes.values()) this.resume(n);
    await this.cluster.stop();
    for (const n of this.nodes.values()) for (const p of n.proxies) await p.close();
    await this.servers?.stop();
  }
}

function signal(pid: number, sig: Deno.Signal): void {
  try {
    Deno.kill(pid, sig);
  } catch { /* gone */ }
}
