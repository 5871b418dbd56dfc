/**
 * Would a NATS transport on Deno's own sockets be cheaper than ha's (`@nats-io/transport-node`, i.e.
 * Deno's `node:net` polyfill)? Issue 13, docs/perf.md §9. `DenoTcpTransport` below is a plain-TCP
 * prototype modelled on nats.deno's `DenoTransport` (JSR only): `Deno.connect`, a reused read
 * buffer, queued frames joined into one `write`. Not used by ha: it measured no clear gain.
 *
 * One nats-server with JetStream; rounds alternate the two transports. Per round: sequential
 * JetStream publishes through ha's `JetStreamPublisher` (publish → PubAck, `Nats-Msg-Id`, ~300-byte
 * payload), the same 8 in flight, and sequential request/reply round trips (requester and responder
 * connections both in this process). Prints CPU of this process (all threads) and of its main
 * thread from `/proc`, µs per message, per round and as ranges.
 *
 * Run: `deno task bench nats-transport`. Env: BENCH_MESSAGES (default 10000), BENCH_ROUNDS
 * (default 3), BENCH_TRANSPORTS (`node,deno`; one only for `--cpu-prof`).
 * @module
 */
import { jetstreamManager } from "@nats-io/jetstream";
import {
  type ConnectionOptions,
  headers,
  type NatsConnection,
  NatsConnectionImpl,
  type Server,
  type ServerInfo,
  setTransportFactory,
  type Transport,
} from "@nats-io/transport-node";
import {
  checkOptions,
  DataBuffer,
  deferred,
  errors,
  extractProtocolMessage,
  INFO,
} from "@nats-io/transport-node/lib/nats-base-client.js";
import { nodeResolveHost, VERSION } from "@nats-io/transport-node/lib/node_transport.js";
import { JetStreamPublisher } from "../src/nats/mod.ts";
import { rawConnect } from "../src/nats/transport.ts";
import { Cluster, freePort } from "../tests/integration/helpers/cluster.ts";
import { table } from "./stats.ts";

const MESSAGES = Number(Deno.env.get("BENCH_MESSAGES") ?? 10_000);
const ROUNDS = Number(Deno.env.get("BENCH_ROUNDS") ?? 3);
const ONLY = (Deno.env.get("BENCH_TRANSPORTS") ?? "node,deno").split(",");
const TICK_US = 10_000; // USER_HZ 100

/** nats-core's `Transport` on a `Deno.TcpConn` (no TLS). */
class DenoTcpTransport implements Transport {
  readonly lang = "nats.js";
  readonly version = VERSION;
  closeError?: Error;
  #conn?: Deno.TcpConn;
  #done = false;
  #readBuf = new Uint8Array(256 * 1024);
  #first: Uint8Array = new Uint8Array(0);
  #outbox: Uint8Array[] = [];
  #writing: Promise<void> | null = null;
  #closed = deferred<void | Error>();

  get isClosed(): boolean {
    return this.#done;
  }

  async connect(hp: Server, options: ConnectionOptions): Promise<void> {
    try {
      this.#conn = await Deno.connect({ hostname: hp.hostname, port: hp.port });
      this.#conn.setNoDelay(true);
      const inbound = new DataBuffer();
      let line = "";
      while (line === "") {
        const n = await this.#conn.read(this.#readBuf);
        if (n === null) throw new Error("socket closed while expecting INFO");
        inbound.fill(this.#readBuf.slice(0, n));
        line = extractProtocolMessage(inbound.peek());
      }
      this.#first = inbound.drain();
      const m = INFO.exec(line);
      if (!m) throw new Error("unexpected response from server");
      checkOptions(JSON.parse(m[1]) as ServerInfo, options);
    } catch (err) {
      this.#closeConn();
      throw new errors.ConnectionError((err as Error).message, { cause: err });
    }
  }

  async *[Symbol.asyncIterator](): AsyncIterableIterator<Uint8Array> {
    yield this.#first;
    let reason: Error | undefined;
    while (!this.#done) {
      try {
        const n = await this.#conn!.read(this.#readBuf);
        if (n === null) break;
        // A copy: the parser hands out subarrays of what it is given (message payloads).
        if (n > 0) yield this.#readBuf.slice(0, n);
      } catch (err) {
        reason = err as Error;
        break;
      }
    }
    await this.#close(reason, true);
  }

  isEncrypted(): boolean {
    return false;
  }

  send(frame: Uint8Array): void {
    if (this.#done || !this.#conn) return;
    this.#outbox.push(frame);
    this.#writing ??= this.#drainOutbox();
  }

  async #drainOutbox(): Promise<void> {
    try {
      while (this.#outbox.length > 0) {
        const frames = this.#outbox;
        this.#outbox = [];
        const buf = frames.length === 1 ? frames[0] : DataBuffer.concat(...frames);
        for (let off = 0; off < buf.length;) off += await this.#conn!.write(buf.subarray(off));
      }
    } catch {
      this.#outbox = [];
    } finally {
      this.#writing = null;
    }
  }

  close(err?: Error): Promise<void> {
    return this.#close(err, false);
  }

  disconnect(): void {
    this.#close(undefined, true).catch(() => {});
  }

  discard(): void {
    this.#done = true;
    this.#closeConn();
  }

  async #close(err: Error | undefined, internal: boolean): Promise<void> {
    if (this.#done) return this.#closeConn();
    this.#done = true;
    this.closeError = err;
    if (!err && internal && this.#writing) await this.#writing;
    this.#closeConn();
    if (internal) this.#closed.resolve(err);
  }

  #closeConn(): void {
    try {
      this.#conn?.close();
    } catch {
      // Already closed.
    }
  }

  closed(): Promise<void | Error> {
    return this.#closed;
  }
}

type Connect = (o: ConnectionOptions) => Promise<NatsConnection>;
const TRANSPORTS: Record<string, Connect> = {
  node: rawConnect,
  deno: (o) => {
    setTransportFactory({ factory: () => new DenoTcpTransport(), dnsResolveFn: nodeResolveHost });
    return NatsConnectionImpl.connect(o);
  },
};

/** utime + stime in µs of `/proc/self/<path>stat`. */
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
    const pub = new JetStreamPublisher(a);
    const pad = "x".repeat(300);
    const publish = () =>
      pub.publish("bench.db", pad, {
        msgID: crypto.randomUUID(),
        timeout: 10_000,
        headers: headers(),
      });
    const sub = b.subscribe("echo", { callback: (_e, m) => void m.respond(m.data) });
    await b.flush();
    for (let i = 0; i < 500; i++) await Promise.all([publish(), a.request("echo", pad)]);
    const one = await perMessage(async () => {
      for (let i = 0; i < MESSAGES; i++) await publish();
    });
    const eight = await perMessage(async () => {
      for (let i = 0; i < MESSAGES; i += 8) await Promise.all(Array.from({ length: 8 }, publish));
    });
    const req = await perMessage(async () => {
      for (let i = 0; i < MESSAGES; i++) await a.request("echo", pad);
    });
    sub.unsubscribe();
    return [...one, ...eight, ...req];
  } finally {
    await a.close();
    await b.close();
  }
}

/** Runs the alternating rounds and prints them. */
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
        const row = await round(TRANSPORTS[name], port);
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
  console.log(`\nCPU µs per message (process / main thread), ${MESSAGES} messages per step`);
  table(
    ["transport", "publish→ack", "main", "8 in flight", "main", "request/reply", "main"],
    Object.entries(results).filter(([, rows]) => rows.length)
      .map(([name, rows]) => [name, ...[0, 1, 2, 3, 4, 5].map((i) => range(rows, i))]),
  );
}

if (import.meta.main) await main();
