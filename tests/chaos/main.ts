/**
 * `deno task chaos [--duration 10m] [--seed N] [--nodes 3..5] [--topology embedded|external|cluster3]
 * [--faults kill,stop,…] [--converge 120s] [--out FILE]`: one seeded fault-injection run against
 * real `ha` and nats-server processes (`--faults` narrows the kinds, to bisect a finding).
 * Prints the figures, writes the history (replay it with the same `--seed`, `--nodes`,
 * `--topology`) and exits 1 on any violation, 2 on bad arguments.
 * @module
 */
import { parseArgs } from "node:util";
import { parseDuration } from "../../src/config/mod.ts";
import { FAULT_KINDS, type FaultKind } from "./history.ts";
import { runChaos } from "./run.ts";
import { TOPOLOGIES, type Topology } from "./topology.ts";

function fail(msg: string): never {
  console.error(`chaos: ${msg}`);
  Deno.exit(2);
}

const USAGE = "usage: deno task chaos [--duration 10m] [--seed N] [--nodes 3..5] " +
  `[--topology ${TOPOLOGIES.join("|")}] [--faults ${FAULT_KINDS.join(",")}] ` +
  "[--converge 120s] [--out FILE]";

function options() {
  try {
    return parseArgs({
      args: Deno.args,
      options: {
        duration: { type: "string", default: "60s" },
        seed: { type: "string" },
        nodes: { type: "string", default: "3" },
        topology: { type: "string" },
        out: { type: "string" },
        converge: { type: "string", default: "120s" },
        faults: { type: "string" },
        help: { type: "boolean", short: "h" },
      },
    }).values;
  } catch (e) {
    fail(`${(e as Error).message}\n${USAGE}`);
  }
}

const values = options();
if (values.help) {
  console.log(USAGE);
  Deno.exit(0);
}

const seed = values.seed === undefined ? Math.floor(Math.random() * 2 ** 31) : Number(values.seed);
if (!Number.isSafeInteger(seed) || seed < 0) fail(`--seed must be a non-negative integer`);
const nodes = Number(values.nodes);
if (!Number.isInteger(nodes) || nodes < 3 || nodes > 5) fail(`--nodes must be 3, 4 or 5`);
const topology = (values.topology ?? TOPOLOGIES[seed % TOPOLOGIES.length]) as Topology;
if (!TOPOLOGIES.includes(topology)) fail(`--topology must be one of ${TOPOLOGIES.join(", ")}`);
let durationMs: number;
let convergeLimitMs: number;
try {
  durationMs = parseDuration(
    /^\d+$/.test(values.duration) ? `${values.duration}s` : values.duration,
  );
  convergeLimitMs = parseDuration(values.converge);
} catch (e) {
  fail(`bad duration: ${(e as Error).message}`);
}
if (durationMs < 15_000) fail("--duration must be at least 15s");
const kinds = values.faults?.split(",").map((k) => k.trim()) as FaultKind[] | undefined;
const unknown = kinds?.filter((k) => !FAULT_KINDS.includes(k));
if (unknown?.length) {
  fail(`unknown fault kind ${unknown.join(", ")}; kinds: ${FAULT_KINDS.join(", ")}`);
}

const report = await runChaos({
  seed,
  durationMs,
  nodes,
  topology,
  convergeLimitMs,
  kinds,
  out: values.out,
});
console.log(JSON.stringify({
  seed: report.seed,
  topology: report.topology,
  acked: report.acked,
  lost: report.lost,
  divergent: report.divergent,
  faults: report.faultsByKind,
  convergeMs: report.convergeMs,
  probeP50: report.probeP50,
  probeP99: report.probeP99,
  history: report.historyFile,
}));
Deno.exit(report.violations.length === 0 ? 0 : 1);
