/**
 * The raw NATS hop of replication (issue 13), without ha: one nats-server with JetStream, a stream
 * configured like ha's (file storage, `<stream>.>` subjects, 2 min de-duplication window), a
 * publisher like ha's (`JetStreamPublisher`: `Nats-Msg-Id`, reply inbox per publish) on one
 * connection and a pull consumer like ha's subscriber (ack none, in memory, `consume` with
 * `max_messages` 1000 and 5 s expiry) on another, in this otherwise idle process. Publishes RATE
 * messages/s (open loop, ~300-byte payloads like a single-row changeset) for SECONDS and reports
 * publish → PubAck and publish → delivery (the consumer's loop got it) p50 / p99 / max.
 *
 * Run twice: alone, and with `BENCH_HOP_LOAD=1`, which runs `bench/lag.ts` (3 ha nodes at 1,000
 * writes/s) in a child process meanwhile. If the hop stays sub-millisecond here while the lag
 * bench reports milliseconds for it, the time goes to ha's busy event loops, not to nats-server
 * or the client's pull settings.
 *
 * Run: `deno task bench nats-hop`. Env: BENCH_SECONDS (default 5), BENCH_RATE (default 1000),
 * BENCH_HOP_LOAD.
 * @module
 */
import { AckPolicy, DeliverPolicy, jetstream, jetstreamManager } from "@nats-io/jetstream";
import { headers } from "@nats-io/transport-node";
import { JetStreamPublisher } from "../src/nats/mod.ts";
import { rawConnect } from "../src/nats/transport.ts";
import { Cluster, freePort } from "../tests/integration/helpers/cluster.ts";
import { percentile, table } from "./stats.ts";

const SECONDS = Number(Deno.env.get("BENCH_SECONDS") ?? 5);
const RATE = Number(Deno.env.get("BENCH_RATE") ?? 1000);
const LOAD = Deno.env.get("BENCH_HOP_LOAD") === "1";

/** Publishes at RATE/s for SECONDS; returns PubAck and delivery latencies (ms). */
async function measureHop(): Promise<{ ack: number[]; hop: number[] }> {
  const cluster = new Cluster();
  const port = freePort();
  const nats = await cluster.natsServer("hop", port);
  await nats.start();
  const pubNc = await rawConnect({ servers: [`127.0.0.1:${port}`] });
  const subNc = await rawConnect({ servers: [`127.0.0.1:${port}`] });
  try {
    const jsm = await jetstreamManager(subNc);
    await jsm.streams.add({
      name: "hop",
      subjects: ["hop.>"],
      storage: "file" as never,
      duplicate_window: 2 * 60 * 1_000_000_000,
    });
    const ci = await jsm.consumers.add("hop", {
      name: "db_node2",
      filter_subject: "hop.db",
      ack_policy: AckPolicy.None,
      mem_storage: true,
      num_replicas: 1,
      deliver_policy: DeliverPolicy.All,
    });
    const sentAt = new Map<number, number>();
    const hop: number[] = [];
    const ack: number[] = [];
    const total = Math.round(SECONDS * RATE);
    const messages = await jetstream(subNc).consumers.getConsumerFromInfo(ci).consume({
      max_messages: 1000,
      expires: 5_000,
    });
    const received = (async () => {
      for await (const m of messages) {
        const t0 = sentAt.get(Number(m.string().slice(0, 12)));
        if (t0 !== undefined) hop.push(performance.now() - t0);
        if (m.seq >= total) break;
      }
    })();
    const pub = new JetStreamPublisher(pubNc);
    const pad = "x".repeat(300);
    const acks: Promise<void>[] = [];
    const t0 = performance.now();
    for (let i = 0; i < total; i++) {
      const due = t0 + i * 1000 / RATE;
      const wait = due - performance.now();
      if (wait > 1) await new Promise((r) => setTimeout(r, wait));
      const at = performance.now();
      sentAt.set(i, at);
      const id = `db:node1:inc:${i}`;
      acks.push(
        pub.publish("hop.db", String(i).padStart(12, "0") + pad, {
          msgID: id,
          timeout: 10_000,
          headers: headers(),
        }).then(() => void ack.push(performance.now() - at)),
      );
    }
    await Promise.all(acks);
    await received;
    messages.stop();
    return { ack, hop };
  } finally {
    await pubNc.close();
    await subNc.close();
    await nats.stop();
    await cluster.stop();
  }
}

/** Runs the measurement (with the lag bench as load when asked) and prints it. */
export async function main(): Promise<void> {
  let load: Deno.ChildProcess | null = null;
  if (LOAD) {
    load = new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", "--unstable-worker-options", new URL("./lag.ts", import.meta.url).href],
      // Long enough to cover the start-up wait and this measurement; it ends by itself (killing
      // it would leave its nodes running).
      env: { BENCH_SECONDS: String(SECONDS + 60) },
      stdout: "null",
      stderr: "null",
    }).spawn();
    // Three nodes start and the load begins (the lag bench's own start-up, ~15-30 s here).
    await new Promise((r) => setTimeout(r, 30_000));
  }
  try {
    const { ack, hop } = await measureHop();
    ack.sort((a, b) => a - b);
    hop.sort((a, b) => a - b);
    console.log(
      `\nRaw NATS hop, ${RATE} msg/s for ${SECONDS}s, ${LOAD ? "with" : "without"} 3 ha nodes ` +
        `at 1,000 writes/s`,
    );
    table(
      ["step", "n", "p50 ms", "p99 ms", "max ms"],
      [
        ["publish → PubAck", ack.length, percentile(ack, 0.5), percentile(ack, 0.99), ack.at(-1)!],
        [
          "publish → delivered",
          hop.length,
          percentile(hop, 0.5),
          percentile(hop, 0.99),
          hop.at(-1)!,
        ],
      ],
    );
  } finally {
    if (load) await load.status;
  }
}

if (import.meta.main) await main();
