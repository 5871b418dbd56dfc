/**
 * `buildFetch` answers `POST /` and `POST /query` without Hono: every answer (status, headers,
 * body) and every request counter must be what the Hono app alone gives for the same requests.
 */
import assert from "node:assert/strict";
import { openEngine } from "../../src/engine/mod.ts";
import { buildApp, buildFetch } from "../../src/http/app.ts";
import { createLogger } from "../../src/log/mod.ts";
import { HaMetrics } from "../../src/metrics/mod.ts";

const opts = { sanitizeOps: false, sanitizeResources: false };
const URL_ = "http://127.0.0.1:8080";
const JSON_TYPE = "application/json";

type Case = [
  method: string,
  path: string,
  headers: Record<string, string>,
  body?: string | Uint8Array<ArrayBuffer>,
];

function cases(auth: Record<string, string>): Case[] {
  const h = { ...auth, "content-type": JSON_TYPE };
  return [
    ["POST", "/", h, '{"sql":"CREATE TABLE t (id INTEGER PRIMARY KEY, v)"}'],
    ["POST", "/", h, '{"sql":"INSERT INTO t(v) VALUES (?)","params":[1.5]}'],
    [
      "POST",
      "/query",
      h,
      '[{"sql":"INSERT INTO t(v) VALUES (?)","params":[9223372036854775807]},{"sql":"SELECT * FROM t"}]',
    ],
    ["POST", "/query?x=1", h, '{"sql":"SELECT * FROM t WHERE id = ?","params":[1]}'],
    ["POST", "/", h, '{"sql":"SELECT * FROM nope"}'],
    ["POST", "/", h, '{"sql":"SELECT 1", "x": 1}'],
    ["POST", "/", h, "not json"],
    ["POST", "/", h, ""],
    ["POST", "/", h, new Uint8Array([123, 255, 125])],
    ["POST", "/", h, `{"sql":"${"x".repeat(300)}"}`],
    ["POST", "/", { ...auth, "content-type": "text/plain" }, '{"sql":"SELECT 1"}'],
    [
      "POST",
      "/",
      { ...auth, "content-type": "Application/JSON; charset=utf-8" },
      '{"sql":"SELECT 1"}',
    ],
    ["POST", "/", { ...auth }, '{"sql":"SELECT 1"}'],
    ["POST", "/", { "content-type": JSON_TYPE }, '{"sql":"SELECT 1"}'],
    ["POST", "/", { authorization: "wrong", "content-type": JSON_TYPE }, '{"sql":"SELECT 1"}'],
    ["POST", "/query", { ...h, origin: "http://evil.example" }, '{"sql":"SELECT 1"}'],
    ["POST", "/query", { ...h, origin: "http://127.0.0.1:8080" }, '{"sql":"SELECT 1"}'],
    ["POST", "/query/", h, '{"sql":"SELECT 1"}'],
    ["POST", "/%71uery", h, '{"sql":"SELECT 1"}'],
    ["POST", "/databases/ha/query", h, '{"sql":"SELECT 1"}'],
    ["GET", "/query", h],
    ["POST", "/", h, '{"sql":"SELECT zeroblob(2) AS b, 1e999 AS f, 2.0 AS r, -0.0 AS z"}'],
  ];
}

/** The answers of `handle` to every case, then its request counters. */
async function answers(
  make: (o: Parameters<typeof buildApp>[0]) => (r: Request) => Response | Promise<Response>,
  token: string | null,
): Promise<string[]> {
  const engine = await openEngine({
    dsns: ["ha"],
    memory: true,
    concurrentQueries: 8,
    logger: createLogger("error"),
  });
  try {
    const metrics = new HaMetrics();
    const handle = make({
      engine,
      logger: createLogger("error"),
      token,
      maxBodyBytes: 200,
      readiness: () => [],
      metrics,
    });
    const out: string[] = [];
    for (
      const [method, path, headers, body] of cases(
        token ? { authorization: `Bearer ${token}` } : {},
      )
    ) {
      const bytes: Uint8Array<ArrayBuffer> | undefined = typeof body === "string"
        ? new TextEncoder().encode(body) as Uint8Array<ArrayBuffer>
        : body;
      const all: Record<string, string> = { ...headers };
      if (bytes) all["content-length"] = String(bytes.length);
      const r = await handle(new Request(URL_ + path, { method, headers: all, body: bytes }));
      out.push(`${method} ${path} ${r.status} ${JSON.stringify([...r.headers])} ${await r.text()}`);
    }
    const text = await metrics.registry.expose();
    out.push(
      ...text.split("\n").filter((l) => l.startsWith("ha_http_request")).map((l) =>
        l.startsWith("ha_http_request_duration_seconds_bucket")
          ? ""
          : l.replace(/_sum\{(.*)\} .*/, "_sum{$1}")
      ),
    );
    return out;
  } finally {
    await engine.close();
  }
}

for (const token of [null, "sekret"]) {
  Deno.test(
    `fast path answers as the Hono app (token ${token ? "set" : "none"})`,
    opts,
    async () => {
      const viaApp = await answers((o) => buildApp(o).fetch, token);
      const viaFast = await answers(buildFetch, token);
      assert.deepEqual(viaFast, viaApp);
      // The cases reach the fast path and give real answers.
      assert.ok(
        viaFast.some((l) =>
          l.startsWith('POST /query 200 [["content-type","application/json"]] {"results":')
        ),
      );
      assert.ok(
        viaFast.includes('ha_http_requests_total{route="/",code="400"} 5'),
        viaFast.join("\n"),
      );
    },
  );
}
