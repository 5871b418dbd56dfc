/**
 * What metrics cost per HTTP request: the same Hono app (in process, no sockets, so the
 * machine's load matters less) answering single-row INSERTs, with and without request
 * counting, in interleaved rounds; and the cost of one scrape.
 *
 * Run: `deno task bench metrics`.
 */
import { buildApp, HttpServer } from "../src/http/mod.ts";
import { openEngine } from "../src/engine/mod.ts";
import { createLogger } from "../src/log/mod.ts";
import { HaMetrics } from "../src/metrics/mod.ts";
import { load, table } from "./stats.ts";

const N = Number(Deno.env.get("BENCH_REQUESTS") ?? 3000);
const ROUNDS = Number(Deno.env.get("BENCH_ROUNDS") ?? 10);

export async function main(): Promise<void> {
  const logger = createLogger("error");
  const engine = await openEngine({
    dsns: ["bench.db"],
    memory: true,
    concurrentQueries: 8,
    logger,
  });
  const metrics = new HaMetrics();
  const base = { engine, logger, token: null, maxBodyBytes: 1 << 20, readiness: () => [] };
  const apps = { without: buildApp(base), with: buildApp({ ...base, metrics }) };
  try {
    await engine.defaultDb.execute([{ sql: "CREATE TABLE kv (id INTEGER PRIMARY KEY, v TEXT)" }]);
    const insert = async (app: typeof apps.with, i: number) => {
      const r = await app.fetch(
        new Request("http://127.0.0.1/", {
          method: "POST",
          headers: { "content-type": "application/json" },
          body: `{"sql":"INSERT INTO kv(v) VALUES (?)","params":["value ${i}"]}`,
        }),
      );
      if (r.status !== 200) throw new Error(await r.text());
      await r.arrayBuffer();
    };
    // No SQL: what the HTTP layer alone costs, where the counting weighs most.
    const list = async (app: typeof apps.with) => {
      const r = await app.fetch(new Request("http://127.0.0.1/databases"));
      if (r.status !== 200) throw new Error(await r.text());
      await r.arrayBuffer();
    };
    const times: Record<string, number[]> = { without: [], with: [] };
    const bare: Record<string, number[]> = { without: [], with: [] };
    for (let round = 0; round < ROUNDS; round++) {
      for (const [name, app] of Object.entries(apps)) {
        let t0 = performance.now();
        for (let i = 0; i < N; i++) await insert(app, i);
        times[name].push(N / ((performance.now() - t0) / 1000));
        t0 = performance.now();
        for (let i = 0; i < N; i++) await list(app);
        bare[name].push(N / ((performance.now() - t0) / 1000));
      }
    }
    // Through real servers (sockets, the front, Deno.serve), client in this process.
    const servers = {
      without: new HttpServer({ ...base, port: 0 }),
      with: new HttpServer({ ...base, metrics, port: 0 }),
    };
    const served: Record<string, number[]> = { without: [], with: [] };
    try {
      for (const s of Object.values(servers)) await s.start();
      for (let round = 0; round < ROUNDS; round++) {
        for (const [name, server] of Object.entries(servers)) {
          const url = `http://127.0.0.1:${server.port}/`;
          const r = await load(8, 1000, async (i) => {
            const res = await fetch(url, {
              method: "POST",
              headers: { "content-type": "application/json" },
              body: `{"sql":"INSERT INTO kv(v) VALUES (?)","params":["value ${i}"]}`,
            });
            if (res.status !== 200) throw new Error(await res.text());
            await res.arrayBuffer();
          });
          served[name].push(r.ops);
        }
      }
    } finally {
      for (const s of Object.values(servers)) await s.stop();
    }
    const best = (a: number[]) => Math.max(...a);
    const t0 = performance.now();
    const text = await metrics.registry.expose();
    const scrapeMs = performance.now() - t0;
    const row = (what: string) => ([k, v]: [string, number[]]) => [
      what,
      k,
      Math.round(best(v)),
      (1e6 / best(v)).toFixed(1),
    ];
    console.log(`\nThe Hono app in process (${N} requests per round, best of ${ROUNDS} rounds)`);
    table(["request", "metrics", "best ops/s", "µs/request"], [
      ...Object.entries(times).map(row("POST / INSERT")),
      ...Object.entries(bare).map(row("GET /databases")),
      ...Object.entries(served).map(row("HTTP INSERT, 8 clients")),
    ]);
    console.log(`one scrape: ${scrapeMs.toFixed(2)} ms, ${text.length} bytes`);
  } finally {
    await engine.close();
  }
}

if (import.meta.main) await main();
