/**
 * One chaos run: build the cluster, create the schema, run the load and the seeded fault
 * schedule together, heal everything, wait for the nodes to agree (or a limit), check the
 * invariants ({@link checkRun}), write the history and print a summary.
 *
 * @example
 * ```ts
 * const report = await runChaos({ seed: 7, durationMs: 40_000, nodes: 3, topology: "external" });
 * report.violations; // [] when nothing was lost
 * ```
 * @module
 */
import { pidAlive, waitFor } from "../integration/helpers/cluster.ts";
import {
  type CheckResult,
  checkRun,
  checksumsOf,
  dumpNode,
  type NodeDump,
  readHotFromStream,
} from "./checker.ts";
import { planFaults, type PlannedFault, restart, runFaults } from "./faults.ts";
import { FAULT_KINDS, type FaultKind, History } from "./history.ts";
import { runLoad, SCHEMA } from "./load.ts";
import { Prng } from "./prng.ts";
import { ChaosCluster, type NodeSpec, planNodes, type Topology } from "./topology.ts";

/** Options of {@link runChaos}. */
export interface ChaosOptions {
  seed: number;
  /** Length of the load (faults run during it). */
  durationMs: number;
  /** Nodes at start, 3..5. */
  nodes: number;
  topology: Topology;
  httpClients?: number;
  pgClients?: number;
  maxOps?: number;
  /** How long to wait for the nodes to agree after the load (default 120 s). */
  convergeLimitMs?: number;
  /** History file (default `<tmp>/ha-chaos/chaos-<seed>-<time>.json`). */
  out?: string;
  kinds?: readonly FaultKind[];
  /** Progress lines (default: stderr). */
  log?: (line: string) => void;
}

/** The figures of a run. */
export interface ChaosReport extends CheckResult {
  seed: number;
  topology: Topology;
  nodes: NodeSpec[];
  ops: number;
  acked: number;
  unknown: number;
  failed: number;
  faultsByKind: Record<string, number>;
  faultErrors: string[];
  /** Memory nodes that restarted (rebuilt from the stream) at least once. */
  memoryRebuilds: number;
  /** ms from the end of load and faults until all nodes agreed; null if they never did. */
  convergeMs: number | null;
  /** Probe writes: ms from acknowledgement to presence on every node. */
  probeP50: number | null;
  probeP99: number | null;
  probes: number;
  /** Probe writes acknowledged that never reached every node. */
  probesUnconverged: number;
  /** Every violation, one line each; empty = the run passed. */
  violations: string[];
  historyFile: string;
}

const percentile = (xs: number[], p: number) => {
  if (xs.length === 0) return null;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(p * s.length))];
};

/** Runs the suite once; never throws for a violation (see `violations`). */
export async function runChaos(o: ChaosOptions): Promise<ChaosReport> {
  const log = o.log ?? ((s: string) => console.error(s));
  const rng = new Prng(o.seed);
  const specs = planNodes(o.nodes, rng);
  const plan = planFaults(rng, {
    durationMs: o.durationMs,
    nodes: specs.map((s) => s.name),
    topology: o.topology,
    kinds: o.kinds,
  });
  const history = new History();
  const cc = new ChaosCluster(o.topology);
  const violations: string[] = [];
  log(
    `chaos: seed ${o.seed}, ${o.topology}, ${
      specs.map(describe).join(" ")
    }, ${plan.length} faults planned`,
  );
  try {
    await cc.start(specs);
    await createSchema(cc);
    log(`chaos: cluster up in ${history.now()} ms, schema everywhere; load for ${o.durationMs} ms`);

    const loadStart = history.now();
    const until = loadStart + o.durationMs;
    const [probes] = await Promise.all([
      runLoad({
        cluster: cc,
        history,
        seed: o.seed,
        until,
        httpClients: o.httpClients ?? 6,
        pgClients: o.pgClients ?? 2,
        maxOps: o.maxOps ?? 1_000_000,
      }),
      runFaults(plan, cc, history, loadStart, until),
    ]);
    await healAll(cc, violations);
    const healedAt = history.now();
    log(`chaos: load and faults done (${history.ops.length} ops); waiting for convergence`);

    const convergedAt = await converge(cc, o.convergeLimitMs ?? 120_000, history);
    const convergeMs = convergedAt === null ? null : convergedAt - healedAt;
    if (convergedAt === null) {
      violations.push(`nodes did not agree within ${o.convergeLimitMs ?? 120_000} ms`);
    }
    const latencies = [...probes.latencies];
    if (convergedAt !== null) latencies.push(...probes.pending.map((acked) => convergedAt - acked));

    const dumps: NodeDump[] = [];
    for (const n of cc.nodes.values()) {
      if (!n.proc) {
        violations.push(`${n.spec.name} is down at the end (could not restart)`);
        continue;
      }
      try {
        dumps.push(await dumpNode(n.proc));
      } catch (e) {
        // A node that stopped answering after it was healthy: say so, with what it logged last.
        const how = pidAlive(n.proc.pid) ? "does not answer" : "exited on its own";
        violations.push(
          `${n.spec.name} ${how} at the end (${(e as Error).message}); its log ends with:\n` +
            n.proc.log().slice(-3000),
        );
      }
    }
    let hot = new Map<string, string | null>();
    try {
      hot = await readHotFromStream(cc.natsPorts());
    } catch (e) {
      violations.push(`could not read the stream: ${(e as Error).message}`);
    }
    const check = checkRun(history.ops, dumps, hot);
    for (
      const k of ["lost", "divergent", "phantom", "lww", "doubleApplied", "deadLettered"] as const
    ) {
      if (check[k] > 0) violations.push(`${k} = ${check[k]}`);
    }

    const faultsByKind: Record<string, number> = Object.fromEntries(FAULT_KINDS.map((k) => [k, 0]));
    for (const f of history.faults) if (f.applied !== null) faultsByKind[f.kind]++;
    const faultErrors = history.faults.filter((f) => f.error).map((f) =>
      `${f.kind} ${f.target}: ${f.error}`
    );
    const report: ChaosReport = {
      ...check,
      seed: o.seed,
      topology: o.topology,
      nodes: [...cc.nodes.values()].map((n) => n.spec),
      ops: history.ops.length,
      acked: history.ops.filter((x) => x.outcome === "ok").length,
      unknown: history.ops.filter((x) => x.outcome === "unknown").length,
      failed: history.ops.filter((x) => x.outcome === "fail").length,
      faultsByKind,
      faultErrors,
      memoryRebuilds: [...cc.nodes.values()].filter((n) => n.spec.memory && n.starts > 1).length,
      convergeMs,
      probeP50: percentile(latencies, 0.5),
      probeP99: percentile(latencies, 0.99),
      probes: latencies.length,
      probesUnconverged: convergedAt === null ? probes.pending.length : 0,
      violations,
      historyFile: "",
    };
    report.historyFile = await writeHistory(o, report, plan, history, cc);
    log(summary(report));
    return report;
  } finally {
    await cc.stop();
  }
}

function describe(s: NodeSpec): string {
  return `${s.name}(${s.memory ? "memory" : "file"},${s.async ? "async" : "sync"})`;
}

/** Creates the schema on node1 and waits until every node has it. */
async function createSchema(cc: ChaosCluster): Promise<void> {
  const n1 = cc.nodes.get("node1")!.proc!;
  await waitFor("schema created", async () => {
    try {
      await n1.batch(SCHEMA.map((sql) => ({ sql })));
      return true;
    } catch (e) {
      return /committed locally/.test((e as Error).message);
    }
  }, 60_000);
  const procs = cc.running().map((n) => n.proc!);
  await cc.cluster.waitConverged(procs, ["u", "hot", "ledger", "totals"], 90_000);
}

/** Ends every fault: proxies pass, paused nodes continue, down servers and nodes restart. */
async function healAll(cc: ChaosCluster, violations: string[]): Promise<void> {
  for (const n of cc.nodes.values()) {
    for (const p of n.proxies) p.set("pass");
    cc.resume(n);
  }
  if (cc.servers) {
    for (const [i, s] of cc.servers.list.entries()) if (!s.child) await cc.servers.restart(i);
  }
  for (const n of cc.nodes.values()) {
    if (n.proc) continue;
    if (!await restart(cc, n)) {
      violations.push(`${n.spec.name} could not be restarted after the faults`);
    }
  }
}

/**
 * Polls every node's table checksums until all agree on two polls in a row; returns the
 * run-relative time of agreement, or null after `limitMs`.
 */
async function converge(cc: ChaosCluster, limitMs: number, h: History): Promise<number | null> {
  const end = Date.now() + limitMs;
  let previous = "";
  let since = 0;
  while (Date.now() < end) {
    try {
      const images: string[] = [];
      for (const n of cc.nodes.values()) {
        if (!n.proc) throw new Error(`${n.spec.name} down`);
        images.push(JSON.stringify(Object.entries(await checksumsOf(n.proc))));
      }
      const same = images.every((x) => x === images[0]);
      if (same && images[0] === previous) return since;
      if (same && images[0] !== previous) since = h.now();
      previous = same ? images[0] : "";
    } catch { /* a node not answering yet */ }
    await new Promise((r) => setTimeout(r, 2_000));
  }
  return null;
}

async function writeHistory(
  o: ChaosOptions,
  report: ChaosReport,
  plan: PlannedFault[],
  history: History,
  cc: ChaosCluster,
): Promise<string> {
  const file = o.out ??
    `${Deno.env.get("TMPDIR") ?? "/tmp"}/ha-chaos/chaos-${o.seed}-${Date.now()}.json`;
  await Deno.mkdir(file.replace(/\/[^/]*$/, "") || ".", { recursive: true });
  const replay =
    `deno task chaos --seed ${o.seed} --duration ${Math.round(o.durationMs / 1000)}s ` +
    `--nodes ${o.nodes} --topology ${o.topology}`;
  await Deno.writeTextFile(
    file,
    JSON.stringify({
      replay,
      options: { ...o, log: undefined },
      report: { ...report, historyFile: file },
      plan,
      faults: history.faults,
      ops: history.ops,
    }),
  );
  // CHAOS_KEEP_LOGS=1 keeps them for a passing run too (to look for recoveries, e.g. stalls).
  if (report.violations.length > 0 || Deno.env.get("CHAOS_KEEP_LOGS") === "1") {
    // Keep the node logs next to the history: the cluster directory is removed.
    const logs = file.replace(/\.json$/, "-logs");
    await Deno.mkdir(logs, { recursive: true });
    for (const [i, p] of cc.cluster.nodes.entries()) {
      await Deno.copyFile(p.logPath, `${logs}/${p.name}-${i}.log`).catch(() => {});
    }
    for (const s of cc.servers?.list ?? []) {
      await Deno.copyFile(s.logFile, `${logs}/${s.name}.log`).catch(() => {});
    }
    // And each node's database as it ended (internal `_ha_` tables included).
    for (const n of cc.running()) {
      const r = await fetch(`${n.proc!.url}/download`).catch(() => null);
      if (r?.ok) {
        await Deno.writeFile(`${logs}/${n.spec.name}.db`, new Uint8Array(await r.arrayBuffer()));
      } else await r?.body?.cancel();
    }
  }
  return file;
}

/** The printed summary. */
export function summary(r: ChaosReport): string {
  const faults = Object.entries(r.faultsByKind).map(([k, n]) => `${k}=${n}`).join(" ");
  const lines = [
    `chaos seed=${r.seed} topology=${r.topology} nodes=${r.nodes.map(describe).join(" ")}`,
    `ops=${r.ops} acked=${r.acked} unknown=${r.unknown} failed=${r.failed}`,
    `faults: ${faults}${r.faultErrors.length ? ` (errors: ${r.faultErrors.length})` : ""}`,
    `memory nodes rebuilt=${r.memoryRebuilds}; tables with columns in another order=${r.columnOrder}`,
    `lost=${r.lost} divergent=${r.divergent} phantom=${r.phantom} lww=${r.lww} doubleApplied=${r.doubleApplied} deadLettered=${r.deadLettered}` +
    (r.lost > 0 ? ` (lost by node: ${JSON.stringify(r.lostByNode)})` : ""),
    `converge after heal=${r.convergeMs ?? "never"} ms; probe write→everywhere p50=${
      r.probeP50 ?? "-"
    } ms ` +
    `p99=${r.probeP99 ?? "-"} ms (${r.probes} probes, ${r.probesUnconverged} never everywhere)`,
    ...r.findings.map((f) => `  ${f.check}: ${f.detail}`),
    ...r.faultErrors.map((e) => `  fault error: ${e.split("\n")[0].slice(0, 300)}`),
    r.violations.length === 0 ? "PASS" : `FAIL: ${r.violations.join("; ")}`,
    `history: ${r.historyFile}`,
  ];
  return lines.join("\n");
}
