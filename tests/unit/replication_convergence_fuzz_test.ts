/**
 * Convergence under random histories, without NATS: three nodes write the same few rows
 * (upserts, updates, deletes, inserts that fail; alone, in multi-statement transactions, in
 * client transactions that commit or roll back, and in concurrent requests that group commit
 * joins into one changeset), and each node applies the shared stream in batches of random size
 * at random times, so catch-ups overlap local writes the way a stalled consumer's do, among
 * duplicates, re-deliveries and invalid messages. Rows are identified by primary key (`hot`) and
 * by rowid (`r`). At the end every node holds, per row, what the change with the highest
 * (hlc, node) left, and the same row versions; also when every batch goes through the interceptor
 * path with a resolver that decides as last-writer-wins does.
 *
 * A seed that fails replays alone: `HA_FUZZ_SEEDS=n deno test -A <this file>`; more seeds:
 * `HA_FUZZ_SEEDS=1-500`.
 */
import assert from "node:assert/strict";
import { type Change, compareVersion, decodeChangeSet, decodeValue } from "../../src/cdc/mod.ts";
import type { InterceptorHost } from "../../src/interceptor/mod.ts";
import { testInterceptor } from "../../src/interceptor/testing.ts";
import { createLogger } from "../../src/log/mod.ts";
import { applyIntercepted } from "../../src/replication/apply_intercepted.ts";
import { replicationClient } from "../../src/replication/plugin_api.ts";
import { Prng } from "../chaos/prng.ts";
import { close, node, rows, sql, type TestNode } from "./helpers/replication_nodes.ts";

const KEYS = ["h0", "h1", "h2"];
const logger = createLogger("error");
const STEPS = 120;

/**
 * One random history; returns nothing, asserts convergence and the LWW outcome. With `host`,
 * batches go through the interceptor path (conflict detection, the hook's resolutions).
 */
async function history(seed: number, host?: InterceptorHost): Promise<void> {
  const r = new Prng(seed);
  const nodes: TestNode[] = [];
  for (const name of ["a", "b", "c"]) nodes.push(await node(name, { interrupt: true }));
  const stream: string[] = [];
  /** How far each node has applied the stream (messages handed to it). */
  const cursor = new Map<TestNode, number>(nodes.map((n) => [n, 0]));
  const collect = () => {
    for (const n of nodes) for (const p of n.out.splice(0)) stream.push(p.data);
  };
  const apply = async (n: TestNode, count: number) => {
    const from = cursor.get(n)!;
    const batch = stream.slice(from, from + count).map((data, i) => ({
      seq: from + i + 1,
      subject: "s",
      data,
    }));
    if (batch.length === 0) return;
    const db = n.engine.defaultDb;
    const res = host
      ? await applyIntercepted(
        { host, db, self: { node: n.name }, logger, consumer: "fuzz" },
        batch,
      )
      : await replicationClient(db).call("apply", batch);
    assert.equal(res.error, null, `seed ${seed}: ${n.name} apply: ${res.error?.message}`);
    cursor.set(n, from + batch.length);
  };
  let value = 0;
  const statement = (n: TestNode) => {
    const k = r.pick(KEYS);
    const v = `${n.name}${++value}`;
    switch (r.int(0, 7)) {
      case 5:
        // A table without a primary key: rows are identified by rowid.
        return { sql: "INSERT INTO r(v) VALUES (?)", params: [v] };
      case 6:
        return { sql: `UPDATE r SET v = ? WHERE ${NTH_ROW}`, params: [v, r.int(0, 3)] };
      case 7:
        return { sql: `DELETE FROM r WHERE ${NTH_ROW}`, params: [r.int(0, 3)] };
      case 4:
        // Fails when the row is there: its request (or transaction) is rolled back.
        return { sql: "INSERT INTO hot(k, v) VALUES (?, ?)", params: [k, v] };
      case 0:
        return { sql: "DELETE FROM hot WHERE k = ?", params: [k] };
      case 1:
        return { sql: "UPDATE hot SET v = ? WHERE k = ?", params: [v, k] };
      case 2:
        return { sql: "INSERT INTO u(v) VALUES (?)", params: [v] };
      default:
        return {
          sql: "INSERT INTO hot(k, v) VALUES (?, ?) ON CONFLICT(k) DO UPDATE SET v = excluded.v",
          params: [k, v],
        };
    }
  };
  try {
    await sql(nodes[0], "CREATE TABLE hot(k TEXT PRIMARY KEY, v TEXT)");
    await sql(nodes[0], "CREATE TABLE u(id INTEGER PRIMARY KEY, v TEXT)");
    await sql(nodes[0], "CREATE TABLE r(v TEXT)");
    collect();
    for (const n of nodes.slice(1)) await apply(n, stream.length);
    for (let step = 0; step < STEPS; step++) {
      const n = r.pick(nodes);
      const db = n.engine.defaultDb;
      const shape = r.int(0, 3);
      if (shape === 0) await tolerate(db.execute([statement(n)]));
      else if (shape === 1) {
        // One transaction of several statements: one changeset.
        await tolerate(db.execute(Array.from({ length: r.int(2, 3) }, () => statement(n))));
      } else if (shape === 2) {
        // Concurrent autocommit requests: group commit may join them into one changeset.
        await Promise.all(
          Array.from({ length: r.int(2, 4) }, () => tolerate(db.execute([statement(n)]))),
        );
      } else {
        // A client's transaction (BEGIN … COMMIT or ROLLBACK) with an apply waiting on it.
        const session = db.session();
        await session.execute({ sql: "BEGIN" });
        const waiting = r.chance(0.5) ? apply(n, r.int(1, 12)) : Promise.resolve();
        let ok = true;
        for (let i = r.int(1, 3); i > 0 && ok; i--) {
          ok = await tolerate(session.execute(statement(n)));
        }
        if (ok) await session.execute({ sql: r.chance(0.8) ? "COMMIT" : "ROLLBACK" });
        await session.close();
        await waiting;
      }
      collect();
      // An outbox publishes a changeset again (its ack was lost): a later duplicate.
      if (r.chance(0.05)) stream.push(r.pick(stream));
      // An invalid message (dead-lettered): the batch it is in is redone changeset by changeset.
      if (r.chance(0.03)) stream.push(INVALID);
      if (r.chance(0.1)) {
        // A consumer recreated from an older position: applied messages come again.
        const n = r.pick(nodes);
        cursor.set(n, Math.max(0, cursor.get(n)! - r.int(1, 6)));
      }
      if (r.chance(0.4)) {
        // An apply batch while more local writes arrive (the writer orders them).
        const w = r.pick(nodes);
        await Promise.all([
          apply(r.pick(nodes), r.int(1, 12)),
          tolerate(w.engine.defaultDb.execute([statement(w)])),
        ]);
        collect();
      }
    }
    for (const n of nodes) {
      while (cursor.get(n)! < stream.length) await apply(n, r.int(1, 12));
    }
    const expected = lww(stream);
    for (const n of nodes) {
      const hot = await rows(n, "SELECT k, v FROM hot ORDER BY k");
      assert.equal(hot, JSON.stringify(expected.hot), `seed ${seed}: ${n.name}`);
      const byRowid = await rows(n, "SELECT rowid, v FROM r ORDER BY rowid");
      assert.equal(byRowid, JSON.stringify(expected.r), `seed ${seed}: ${n.name}`);
    }
    const versions = "SELECT tbl, key, hlc, node, deleted FROM _ha_versions ORDER BY tbl, key";
    const first = await rows(nodes[0], versions);
    for (const n of nodes.slice(1)) assert.equal(await rows(n, versions), first, `seed ${seed}`);
  } finally {
    await close(...nodes);
  }
}

/** Whether a client request succeeded; a failed plain INSERT of a row that exists is expected. */
async function tolerate(p: Promise<unknown>): Promise<boolean> {
  try {
    await p;
    return true;
  } catch (e) {
    if (!/UNIQUE constraint failed/.test(String(e))) throw e;
    return false;
  }
}

/** A message no node can decode. */
const INVALID = '{"not a changeset"';

/** The n-th row of `r` (the statement's last parameter). */
const NTH_ROW = "rowid = (SELECT rowid FROM r ORDER BY rowid LIMIT 1 OFFSET ?)";

/** Per table, what identifies a row in a change, and the column shown in the outcome. */
const TABLES = {
  hot: { key: (c: Change) => String((c.new_values ?? c.old_values)![0]), value: 1 },
  r: { key: (c: Change) => String(decodeValue((c.new_rowid ?? c.old_rowid)!)), value: 0 },
};

/**
 * The rows of `hot` and `r` last-writer-wins leaves after every changeset of `stream`, as `rows`
 * shows them; asserts that each changeset carries only its origin's writes.
 */
function lww(stream: string[]): Record<keyof typeof TABLES, [string, string][]> {
  const last = new Map<string, { hlc: number; node: string; change: Change }>();
  for (const data of stream) {
    if (data === INVALID) continue;
    const cs = decodeChangeSet(data);
    for (const c of cs.changes) {
      // A node publishes only its own writes (values are named for their writer), never
      // changes it applied.
      for (const v of c.new_values ?? []) {
        if (typeof v === "string" && /^[abc]\d+$/.test(v)) {
          assert.equal(v[0], cs.node, `${cs.node} published ${v}`);
        }
      }
      const t = TABLES[c.table as keyof typeof TABLES];
      if (!t) continue;
      const id = `${c.table}\u0000${t.key(c)}`;
      const hlc = c.hlc ?? cs.hlc;
      const prev = last.get(id);
      // Later changes of one changeset (same version) replace earlier ones.
      if (!prev || compareVersion(hlc, cs.node, prev.hlc, prev.node) >= 0) {
        last.set(id, { hlc, node: cs.node, change: c });
      }
    }
  }
  const outcome = (table: keyof typeof TABLES) =>
    [...last.entries()]
      .filter(([id, w]) => id.startsWith(`${table}\u0000`) && w.change.operation !== "DELETE")
      .map(([, w]) => {
        const t = TABLES[table];
        return [t.key(w.change), String(w.change.new_values![t.value])] as [string, string];
      })
      .sort(([x], [y]) => table === "r" ? Number(x) - Number(y) : x < y ? -1 : x > y ? 1 : 0);
  return { hot: outcome("hot"), r: outcome("r") };
}

/**
 * A resolver that decides as last-writer-wins does (the newer version's side): through the
 * interceptor path, the outcome must be exactly LWW's.
 */
const LWW_RESOLVER = `
export const resolveConflict = (c) => {
  const l = c.local, r = c.remote;
  if (l.hlc === null) return "remote";
  if (r.hlc !== l.hlc) return r.hlc > l.hlc ? "remote" : "local";
  return r.node > l.node ? "remote" : "local";
};`;

const [from, to] = (Deno.env.get("HA_FUZZ_SEEDS") ?? "1-8").split("-").map(Number);
for (let seed = from; seed <= (to ?? from); seed++) {
  Deno.test(`random histories converge to last-writer-wins (seed ${seed})`, () => history(seed));
}
for (let seed = from; seed <= (to ?? from); seed += 2) {
  Deno.test(`… and through an interceptor resolving as LWW does (seed ${seed})`, async () => {
    await using t = await testInterceptor(LWW_RESOLVER);
    await history(seed, t.host);
  });
}
