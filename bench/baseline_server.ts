/**
 * The in-process anchor of `deno task bench compare`: the smallest honest HTTP front of SQLite
 * (JSON in, a cached prepared statement, JSON out: a query's rows, else the change count; file
 * database in WAL mode, synchronous NORMAL, as ha's defaults). Usage: `deno run -A bench/baseline_server.ts <port> <db file>`.
 */
import { DatabaseSync, type StatementSync } from "node:sqlite";

const [port, file] = Deno.args;
const db = new DatabaseSync(file);
db.exec("PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA busy_timeout=5000;");
db.exec("CREATE TABLE IF NOT EXISTS model (key TEXT, value TEXT, UNIQUE(key))");
const cache = new Map<string, StatementSync>();
Deno.serve({ port: Number(port), hostname: "127.0.0.1", onListen() {} }, async (req) => {
  const { sql, params } = await req.json();
  let st = cache.get(sql);
  if (!st) cache.set(sql, st = db.prepare(sql));
  if (st.columns().length) {
    const rows = st.all(...params).map((r) => Object.values(r));
    return Response.json({ columns: st.columns().map((c) => c.name), rows });
  }
  const r = st.run(...params);
  return Response.json({
    columns: ["rows_affected", "last_insert_id"],
    rows: [[r.changes, r.lastInsertRowid]],
  });
});
