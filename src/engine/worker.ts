/**
 * Engine worker entry: owns one SQLite connection (the writer, or a reader)
 * and executes requests from the main thread one at a time, so long
 * statements never block the main thread's I/O.
 */
/// <reference lib="deno.worker" />
import { HaError, toHaError } from "../errors/mod.ts";
import {
  Connection,
  type Prepared,
  rejectTransactionControl,
  type StatementKind,
} from "./connection.ts";
import type { PluginFactory, StatementInfo, WriterPlugin } from "./plugin.ts";
import type {
  CheckpointReply,
  DescribeReply,
  ExecReply,
  GroupItem,
  GroupReply,
  GroupRequestItem,
  OpenReply,
  Reply,
  Request,
  TxExecReply,
} from "./protocol.ts";
import { InterruptLib, stoppedError } from "./native/interrupt.ts";
import { readOnlyRefusal } from "./read_only.ts";
import { aggregate, expand, partsOf, readBatch, withIndex } from "./batch.ts";
import type { Statement, StatementResult } from "./types.ts";

/** Statements SQLite refuses inside a transaction; run alone, they run outside one. */
const OUTSIDE_TX = new Set(["PRAGMA", "VACUUM", "ATTACH", "DETACH"]);

let conn: Connection | null = null;
let role: "writer" | "reader" = "reader";
const plugins: WriterPlugin[] = [];
/** Plugins by their `PluginSpec.name`, for commands. */
const pluginsByName = new Map<string, WriterPlugin>();
/** A session transaction (BEGIN … COMMIT) is open on the writer. */
let sessionTx = false;
/** The `ha_interrupt` extension, when the connection loaded it. */
let native: InterruptLib | null = null;

self.onmessage = async (e: MessageEvent<Request>) => {
  const req = e.data;
  // Every request starts a new interrupt scope: client ones with their timeout, ha's own (apply,
  // backup, close) without one. The main thread cancels by this request id.
  const timeoutMs = "timeoutMs" in req ? req.timeoutMs ?? 0 : 0;
  const guard = conn?.guard ?? null;
  if (native && guard !== null) native.begin(guard, req.id, timeoutMs);
  let reply: Reply;
  try {
    reply = { id: req.id, ok: true, value: await handle(req) };
  } catch (err) {
    let h = toHaError(err);
    const stopped = native && guard !== null ? native.reason(guard) : null;
    if (stopped !== null) h = stoppedError(h, stopped, timeoutMs);
    // Tells a session whether its transaction survived the error.
    if (req.t === "txExec") h.details.txOpen = sessionTx;
    reply = {
      id: req.id,
      ok: false,
      error: { code: h.code, message: h.message, details: h.details },
    };
  }
  self.postMessage(reply);
};

async function handle(req: Request): Promise<unknown> {
  if (req.t === "open") {
    role = req.spec.readOnly ? "reader" : "writer";
    conn = new Connection(req.spec);
    native = req.spec.interrupt ? InterruptLib.open(req.spec.interrupt) : null;
    for (const p of req.plugins) {
      const mod = await import(p.url) as { default: PluginFactory };
      const plugin = await mod.default({
        databaseId: req.databaseId,
        db: conn.db,
        options: p.options,
      });
      plugins.push(plugin);
      pluginsByName.set(p.name, plugin);
    }
    if (role === "writer") {
      conn.trackLastInsertId();
      const rewriters = plugins.filter((p) => p.rewriteStatement);
      if (rewriters.length > 0) {
        conn.rewrite = (info) => {
          for (const p of rewriters) {
            const sql = p.rewriteStatement!(info);
            if (sql !== undefined) return sql;
          }
          return undefined;
        };
      }
    }
    return { guard: conn.guard } satisfies OpenReply;
  }
  const c = conn;
  if (!c) throw new HaError("internal", "worker used before open");
  switch (req.t) {
    case "exec":
      return role === "reader" ? readBatch(c, req.stmts) : writeBatch(c, req.stmts);
    case "execGroup":
      return writeGroup(c, req.id, req.items);
    case "describe":
    case "txDescribe": {
      const p = c.prepare(req.sql);
      return { columns: c.describe(req.sql), kind: p.kind, command: p.command } as DescribeReply;
    }
    case "txBegin":
      return txBegin(c, req.sql);
    case "txExec":
      return txExec(c, req.stmt, req.readOnly ?? false);
    case "txRollback":
      rollback(c);
      return null;
    case "backup":
      c.backupTo(req.path);
      return null;
    case "checkpoint": {
      const r = c.db.prepare("PRAGMA wal_checkpoint(PASSIVE)").get() as Record<string, number>;
      return { log: Number(r.log), checkpointed: Number(r.checkpointed) } as CheckpointReply;
    }
    case "command": {
      const commands = pluginsByName.get(req.plugin)?.commands;
      const handler = commands && Object.hasOwn(commands, req.method)
        ? commands[req.method]
        : undefined;
      if (!handler) {
        throw new HaError("internal", `plugin ${req.plugin} has no command ${req.method}`);
      }
      // The client typed the arguments against the same command map (`PluginClient`).
      return await (handler as (args: unknown) => unknown)(req.args);
    }
    case "close":
      if (c.inTransaction) rollback(c);
      for (const p of plugins) p.close?.();
      c.close();
      conn = null;
      return null;
  }
}

function writeBatch(c: Connection, stmts: Statement[]): ExecReply {
  if (sessionTx) throw new HaError("internal", "writer busy with a session transaction");
  const items = expand(stmts);
  const kinds: Record<string, StatementKind> = {};
  const all = items.flatMap((it) => it.parts);
  if (all.length === 1) {
    const p = c.prepare(all[0]);
    kinds[stmts[0].sql] = p.kind;
    rejectTransactionControl(p);
    if (OUTSIDE_TX.has(p.command)) {
      return { results: [c.run(p, items[0].params)], kinds, payloads: [] };
    }
  }
  c.exec("BEGIN IMMEDIATE");
  try {
    const results = items.map((it, i) =>
      withIndex(i, items.length, () => {
        // Prepare each part just before it runs: it may use what the previous one created.
        const ps: Prepared[] = [];
        let result!: StatementResult;
        for (const sql of it.parts) {
          const p = c.prepare(sql);
          ps.push(p);
          rejectTransactionControl(p);
          result = runHooked(c, p, it.params);
        }
        kinds[stmts[i].sql] = aggregate(ps);
        return result;
      })
    );
    const payloads = commit(c);
    return { results, kinds, payloads };
  } catch (e) {
    rollback(c);
    throw e;
  }
}

/** Commands a group transaction takes: plain row changes (no DDL, no transaction control). */
const GROUPABLE = new Set(["INSERT", "UPDATE", "DELETE", "REPLACE"]);

/**
 * Group commit: runs independent write requests in order, consecutive single-statement DML ones
 * in one transaction with a savepoint each (a failing statement rolls back only its own
 * request), so N concurrent writes cost one COMMIT and one set of plugin payloads (one
 * changeset). Anything else runs alone, as `exec`. When the shared transaction cannot commit
 * (a plugin refuses it, e.g. a changeset over the size limit) or SQLite aborted it, nothing of
 * it was committed and its requests run again one by one, so each gets the answer it would
 * have got alone.
 */
function writeGroup(c: Connection, groupId: number, items: GroupRequestItem[]): GroupReply {
  if (sessionTx) throw new HaError("internal", "writer busy with a session transaction");
  const out: GroupItem[] = new Array(items.length);
  const commits: unknown[][] = [];
  let open = false;
  let members: number[] = [];
  const alone = (i: number) => {
    try {
      const r = scoped(items[i], () => writeBatch(c, items[i].stmts));
      commits.push(r.payloads);
      out[i] = { ok: true, results: r.results, kinds: r.kinds, commit: commits.length - 1 };
    } catch (e) {
      out[i] = failed(e);
    }
  };
  const redo = () => {
    const again = members;
    members = [];
    open = false;
    for (const i of again) alone(i);
  };
  const finish = () => {
    if (!open) return;
    if (members.length === 0) {
      open = false;
      return rollback(c); // nothing joined (opened ahead of a statement that ran alone, or failed)
    }
    scope(groupId, 0); // the COMMIT is ha's: no client's timeout or cancel applies
    try {
      commits.push(commit(c));
    } catch {
      return redo(); // commit() rolled back
    }
    for (const i of members) (out[i] as { commit: number }).commit = commits.length - 1;
    members = [];
    open = false;
  };
  c.holdSchema();
  try {
    for (let i = 0; i < items.length; i++) {
      const sql = singleStatement(items[i].stmts);
      // Opened before `groupable` prepares: the schema version it may read is then read inside
      // the write transaction (outside one, each read starts and ends a WAL read transaction).
      if (sql !== null && !open) {
        c.control("BEGIN IMMEDIATE");
        open = true;
      }
      const p = sql === null ? null : groupable(c, sql);
      if (!p) {
        finish();
        alone(i);
        c.holdSchema(); // it may have changed the schema
        continue;
      }
      c.control("SAVEPOINT ha_group");
      try {
        const stmt = items[i].stmts[0];
        const result = scoped(items[i], () => runHooked(c, p, stmt.params));
        c.control("RELEASE ha_group");
        out[i] = { ok: true, results: [result], kinds: { [stmt.sql]: p.kind }, commit: -1 };
        members.push(i);
      } catch (e) {
        out[i] = failed(e);
        if (c.inTransaction) {
          c.exec("ROLLBACK TO ha_group");
          c.exec("RELEASE ha_group");
        } else {
          // SQLite ended the whole transaction (INSERT OR ROLLBACK, SQLITE_FULL...).
          rollback(c);
          redo();
        }
      }
    }
    finish();
  } finally {
    c.releaseSchema();
  }
  return { items: out, commits };
}

/** Starts an interrupt scope: statements until the next one run under `id` and its timeout. */
function scope(id: number, timeoutMs: number): void {
  const guard = conn?.guard ?? null;
  if (native && guard !== null) native.begin(guard, id, timeoutMs);
}

/**
 * Runs one group item in its own interrupt scope: its timeout, and a cancel naming its id;
 * a statement the extension stopped fails with the reason (timeout, cancel, shutdown).
 */
function scoped<T>(item: GroupRequestItem, run: () => T): T {
  scope(item.id, item.timeoutMs);
  try {
    return run();
  } catch (e) {
    const guard = conn?.guard ?? null;
    const stopped = native && guard !== null ? native.reason(guard) : null;
    throw stopped !== null ? stoppedError(toHaError(e), stopped, item.timeoutMs) : e;
  }
}

/** The SQL of a request of one statement without `;`-separated parts, else null. */
function singleStatement(stmts: Statement[]): string | null {
  if (stmts.length !== 1 || typeof stmts[0]?.sql !== "string") return null;
  const parts = partsOf(stmts[0].sql);
  return parts.length === 1 ? parts[0] : null;
}

/** The prepared statement of a single statement that may join a group transaction, else null. */
function groupable(c: Connection, sql: string): Prepared | null {
  try {
    const p = c.prepare(sql);
    return p.kind === "write" && GROUPABLE.has(p.command) ? p : null;
  } catch {
    return null; // run alone: it reports its own error
  }
}

function failed(e: unknown): GroupItem {
  const h = toHaError(e);
  return { ok: false, error: { code: h.code, message: h.message, details: h.details } };
}

function runHooked(c: Connection, p: Prepared, params: Statement["params"]): StatementResult {
  if (p.kind === "read") return c.run(p, params);
  const info: StatementInfo = { sql: p.sourceSql ??= p.stmt.sourceSQL, actions: p.actions };
  for (const pl of plugins) pl.beforeStatement?.(info);
  const r = c.run(p, params);
  for (const pl of plugins) pl.afterStatement?.(info);
  return r;
}

/** Runs the plugins' beforeCommit hooks, then COMMIT; returns their payloads. */
function commit(c: Connection): unknown[] {
  const payloads: unknown[] = [];
  try {
    for (const pl of plugins) {
      const v = pl.beforeCommit?.();
      if (v !== undefined) payloads.push(v);
    }
    c.control("COMMIT");
  } catch (e) {
    rollback(c);
    throw e;
  }
  sessionTx = false;
  return payloads;
}

function rollback(c: Connection): void {
  if (c.inTransaction) {
    try {
      c.exec("ROLLBACK");
    } catch { /* the transaction may already be gone (SQLite auto-rollback) */ }
  }
  sessionTx = false;
  for (const pl of plugins) pl.afterRollback?.();
}

function txBegin(c: Connection, sql: string): StatementResult {
  if (sessionTx || c.inTransaction) {
    throw new HaError("bad_request", "there is already a transaction in progress");
  }
  const p = c.prepare(sql);
  if (p.kind !== "begin") throw new HaError("internal", `not a BEGIN statement: ${sql}`);
  const r = c.run(p, undefined);
  sessionTx = true;
  return r;
}

/**
 * One statement inside a session transaction, classified here on the writer (a reader cannot
 * see what the transaction created). COMMIT/END and ROLLBACK end the transaction; other errors
 * leave it open.
 */
function txExec(c: Connection, stmt: Statement, readOnly: boolean): TxExecReply {
  if (!sessionTx) throw new HaError("internal", "no session transaction");
  const p = c.prepare(stmt.sql);
  if (readOnly && p.kind === "write") throw readOnlyRefusal(p.command);
  if (p.kind === "begin") {
    throw new HaError("bad_request", "there is already a transaction in progress");
  }
  if (p.kind === "commit") {
    return { result: ended("COMMIT"), ended: "commit", payloads: commit(c) };
  }
  if (p.kind === "rollback") {
    rollback(c);
    return { result: ended("ROLLBACK"), ended: "rollback", payloads: [] };
  }
  try {
    return { result: runHooked(c, p, stmt.params), payloads: [] };
  } catch (e) {
    // SQLite rolls back the whole transaction on some errors (e.g. SQLITE_FULL).
    if (!c.inTransaction) rollback(c);
    throw e;
  }
}

function ended(command: string): StatementResult {
  return { columns: [], rows: [], rowsAffected: 0, lastInsertId: 0n, command };
}
