/**
 * CPU per request of the HTTP handler alone, in this process (no sockets, no Deno HTTP server):
 * the app of ROOT's `src/http/app.ts` over a file database, 32 requests at a time, inserts or
 * point reads as `bench/wrk/*.lua` send them. Measures ROOT's JavaScript path from request to
 * response precisely enough to compare two copies run alternately (the socket path adds the same
 * cost to both). Run: `deno run -A --unstable-worker-options bench/http_inproc.ts ROOT point|insert [N]`.
 * @module
 */
const root = (Deno.args[0] ?? new URL("..", import.meta.url).pathname).replace(/\/?$/, "/");
const kind = Deno.args[1] ?? "point";
const N = Number(Deno.args[2] ?? 40_000);
const CONNS = 32;
const KEYS = 10_000;

const { openEngine } = await import(`${root}src/engine/mod.ts`);
const app = await import(`${root}src/http/app.ts`);
const { createLogger } = await import(`${root}src/log/mod.ts`);
const { HaMetrics } = await import(`${root}src/metrics/ha.ts`);

function cpu(): number {
  const stat = Deno.readTextFileSync("/proc/self/stat");
  const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return (Number(f[11]) + Number(f[12])) / 100;
}

const dir = await Deno.makeTempDir({ prefix: "ha-inproc-" });
const engine = await openEngine({
  dsns: [`${dir}/ha.db`],
  memory: false,
  concurrentQueries: 64,
  interrupt: `${root}vendor/ha_interrupt.so`,
  logger: createLogger("error"),
});
const opts = {
  engine,
  logger: createLogger("error"),
  token: null,
  maxBodyBytes: 32 << 20,
  readiness: () => [],
  metrics: new HaMetrics(),
};
const handle: (r: Request) => Response | Promise<Response> = app.buildFetch
  ? app.buildFetch(opts)
  : app.buildApp(opts).fetch;
const db = engine.defaultDb;
await db.execute([{ sql: "CREATE TABLE model (key TEXT, value TEXT, UNIQUE(key))" }]);
await db.execute([{ sql: "CREATE TABLE kv (id INTEGER PRIMARY KEY, v TEXT)" }]);
await db.execute([{
  sql: `WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ${KEYS}) ` +
    "INSERT INTO kv SELECT i, 'value ' || i FROM n",
}]);
const enc = new TextEncoder();
let n = 0;
const body = () =>
  kind === "insert"
    ? `{"sql":"INSERT OR REPLACE INTO model(key, value) VALUES (?, ?)","params":["k-${++n}","value"]}`
    : `{"sql":"SELECT id, v FROM kv WHERE id = ?","params":[${++n % KEYS + 1}]}`;
async function one(): Promise<void> {
  const b = enc.encode(body());
  const r = await handle(
    new Request("http://127.0.0.1:8080/", {
      method: "POST",
      headers: { "content-type": "application/json", "content-length": String(b.length) },
      body: b,
    }),
  );
  if (r.status !== 200) throw new Error(`${r.status} ${await r.text()}`);
  await r.text();
}
async function run(count: number): Promise<void> {
  let left = count;
  await Promise.all(Array.from({ length: CONNS }, async () => {
    while (left-- > 0) await one();
  }));
}
await run(2000); // warm-up
const c0 = cpu();
const t0 = performance.now();
await run(N);
const secs = (performance.now() - t0) / 1000;
const used = cpu() - c0;
console.log(
  `${root} ${kind} ${(N / secs).toFixed(0)}/s cpu ${(used / N * 1e6).toFixed(1)} us/req`,
);
await engine.close();
await Deno.remove(dir, { recursive: true });
