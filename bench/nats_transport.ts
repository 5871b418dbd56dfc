/**
 * CPU per NATS message of ha's transport (`DenoTransport`, Deno's own sockets) against
 * `@nats-io/transport-node` (`node:net` polyfill), issue 13. One nats-server with JetStream;
 * rounds alternate the two transports. Per round: sequential JetStream publishes (publish → PubAck
 * like ha's publisher, `Nats-Msg-Id`, ~300-byte payload) and sequential request/reply round trips
 * (requester and responder connections both in this process). Reports CPU of this process (all
 * threads) and of its main thread from `/proc`, µs per message.
 *
 * Run: `deno task bench nats-transport`. Env: BENCH_MESSAGES (default 3000), BENCH_ROUNDS
 * (default 3).
 * @module
 */
import { jetstream, jetstreamManager } from "@nats-io/jetstream";
import {
  type ConnectionOptions,
  headers,
  type NatsConnection,
  NatsConnectionImpl,
  setTransportFactory,
} from "@nats-io/transport-node";
import { nodeResolveHost, NodeTransport } from "@nats-io/transport-node/lib/node_transport.js";
import { rawConnect } from "../src/nats/transport.ts";
import { Cluster, freePort } from "../tests/integration/helpers/cluster.ts";
import { table } from "./stats.ts";

const MESSAGES = Number(Deno.env.get("BENCH_MESSAGES") ?? 3000);
const ROUNDS = Number(Deno.env.get("BENCH_ROUNDS") ?? 3);
const TICK_US = 10_000; // USER_HZ 100

/** `BENCH_TRANSPORTS=node` or `deno`: one only (for `--cpu-prof`). */
const ONLY = (Deno.env.get("BENCH_TRANSPORTS") ?? "node,deno").split(",");

type Connect = (o: ConnectionOptions) => Promise<NatsConnection>;
const TRANSPORTS: Record<string, Connect> = {
  node: (o) => {
    setTransportFactory({ factory: () => new NodeTransport(), dnsResolveFn: nodeResolveHost });
    return NatsConnectionImpl.connect(o);
  },
  deno: rawConnect,
};

/** utime + stime in µs of `/proc/self/<path>/stat`. */
function cpuUs(path: string): number {
  const s = Deno.readTextFileSync(`/proc/self/${path}stat`);
  const f = s.slice(s.lastIndexOf(")") + 2).split(" ");
  return (Number(f[11]) + Number(f[12])) * TICK_US;
}

async function perMessage(run: () => Promise<void>): Promise<[number, number]> {
  const main = `task/${Deno.pid}/`;
  const p0 = cpuUs(""), m0 = cpuUs(main);
  await run();
  return [(cpuUs("") - p0) / MESSAGES, (cpuUs(main) - m0) / MESSAGES];
}

async function round(connect: Connect, port: number): Promise<number[]> {
  const a = await connect({ servers: [`127.0.0.1:${port}`] });
  const b = await connect({ servers: [`127.0.0.1:${port}`] });
  try {
    const js = jetstream(a);
    const pad = "x".repeat(300);
    const sub = b.subscribe("echo", { callback: (_e, m) => m.respond(m.data) });
    // Warm-up (JIT, connections).
    for (let i = 0; i < 200; i++) {
      await js.publish("bench.db", pad, { msgID: crypto.randomUUID(), headers: headers() });
      await a.request("echo", pad);
    }
    const pub = await perMessage(async () => {
      for (let i = 0; i < MESSAGES; i++) {
        await js.publish("bench.db", pad, { msgID: crypto.randomUUID(), headers: headers() });
      }
    });
    const pub8 = await perMessage(async () => {
      for (let i = 0; i < MESSAGES; i += 8) {
        await Promise.all(
          Array.from(
            { length: 8 },
            () => js.publish("bench.db", pad, { msgID: crypto.randomUUID(), headers: headers() }),
          ),
        );
      }
    });
    const req = await perMessage(async () => {
      for (let i = 0; i < MESSAGES; i++) await a.request("echo", pad);
    });
    sub.unsubscribe();
    return [...pub, ...pub8, ...req];
  } finally {
    await a.close();
    await b.close();
  }
}

/** Runs the alternating rounds and prints the ranges. */
export async function main(): Promise<void> {
  const cluster = new Cluster();
  const port = freePort();
  const nats = await cluster.natsServer("transport", port);
  await nats.start();
  const results: Record<string, number[][]> = { node: [], deno: [] };
  try {
    const nc = await rawConnect({ servers: [`127.0.0.1:${port}`] });
    await (await jetstreamManager(nc)).streams.add({
      name: "bench",
      subjects: ["bench.>"],
      storage: "memory" as never,
    });
    await nc.close();
    for (let r = 0; r < ROUNDS; r++) {
      for (const name of ONLY) {
        const connect = TRANSPORTS[name];
        const row = await round(connect, port);
        results[name].push(row);
        console.log(`round ${r} ${name}: ${row.map((v) => v.toFixed(0)).join(" ")}`);
      }
    }
  } finally {
    await nats.stop();
    await cluster.stop();
  }
  const range = (rows: number[][], i: number) => {
    const v = rows.map((r) => r[i]);
    return `${Math.min(...v).toFixed(0)}–${Math.max(...v).toFixed(0)}`;
  };
  console.log(`\nCPU µs per message, ${MESSAGES} messages, ${ROUNDS} alternating rounds`);
  table(
    [
      "transport",
      "JS publish: process",
      "main thread",
      "8 in flight: process",
      "main thread",
      "request/reply: process",
      "main thread",
    ],
    Object.entries(results).filter(([, rows]) => rows.length).map((
      [name, rows],
    ) => [name, ...[0, 1, 2, 3, 4, 5].map((i) => range(rows, i))]),
  );
}

if (import.meta.main) await main();
