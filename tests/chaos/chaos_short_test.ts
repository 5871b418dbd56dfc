/**
 * The short seeded chaos run of `deno task test`: 3 nodes on an external nats-server, 40 s of
 * load with every kind of fault (kill -9, SIGSTOP, nats-server kill, partition, delay, clock
 * jump, snapshot + bootstrap of a file node that is then killed and restarted), then the
 * checker. Replay a failure with
 * `deno task chaos --seed 65 --duration 40s --nodes 3 --topology external`.
 */
import assert from "node:assert/strict";
import { runChaos } from "./run.ts";

Deno.test("chaos (short, seed 65): no acknowledged write lost, no divergence", {
  sanitizeOps: false,
  sanitizeResources: false,
}, async () => {
  const report = await runChaos({
    seed: 65,
    durationMs: 40_000,
    nodes: 3,
    topology: "external",
    httpClients: 4,
    pgClients: 1,
    convergeLimitMs: 45_000,
  });
  assert.ok(report.acked > 100, `only ${report.acked} writes acknowledged`);
  assert.deepEqual(report.violations, [], `chaos violations; history in ${report.historyFile}`);
});
