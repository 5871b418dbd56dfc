/**
 * Cluster-chosen ids (`--id-scheme`) with real processes: clients on every node insert at the
 * same time, over HTTP and psql, into tables with INTEGER PRIMARY KEY AUTOINCREMENT, INTEGER
 * PRIMARY KEY and no primary key (rowid), letting the database choose the id. Every acknowledged
 * row must be on every node under the id its client was told. Nodes restarted from a snapshot
 * and new memory nodes keep ids unique; explicit ids stay as given.
 */
import assert from "node:assert/strict";
import { Cluster, freePort, type HaNode, waitFor, withCluster } from "./helpers/cluster.ts";
import { psql, python } from "./pgwire_helpers.ts";
import { startHa } from "./helpers/ha.ts";

const opts = { sanitizeOps: false, sanitizeResources: false };

const TABLES = {
  auto: "CREATE TABLE auto(id INTEGER PRIMARY KEY AUTOINCREMENT, who TEXT, i INTEGER)",
  ipk: "CREATE TABLE ipk(id INTEGER PRIMARY KEY, who TEXT, i INTEGER)",
  plain: "CREATE TABLE plain(who TEXT, i INTEGER)",
};
type Table = keyof typeof TABLES;
const NAMES = Object.keys(TABLES) as Table[];

/** A row a client was told about: its table, id and content. */
interface Told {
  table: Table;
  id: bigint;
  who: string;
}

/** POSTs `body`; JSON integers come back as bigint (63-bit ids are beyond 2^53). */
async function post(node: HaNode, body: unknown): Promise<{ rows: unknown[][] }> {
  const res = await fetch(`${node.url}/query`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify(body),
  });
  const text = await res.text();
  if (!res.ok) throw new Error(`HTTP ${res.status}: ${text}`);
  // The reviver's third argument (JSON.parse source text access) has the number's digits.
  const reviver = (_k: string, v: unknown, ctx?: { source?: string }) =>
    typeof v === "number" && Number.isInteger(v) && ctx?.source ? BigInt(ctx.source) : v;
  return JSON.parse(text, reviver as (k: string, v: unknown) => unknown);
}

/** One HTTP client: `n` inserts into each table without an id; returns what it was told. */
async function httpClient(node: HaNode, who: string, n: number): Promise<Told[]> {
  const told: Told[] = [];
  for (let i = 0; i < n; i++) {
    for (const table of NAMES) {
      const w = `${who}-${i}`;
      const r = await post(node, {
        sql: `INSERT INTO ${table}(who, i) VALUES (?, ?)`,
        params: [w, i],
      });
      const id = r.rows[0][1] as bigint;
      told.push({ table, id, who: w });
    }
  }
  return told;
}

/** One psql session: `n` inserts into each table with RETURNING (and a NULL id for ipk). */
async function psqlClient(pgPort: number, who: string, n: number): Promise<Told[]> {
  const lines: string[] = [];
  const expect: { table: Table; who: string }[] = [];
  for (let i = 0; i < n; i++) {
    for (const table of NAMES) {
      const w = `${who}-${i}`;
      lines.push(
        table === "ipk"
          ? `INSERT INTO ipk VALUES (NULL, '${w}', ${i}) RETURNING id;`
          : `INSERT INTO ${table}(who, i) VALUES ('${w}', ${i}) RETURNING ${
            table === "plain" ? "rowid" : "id"
          };`,
      );
      expect.push({ table, who: w });
    }
  }
  const r = await psql(pgPort, ["-At", "-v", "ON_ERROR_STOP=1", "-d", "ha.db"], {
    stdin: lines.join("\n"),
  });
  assert.equal(r.code, 0, r.stderr);
  const ids = r.stdout.split("\n").filter((l) => /^\d+$/.test(l)).map((l) => BigInt(l));
  assert.equal(ids.length, expect.length, r.stdout);
  return expect.map((e, j) => ({ ...e, id: ids[j] }));
}

/** One psycopg connection (extended protocol, bound parameters): `n` inserts per table. */
async function psycopgClient(pgPort: number, who: string, n: number): Promise<Told[]> {
  const r = await python(`
import psycopg
with psycopg.connect("host=127.0.0.1 port=${pgPort} user=ha password=ha dbname=ha", autocommit=True) as c:
    for i in range(${n}):
        for t, col in (("auto", "id"), ("ipk", "id"), ("plain", "rowid")):
            w = "${who}-%d" % i
            row = c.execute("INSERT INTO " + t + "(who, i) VALUES (%s, %s) RETURNING " + col, (w, i)).fetchone()
            print(t, w, row[0])
`);
  assert.equal(r.code, 0, r.stderr);
  return r.stdout.trim().split("\n").map((l) => {
    const [table, w, id] = l.split(" ");
    return { table: table as Table, who: w, id: BigInt(id) };
  });
}

/** Every told row is on `node` with its id, and nothing else is. */
async function assertHolds(node: HaNode, told: Told[]): Promise<void> {
  for (const table of NAMES) {
    const r = await post(node, { sql: `SELECT rowid, who FROM ${table}` });
    const have = new Map((r.rows as [bigint, string][]).map(([id, who]) => [id, who]));
    const want = told.filter((t) => t.table === table);
    for (const t of want) {
      assert.equal(have.get(t.id), t.who, `${node.name}: ${table} row ${t.id} (${t.who})`);
    }
    assert.equal(have.size, want.length, `${node.name}: ${table} has ${have.size} rows`);
  }
}

async function createTables(node: HaNode): Promise<void> {
  for (const sql of Object.values(TABLES)) await post(node, { sql });
}

async function waitRows(nodes: HaNode[], total: number): Promise<void> {
  await waitFor(`${total} rows in every table on every node`, async () => {
    for (const n of nodes) {
      for (const t of NAMES) {
        const r = await post(n, { sql: `SELECT count(*) FROM ${t}` });
        if (r.rows[0][0] !== BigInt(total)) return false;
      }
    }
    return true;
  }, 60_000);
}

/** The slot field of a `cluster` id. */
const slotOf = (id: bigint) => Number((id >> 12n) & 1023n);

Deno.test(
  "two nodes: concurrent inserts over HTTP, psql and psycopg keep every row and its id",
  opts,
  async () => {
    const cluster = new Cluster();
    try {
      const pg1 = freePort();
      const pg2 = freePort();
      const n1 = await cluster.start("node1", {
        embeddedNats: true,
        args: ["--pg-port", `${pg1}`],
      });
      const n2 = await cluster.start("node2", {
        natsUrl: n1.natsUrl!,
        args: ["--pg-port", `${pg2}`],
      });
      await createTables(n1);
      await waitFor(
        "tables on node2",
        async () =>
          (await post(n2, { sql: "SELECT count(*) FROM sqlite_schema WHERE name = 'plain'" }))
            .rows.toString() === "1",
        30_000,
      );
      const told = (await Promise.all([
        ...[0, 1, 2].map((c) => httpClient(n1, `n1-http${c}`, 15)),
        ...[0, 1, 2].map((c) => httpClient(n2, `n2-http${c}`, 15)),
        psqlClient(pg1, "n1-psql", 15),
        psqlClient(pg2, "n2-psql", 15),
        psycopgClient(pg1, "n1-psycopg", 15),
        psycopgClient(pg2, "n2-psycopg", 15),
      ])).flat();
      // Explicit ids are kept as given (also a NULL-free explicit rowid of a table without PK).
      await post(n1, { sql: "INSERT INTO ipk(id, who, i) VALUES (7, 'explicit-7', 0)" });
      await post(n2, { sql: "INSERT INTO plain(rowid, who, i) VALUES (9, 'explicit-9', 0)" });
      await post(n2, { sql: "INSERT INTO auto(id, who, i) VALUES (11, 'explicit-11', 0)" });
      told.push({ table: "ipk", id: 7n, who: "explicit-7" });
      told.push({ table: "plain", id: 9n, who: "explicit-9" });
      told.push({ table: "auto", id: 11n, who: "explicit-11" });
      const perTable = told.length / NAMES.length;
      assert.equal(perTable, 10 * 15 + 1);
      await waitRows([n1, n2], perTable);
      for (const n of [n1, n2]) {
        await assertHolds(n, told);
        // Ids the database chose never collide: no conflict at all.
        const status = (await n.get("/replications")).body as { conflicts: unknown };
        assert.deepEqual(status.conflicts, { "ha.db": {} });
      }
      // Each node's ids carry its own slot.
      const slots = (prefix: string) =>
        new Set(told.filter((t) => t.who.startsWith(prefix)).map((t) => slotOf(t.id)));
      assert.equal(slots("n1-").size, 1);
      assert.equal(slots("n2-").size, 1);
      assert.notDeepEqual([...slots("n1-")], [...slots("n2-")]);
    } finally {
      await cluster.stop();
    }
  },
);

Deno.test(
  "three nodes (js-safe): a node restarted from a snapshot and a new memory node keep ids unique",
  opts,
  async () => {
    const cluster = new Cluster();
    try {
      const args = ["--id-scheme", "js-safe"];
      const n1 = await cluster.start("node1", { embeddedNats: true, args });
      let n2 = await cluster.start("node2", { natsUrl: n1.natsUrl!, args });
      await createTables(n1);
      await waitFor(
        "tables on node2",
        async () =>
          (await post(n2, { sql: "SELECT count(*) FROM sqlite_schema WHERE name = 'plain'" }))
            .rows[0][0] === 1n,
        30_000,
      );
      const told = (await Promise.all([
        httpClient(n1, "n1-a", 10),
        httpClient(n2, "n2-a", 10),
      ])).flat();
      await waitRows([n1, n2], 20);
      const snap = await fetch(`${n2.url}/snapshot`, { method: "POST" });
      assert.equal(snap.status, 200, await snap.text());
      await cluster.kill(n2);
      n2 = await cluster.start("node2", {
        natsUrl: n1.natsUrl!,
        args: [...args, "--from-latest-snapshot"],
        reuse: n2,
      });
      const n3 = await cluster.start("node3", { natsUrl: n1.natsUrl!, args });
      await waitRows([n2, n3], 20);
      told.push(
        ...(await Promise.all([
          httpClient(n1, "n1-b", 10),
          httpClient(n2, "n2-b", 10),
          httpClient(n3, "n3-b", 10),
        ])).flat(),
      );
      await waitRows([n1, n2, n3], 50);
      for (const n of [n1, n2, n3]) {
        await assertHolds(n, told);
      }
      assert.ok(
        told.every((t) => t.id <= BigInt(Number.MAX_SAFE_INTEGER)),
        "53-bit ids",
      );
      const slots = (prefix: string) => [
        ...new Set(
          told.filter((t) => t.who.startsWith(prefix)).map((t) => Number((t.id >> 6n) & 63n)),
        ),
      ];
      assert.deepEqual(slots("n2-"), slots("n2-a"), "node2 keeps its slot after the restart");
      assert.equal(new Set([...slots("n1-"), ...slots("n2-"), ...slots("n3-")]).size, 3);
    } finally {
      await cluster.stop();
    }
  },
);

Deno.test(
  "last_insert_id is the statement's own, as SQLite says, never an internal id",
  opts,
  async () => {
    const cluster = new Cluster();
    try {
      const n1 = await cluster.start("node1", { embeddedNats: true });
      const lastId = async (sql: string) => (await post(n1, { sql })).rows[0][1];
      await lastId("CREATE TABLE r(id INTEGER PRIMARY KEY, v TEXT)");
      await lastId("CREATE TABLE w(k TEXT PRIMARY KEY, v TEXT) WITHOUT ROWID");
      assert.equal(await lastId("INSERT INTO r(id, v) VALUES (3, 'x')"), 3n);
      assert.equal(await lastId("INSERT INTO w VALUES ('a', 'b')"), 3n);
      assert.equal(await lastId("CREATE TABLE z(a)"), 3n);
      assert.equal(await lastId("UPDATE r SET v = 'y'"), 3n);
      assert.equal(await lastId("INSERT INTO w VALUES ('c', 'd')"), 3n);
      const chosen = await lastId("INSERT INTO r(v) VALUES ('chosen')");
      const row = await post(n1, { sql: "SELECT id FROM r WHERE v = 'chosen'" });
      assert.equal(chosen, row.rows[0][0]);
      assert.equal(await lastId("DELETE FROM w"), chosen);
    } finally {
      await cluster.stop();
    }
  },
);

Deno.test(
  "the same explicit key inserted on two nodes at once is a counted, logged, kept conflict",
  opts,
  async () => {
    await withCluster(2, async ([n1, n2], cluster) => {
      await post(n1, { sql: "CREATE TABLE kv(k INTEGER PRIMARY KEY, v TEXT)" });
      await waitFor(
        "kv on node2",
        async () =>
          (await post(n2, { sql: "SELECT count(*) FROM sqlite_schema WHERE name = 'kv'" }))
            .rows[0][0] === 1n,
        30_000,
      );
      const keys = Array.from({ length: 30 }, (_, i) => i + 1);
      const acked = async (n: HaNode, k: number) => {
        try {
          await post(n, { sql: "INSERT INTO kv VALUES (?, ?)", params: [k, `${n.name}-${k}`] });
          return true;
        } catch (e) {
          assert.match(String(e), /HTTP 409/);
          return false;
        }
      };
      const both = await Promise.all(keys.map(async (k) => {
        const [a, b] = await Promise.all([acked(n1, k), acked(n2, k)]);
        return a && b ? k : null;
      }));
      const twice = both.filter((k) => k !== null);
      assert.ok(twice.length > 0, "some keys were acknowledged by both nodes");
      await cluster.waitConverged([n1, n2], ["kv"]);
      for (const n of [n1, n2]) {
        const status = (await n.get("/replications")).body as {
          conflicts: Record<string, Record<string, number>>;
        };
        assert.deepEqual(status.conflicts, { "ha.db": { kv: twice.length } }, n.name);
        // Each key's losing version is kept: with the surviving row, both writes are retrievable.
        const lost = await post(n, {
          sql: "SELECT key, loser_node, loser_values FROM _ha_conflicts WHERE tbl = 'kv'",
        });
        const rows = await post(n, { sql: "SELECT k, v FROM kv" });
        const final = new Map(rows.rows.map(([k, v]) => [String(k), v]));
        assert.equal(lost.rows.length, twice.length);
        for (const [key, node, values] of lost.rows as [string, string, string][]) {
          const k = JSON.parse(key)[0];
          const loser = JSON.parse(values)[1];
          assert.equal(loser, `${node}-${k}`);
          assert.notEqual(final.get(String(k)), loser);
        }
      }
      // The warning (the log file has the node's lines once it has ended).
      await cluster.kill(n1);
      await waitFor(
        "node1 logged the conflict",
        () =>
          /"level":"warn".*"msg":"replication conflict".*"table":"kv".*"winner":"node\d".*"loser":"node\d"/
            .test(n1.log()),
        10_000,
      );
    });
  },
);

Deno.test(
  "ids: before NATS is reached, INSERT … RETURNING is refused and the node goes on",
  opts,
  async () => {
    // Nothing listens on the replication URL: the node never gets an id slot, so `_ha_id()`
    // throws inside a statement read row by row (node:sqlite's all() hung on that).
    const ha = await startHa({
      args: [
        "-n",
        "ids-no-slot",
        "-m",
        "--nats-port",
        "0",
        "--replication-url",
        `nats://127.0.0.1:${freePort()}`,
      ],
    });
    try {
      const query = async (sql: string) => {
        const res = await fetch(`${ha.url}/query`, {
          method: "POST",
          headers: { "content-type": "application/json" },
          body: JSON.stringify({ sql }),
        });
        return { status: res.status, body: await res.json() };
      };
      // Acknowledged as committed here and queued for NATS (503 "committed locally").
      const ack = (r: { status: number; body: { error?: string } }) =>
        r.status === 200 || (r.status === 503 && /committed locally/.test(r.body.error ?? ""));
      const created = await query("CREATE TABLE t(id INTEGER PRIMARY KEY, b TEXT)");
      assert.ok(ack(created), JSON.stringify(created.body));
      for (const sql of ["INSERT INTO t(b) VALUES ('x') RETURNING id", "SELECT _ha_id()"]) {
        const r = await query(sql);
        assert.equal(r.status, 503, JSON.stringify(r.body));
        assert.match(r.body.error, /no id slot yet/);
      }
      const given = await query("INSERT INTO t(id, b) VALUES (7, 'given') RETURNING id");
      assert.ok(ack(given), JSON.stringify(given.body));
      // A failing INSERT … RETURNING still fails (node:sqlite's iterate() would end silently).
      const dup = await query("INSERT INTO t(id, b) VALUES (7, 'again') RETURNING id");
      assert.equal(dup.status, 409, JSON.stringify(dup.body));
      assert.match(dup.body.error, /UNIQUE constraint failed/);
      assert.deepEqual((await query("SELECT id, b FROM t")).body.rows, [[7, "given"]]);
    } finally {
      await ha.stop();
    }
  },
);
