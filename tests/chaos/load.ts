/**
 * The load of a chaos run, bounded in time and count: HTTP clients insert unique keys
 * (`c<client>-<n>`), upsert and delete a few hot keys and send multi-statement transactions
 * (JSON arrays); PostgreSQL clients (node `pg`) run `BEGIN … COMMIT`; one client runs DDL now and
 * then; a prober writes a key every second and measures how long it takes to reach every node.
 * Every operation goes to the {@link History}.
 *
 * Schema (created on node1 before the load): `u(k, v)` unique keys, `hot(k, v)` conflicting
 * keys, `ledger(id, client)` plus a trigger that counts each client's ledger rows in
 * `totals(client, n)` on every node (a changeset applied twice counts twice), `side_<j>` tables
 * made and altered by the DDL client.
 * @module
 */
import pg from "pg";
import {
  clip,
  type History,
  httpOutcome,
  type Op,
  type Outcome,
  pgErrorOutcome,
  type Write,
} from "./history.ts";
import { Prng } from "./prng.ts";
import type { ChaosCluster, ChaosNode } from "./topology.ts";

/** The schema every node gets (through DDL replication) before the load starts. */
export const SCHEMA = [
  "CREATE TABLE IF NOT EXISTS u(k TEXT PRIMARY KEY, v TEXT NOT NULL)",
  "CREATE TABLE IF NOT EXISTS hot(k TEXT PRIMARY KEY, v TEXT NOT NULL)",
  "CREATE TABLE IF NOT EXISTS ledger(id TEXT PRIMARY KEY, client TEXT NOT NULL)",
  "CREATE TABLE IF NOT EXISTS totals(client TEXT PRIMARY KEY, n INTEGER NOT NULL)",
  "CREATE TRIGGER IF NOT EXISTS ledger_count AFTER INSERT ON ledger BEGIN " +
  "INSERT INTO totals(client, n) VALUES (NEW.client, 1) " +
  "ON CONFLICT(client) DO UPDATE SET n = n + 1; END",
];

/** Hot keys every client fights over. */
export const HOT_KEYS = ["h0", "h1", "h2", "h3"];

const HTTP_TIMEOUT_MS = 10_000;
const UPSERT = "INSERT INTO hot(k, v) VALUES (?, ?) ON CONFLICT(k) DO UPDATE SET v = excluded.v";

/** Options of {@link runLoad}. */
export interface LoadOptions {
  cluster: ChaosCluster;
  history: History;
  seed: number;
  /** Run-relative ms when the load stops. */
  until: number;
  httpClients: number;
  pgClients: number;
  /** At most this many operations in all. */
  maxOps: number;
}

/** Convergence of probe writes: ms from acknowledgement to presence on every node. */
export interface ProbeResult {
  latencies: number[];
  /** Acknowledgement times of probes not yet seen on every node when the load ended. */
  pending: number[];
}

/** Runs every client until `until` (or `maxOps`); resolves when all have stopped. */
export async function runLoad(o: LoadOptions): Promise<ProbeResult> {
  const done = () => o.history.now() >= o.until || o.history.ops.length >= o.maxOps;
  const clients: Promise<unknown>[] = [];
  for (let i = 0; i < o.httpClients; i++) {
    clients.push(httpClient(o, `c${i}`, new Prng(o.seed * 31 + i), done));
  }
  for (let i = 0; i < o.pgClients; i++) {
    clients.push(pgClient(o, `p${i}`, new Prng(o.seed * 37 + i), done));
  }
  clients.push(ddlClient(o, new Prng(o.seed * 41), done));
  const probe = prober(o, new Prng(o.seed * 43), done);
  await Promise.all(clients);
  return await probe;
}

/** A node to send the next request to: a running one, else any. */
function pickNode(o: LoadOptions, rng: Prng): ChaosNode {
  const up = o.cluster.running();
  return rng.pick(up.length > 0 ? up : [...o.cluster.nodes.values()]);
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** POSTs `body` to `node` and records the operation. */
async function httpOp(
  o: LoadOptions,
  client: string,
  node: ChaosNode,
  kind: Op["kind"],
  body: unknown,
  writes: Write[],
): Promise<Op> {
  const start = o.history.now();
  const url = `http://127.0.0.1:${(node.proc ?? node.last)!.port}/query`;
  let status = 0;
  let text = "";
  let refused = false;
  try {
    const r = await fetch(url, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify(body),
      signal: AbortSignal.timeout(HTTP_TIMEOUT_MS),
    });
    status = r.status;
    text = await r.text();
  } catch (e) {
    text = String((e as Error).message ?? e);
    refused = /refused/i.test(text);
  }
  const outcome = httpOutcome(status, text, refused);
  return o.history.add({
    client,
    node: node.spec.name,
    proto: "http",
    kind,
    request: body,
    status: status === 0 ? "error" : status,
    body: clip(text),
    start,
    end: o.history.now(),
    outcome,
    writes,
  });
}

async function httpClient(o: LoadOptions, id: string, rng: Prng, done: () => boolean) {
  for (let n = 0; !done(); n++) {
    const node = pickNode(o, rng);
    const key = `${id}-${n}`;
    const r = rng.next();
    if (r < 0.65) {
      await httpOp(o, id, node, "insert", {
        sql: "INSERT INTO u(k, v) VALUES (?, ?)",
        params: [key, node.spec.name],
      }, [
        { table: "u", key, value: node.spec.name },
      ]);
    } else if (r < 0.8) {
      const k = rng.pick(HOT_KEYS);
      await httpOp(o, id, node, "upsert", { sql: UPSERT, params: [k, key] }, [
        { table: "hot", key: k, value: key },
      ]);
    } else if (r < 0.88) {
      const k = rng.pick(HOT_KEYS);
      await httpOp(o, id, node, "delete", { sql: "DELETE FROM hot WHERE k = ?", params: [k] }, [
        { table: "hot", key: k, value: null },
      ]);
    } else {
      const k = rng.pick(HOT_KEYS);
      await httpOp(o, id, node, "tx", [
        { sql: "INSERT INTO u(k, v) VALUES (?, ?)", params: [key, node.spec.name] },
        { sql: "INSERT INTO ledger(id, client) VALUES (?, ?)", params: [key, id] },
        { sql: UPSERT, params: [k, key] },
      ], [
        { table: "u", key, value: node.spec.name },
        { table: "ledger", key, value: id },
        { table: "hot", key: k, value: key },
      ]);
    }
    await sleep(rng.int(0, 20));
  }
}

/** A PostgreSQL client: `BEGIN; INSERT u; INSERT ledger; COMMIT`, reconnecting after errors. */
async function pgClient(o: LoadOptions, id: string, rng: Prng, done: () => boolean) {
  let conn: { client: pg.Client; node: ChaosNode } | null = null;
  for (let n = 0; !done(); n++) {
    if (!conn) {
      const node = pickNode(o, rng);
      const client = new pg.Client({
        host: "127.0.0.1",
        port: node.pgPort,
        user: "ha",
        password: "ha",
        database: "ha",
        connectionTimeoutMillis: 5_000,
        query_timeout: HTTP_TIMEOUT_MS,
      });
      client.on("error", () => {});
      try {
        await client.connect();
        conn = { client, node };
      } catch {
        await client.end().catch(() => {});
        await sleep(200);
        continue;
      }
    }
    const key = `${id}-${n}`;
    const nodeName = conn.node.spec.name;
    const writes: Write[] = [
      { table: "u", key, value: nodeName },
      { table: "ledger", key, value: id },
    ];
    const start = o.history.now();
    let step = "BEGIN";
    let outcome: Outcome = "ok";
    let body = "COMMIT";
    try {
      await conn.client.query("BEGIN");
      step = "INSERT";
      await conn.client.query("INSERT INTO u(k, v) VALUES ($1, $2)", [key, nodeName]);
      await conn.client.query("INSERT INTO ledger(id, client) VALUES ($1, $2)", [key, id]);
      step = "COMMIT";
      await conn.client.query("COMMIT");
    } catch (e) {
      const err = e as Error & { code?: string };
      const sqlState = /^[0-9A-Z]{5}$/.test(err.code ?? "") ? err.code : undefined;
      outcome = pgErrorOutcome(err.message, step === "COMMIT", sqlState);
      body = `${step}: ${err.message}`;
      const old = conn;
      conn = null;
      old.client.end().catch(() => {});
    }
    o.history.add({
      client: id,
      node: nodeName,
      proto: "pg",
      kind: "tx",
      request: { key, statements: ["BEGIN", "INSERT u", "INSERT ledger", "COMMIT"] },
      status: "pg",
      body: clip(body),
      start,
      end: o.history.now(),
      outcome,
      writes,
    });
    await sleep(rng.int(0, 20));
  }
  await conn?.client.end().catch(() => {});
}

/**
 * Now and then: create a side table, add a column and write a row with it, in one transaction,
 * on any node. Two nodes' ADD COLUMNs faster than they replicate append the columns in different
 * orders: the replicated ALTER TABLE is applied once by name (an existing column is "already
 * done") and rows apply by column name, so the checker compares tables by column name.
 */
async function ddlClient(o: LoadOptions, rng: Prng, done: () => boolean) {
  let table = 0;
  let column = 0;
  for (let n = 0; !done(); n++) {
    await sleep(rng.int(1_500, 4_000));
    if (done()) return;
    const node = pickNode(o, rng);
    if (!node.proc) continue;
    if (column >= 5) [table, column] = [table + 1, 0];
    column++;
    const t = `side_${table}`;
    const c = `c${column}`;
    const key = `d-${n}`;
    await httpOp(o, "ddl", node, "ddl", [
      { sql: `CREATE TABLE IF NOT EXISTS ${t}(id TEXT PRIMARY KEY, v TEXT)` },
      { sql: `ALTER TABLE ${t} ADD COLUMN ${c} TEXT` },
      { sql: `INSERT INTO ${t}(id, v, ${c}) VALUES (?, ?, ?)`, params: [key, key, c] },
    ], [{ table: t, key, value: key }]);
  }
}

/**
 * Writes `probe-<n>` every second on some node and polls every node (one query per node per
 * tick) until each has it.
 */
async function prober(o: LoadOptions, rng: Prng, done: () => boolean): Promise<ProbeResult> {
  const pending = new Map<string, { acked: number; missing: Set<string> }>();
  const latencies: number[] = [];
  let writing = true;
  const write = (async () => {
    for (let n = 0; !done(); n++) {
      const node = pickNode(o, rng);
      const key = `probe-${n}`;
      const op = await httpOp(o, "probe", node, "probe", {
        sql: "INSERT INTO u(k, v) VALUES (?, ?)",
        params: [key, node.spec.name],
      }, [{ table: "u", key, value: node.spec.name }]);
      if (op.outcome === "ok") {
        pending.set(key, { acked: op.end, missing: new Set(o.cluster.nodes.keys()) });
      }
      await sleep(1_000);
    }
    writing = false;
  })();
  while (writing || (pending.size > 0 && o.history.now() < o.until + 5_000)) {
    await sleep(300);
    if (pending.size === 0) continue;
    const keys = [...pending.keys()];
    for (const node of o.cluster.running()) {
      if (node.paused) continue;
      const have = await presentKeys(node, keys).catch(() => null);
      if (!have) continue;
      for (const k of have) pending.get(k)?.missing.delete(node.spec.name);
    }
    for (const [k, p] of pending) {
      if (p.missing.size === 0) {
        latencies.push(o.history.now() - p.acked);
        pending.delete(k);
      }
    }
  }
  await write;
  return { latencies, pending: [...pending.values()].map((p) => p.acked) };
}

async function presentKeys(node: ChaosNode, keys: string[]): Promise<string[]> {
  const r = await fetch(`${node.proc!.url}/query`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({
      sql: `SELECT k FROM u WHERE k IN (${keys.map(() => "?").join(",")})`,
      params: keys,
    }),
    signal: AbortSignal.timeout(5_000),
  });
  if (!r.ok) {
    await r.body?.cancel();
    return [];
  }
  const body = await r.json() as { rows: string[][] };
  return body.rows.map((x) => x[0]);
}
