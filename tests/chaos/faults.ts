/**
 * The seeded fault schedule and the code that injects it. Faults come one at a time (each is
 * healed before the next), drawn from a shuffled deck of every kind so a run of a few faults
 * already meets each kind:
 *
 * - `kill`: SIGKILL an ha node (and its children: node1's embedded nats-server with it), restart
 *   it after a while on the same ports and files; a memory node rebuilds from the stream;
 * - `stop`: SIGSTOP an ha node, SIGCONT later;
 * - `nats`: SIGKILL a nats-server (external: restarted by the suite; embedded: by node1);
 * - `partition`: the node's proxies drop (refuse) or pause (black-hole) its NATS traffic;
 * - `delay`: the node's proxies delay every chunk;
 * - `clock`: restart the node with its clock shifted (test-only `HA_TEST_CLOCK_OFFSET_MS`), and
 *   restart it again on the true clock later;
 * - `snapshot`: `POST /snapshot` on a node, then a new node joins with `--from-latest-snapshot`.
 * @module
 */
import { FAULT_KINDS, type FaultKind, type FaultRecord, type History } from "./history.ts";
import type { Prng } from "./prng.ts";
import type { ChaosCluster, ChaosNode, Topology } from "./topology.ts";

/** A fault to inject. */
export interface PlannedFault {
  kind: FaultKind;
  /** A node name, or a nats-server name (`nats1`…) for `nats` outside `embedded`. */
  target: string;
  /** Earliest start, ms after the load started. */
  at: number;
  durationMs: number;
  detail: Record<string, unknown>;
}

/** What the plan depends on. */
export interface PlanInput {
  durationMs: number;
  nodes: string[];
  topology: Topology;
  /** Kinds to draw from (default every kind). */
  kinds?: readonly FaultKind[];
  /** Most nodes the cluster may reach through snapshot bootstraps. */
  maxNodes?: number;
}

/** The fault schedule for a seed: deterministic. */
export function planFaults(rng: Prng, p: PlanInput): PlannedFault[] {
  const kinds = p.kinds ?? FAULT_KINDS;
  const out: PlannedFault[] = [];
  const nodes = [...p.nodes];
  const maxNodes = p.maxNodes ?? 6;
  // One bootstrap per started 3 minutes of load.
  let snapshots = Math.max(1, Math.floor(p.durationMs / 180_000));
  // Short runs get shorter faults and gaps, so that one of each kind fits.
  const scale = Math.min(1, Math.max(0.4, p.durationMs / 120_000));
  let deck: FaultKind[] = [];
  let t = 2_000;
  while (t < p.durationMs - 6_000) {
    if (deck.length === 0) deck = rng.shuffle(kinds);
    const kind = deck.shift()!;
    if (kind === "snapshot" && (snapshots === 0 || nodes.length >= maxNodes)) continue;
    const f = plan(rng, kind, nodes, p.topology, t);
    f.durationMs = Math.round(f.durationMs * scale);
    if (kind === "snapshot") {
      snapshots--;
      nodes.push(f.detail.newNode as string);
    }
    out.push(f);
    t += f.durationMs + Math.round(rng.int(1_000, 3_000) * scale);
  }
  return out;
}

function plan(rng: Prng, kind: FaultKind, nodes: string[], topo: Topology, at: number) {
  const node = rng.pick(nodes);
  const f: PlannedFault = { kind, target: node, at, durationMs: 0, detail: {} };
  switch (kind) {
    case "kill":
      f.durationMs = rng.int(500, 4_000);
      break;
    case "stop":
      f.durationMs = rng.int(1_000, 6_000);
      break;
    case "nats":
      f.target = topo === "embedded"
        ? "node1"
        : topo === "cluster3"
        ? rng.pick(["nats1", "nats2", "nats3"])
        : "nats1";
      f.durationMs = rng.int(1_000, 5_000);
      break;
    case "partition":
      f.durationMs = rng.int(2_000, 8_000);
      f.detail = { mode: rng.pick(["drop", "pause"]) };
      break;
    case "delay":
      f.durationMs = rng.int(2_000, 6_000);
      f.detail = { delayMs: rng.int(20, 200) };
      break;
    case "clock":
      f.durationMs = rng.int(3_000, 8_000);
      f.detail = { offsetMs: (rng.chance(0.5) ? -1 : 1) * rng.int(2_000, 30_000) };
      break;
    case "snapshot":
      f.detail = {
        newNode: `node${nodes.length + 1}`,
        memory: rng.chance(0.5),
        async: rng.chance(0.3),
      };
      break;
  }
  return f;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Runs the plan against the cluster; faults that would start after `until` are skipped. */
export async function runFaults(
  plan: PlannedFault[],
  cluster: ChaosCluster,
  history: History,
  loadStart: number,
  until: number,
): Promise<void> {
  for (const f of plan) {
    const rec: FaultRecord = { ...f, applied: null, healed: null };
    history.faults.push(rec);
    const wait = loadStart + f.at - history.now();
    if (wait > 0) await sleep(wait);
    if (history.now() + f.durationMs > until - 2_000) continue;
    rec.applied = history.now();
    try {
      await inject(f, cluster, history, rec);
    } catch (e) {
      rec.error = (e as Error).message.slice(0, 2_000);
    }
    rec.healed = history.now();
  }
}

async function inject(f: PlannedFault, c: ChaosCluster, h: History, rec: FaultRecord) {
  const node = c.nodes.get(f.target);
  switch (f.kind) {
    case "kill":
      if (!node) return;
      await c.crash(node);
      await sleep(f.durationMs);
      await restart(c, node, rec);
      return;
    case "stop":
      if (!node) return;
      c.pause(node);
      await sleep(f.durationMs);
      c.resume(node);
      return;
    case "nats":
      if (c.topology === "embedded") {
        rec.detail.killed = c.killEmbeddedNats();
        await sleep(f.durationMs);
      } else {
        const i = Number(f.target.replace("nats", "")) - 1;
        await c.servers!.kill(i);
        await sleep(f.durationMs);
        await c.servers!.restart(i);
      }
      return;
    case "partition":
    case "delay":
      if (!node) return;
      for (const p of node.proxies) {
        p.set(
          f.kind === "delay" ? "delay" : f.detail.mode as "drop" | "pause",
          Number(f.detail.delayMs ?? 0),
        );
      }
      await sleep(f.durationMs);
      for (const p of node.proxies) p.set("pass");
      return;
    case "clock":
      if (!node) return;
      rec.detail.stopMs = await c.shutdown(node);
      node.clockOffsetMs = Number(f.detail.offsetMs);
      await restart(c, node, rec);
      await sleep(f.durationMs);
      rec.detail.stopMs2 = await c.shutdown(node);
      node.clockOffsetMs = 0;
      await restart(c, node, rec);
      return;
    case "snapshot": {
      const src = c.running().find((n) => n.spec.name === f.target && !n.paused) ??
        c.running().find((n) => !n.paused);
      if (src) {
        const r = await fetch(`${src.proc!.url}/snapshot`, { method: "POST" })
          .then(async (r) => `${r.status} ${await r.text()}`)
          .catch((e) => `error ${(e as Error).message}`);
        rec.detail.source = src.spec.name;
        rec.detail.snapshot = r.slice(0, 300);
      }
      rec.detail.joinedAt = h.now();
      await c.add({
        name: f.detail.newNode as string,
        memory: Boolean(f.detail.memory),
        async: Boolean(f.detail.async),
        fromSnapshot: true,
      });
      return;
    }
  }
}

/** Restarts a node, three tries; the errors go to the fault record. */
export async function restart(
  c: ChaosCluster,
  node: ChaosNode,
  rec?: FaultRecord,
): Promise<boolean> {
  for (let i = 0; i < 3; i++) {
    try {
      await c.boot(node);
      return true;
    } catch (e) {
      const msg = `restart of ${node.spec.name} failed: ${(e as Error).message.slice(0, 500)}`;
      if (rec) rec.error = rec.error ? `${rec.error}\n${msg}` : msg;
    }
  }
  return false;
}
