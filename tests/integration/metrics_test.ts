/**
 * `GET /metrics` on a real 2-node cluster with `--token`: refused without the token, the text
 * format, and values that follow what happened (requests by route and code, published, applied
 * and their lag by origin, outbox, NATS, PostgreSQL statements).
 */
import assert from "node:assert/strict";
import { Cluster, freePort, type HaNode, waitFor } from "./helpers/cluster.ts";
import { psql } from "./pgwire_helpers.ts";

const opts = { sanitizeOps: false, sanitizeResources: false };
const TOKEN = "metrics-token";
const auth = { authorization: `Bearer ${TOKEN}` };

async function sql(n: HaNode, q: string): Promise<void> {
  const r = await fetch(`${n.url}/query`, {
    method: "POST",
    headers: { "content-type": "application/json", ...auth },
    body: JSON.stringify({ sql: q }),
  });
  assert.equal(r.status, 200, await r.text());
}

/** Samples of an exposition: `name{labels}` → value. */
async function scrape(n: HaNode): Promise<Map<string, number>> {
  const r = await fetch(`${n.url}/metrics`, { headers: auth });
  assert.equal(r.status, 200);
  assert.equal(r.headers.get("content-type"), "text/plain; version=0.0.4; charset=utf-8");
  const out = new Map<string, number>();
  for (const line of (await r.text()).split("\n")) {
    if (!line || line.startsWith("#")) continue;
    const at = line.lastIndexOf(" ");
    out.set(line.slice(0, at), Number(line.slice(at + 1)));
  }
  return out;
}

Deno.test("GET /metrics: token, format and values of a 2-node cluster", opts, async () => {
  const cluster = new Cluster();
  try {
    const pgPort = freePort();
    const n1 = await cluster.start("node1", {
      embeddedNats: true,
      args: ["--token", TOKEN, "--pg-port", String(pgPort)],
    });
    const n2 = await cluster.start("node2", { natsUrl: n1.natsUrl!, args: ["--token", TOKEN] });
    const refused = await fetch(`${n1.url}/metrics`);
    assert.equal(refused.status, 401);
    await refused.body?.cancel();

    await sql(n1, "CREATE TABLE t(a)");
    for (let i = 0; i < 5; i++) await sql(n1, `INSERT INTO t VALUES (${i})`);
    // The same read three times: the second and third run on the main thread at once
    // (`executeNow`), and each counts once.
    const pg = await psql(pgPort, [
      "-c",
      "SELECT count(*) FROM t",
      "-c",
      "SELECT count(*) FROM t",
      "-c",
      "SELECT count(*) FROM t",
    ], { env: { PGPASSWORD: "ha" } });
    assert.equal(pg.code, 0, pg.stderr);

    await waitFor(
      "node2 applied the 6 changesets",
      async () => (await scrape(n2)).get('ha_replication_applied_total{database="ha.db"}') === 6,
    );
    const m2 = await scrape(n2);
    assert.equal(m2.get('ha_replication_lag_seconds_count{database="ha.db",origin="node1"}'), 6);
    assert.equal(
      m2.get('ha_replication_lag_seconds_bucket{database="ha.db",origin="node1",le="+Inf"}'),
      6,
    );
    assert.ok(m2.get('ha_replication_lag_seconds_sum{database="ha.db",origin="node1"}')! > 0);
    assert.equal(m2.get("ha_nats_connected"), 1);

    const m1 = await scrape(n1);
    assert.equal(m1.get('ha_replication_published_total{database="ha.db"}'), 6);
    assert.equal(m1.get('ha_outbox_pending{database="ha.db"}'), 0);
    assert.equal(m1.get('ha_replication_failing{database="ha.db"}'), 0);
    assert.equal(m1.get('ha_http_requests_total{route="/query",code="200"}'), 6);
    assert.equal(m1.get('ha_http_requests_total{route="/metrics",code="401"}'), 1);
    assert.equal(m1.get('ha_http_request_duration_seconds_count{route="/query"}'), 6);
    assert.equal(m1.get("ha_pg_queries_total"), 3);
    assert.equal(m1.get("ha_pg_connections"), 0);
    assert.ok(m1.get("process_resident_memory_bytes")! > 1e6);
    assert.ok(m1.get("process_cpu_seconds_total")! > 0);
    assert.ok(m1.has("ha_event_loop_lag_seconds"));
  } finally {
    await cluster.stop();
  }
});
