/**
 * Running a request's statements on one connection, shared by the engine workers and the
 * main-thread reader (`inline_reader.ts`): splitting multi-statement strings, a read batch, and
 * statement numbering in errors.
 */
import { HaError, toHaError } from "../errors/mod.ts";
import type { Connection, Prepared, StatementKind } from "./connection.ts";
import type { ExecReply } from "./protocol.ts";
import { splitStatements } from "./split.ts";
import type { Statement } from "./types.ts";

const SPLIT_CACHE_SIZE = 256;
const splits = new Map<string, string[]>();

/** `splitStatements`, remembered for the texts seen last (the same few run over and over). */
export function partsOf(sql: string): string[] {
  let parts = splits.get(sql);
  if (parts === undefined) {
    parts = splitStatements(sql);
    if (splits.size >= SPLIT_CACHE_SIZE) splits.delete(splits.keys().next().value!);
    splits.set(sql, parts);
  }
  return parts;
}

/** Splits every statement's text; params are only allowed with single statements. */
export function expand(stmts: Statement[]): { parts: string[]; params: Statement["params"] }[] {
  return stmts.map((s, i) => {
    if (typeof s?.sql !== "string") {
      throw new HaError("bad_request", `statement ${i + 1}: "sql" must be a string`);
    }
    const parts = partsOf(s.sql);
    if (parts.length === 0) throw new HaError("bad_request", `statement ${i + 1}: empty SQL`);
    if (parts.length > 1 && s.params !== undefined && s.params !== null) {
      throw new HaError(
        "bad_request",
        `statement ${i + 1}: parameters cannot be used with several statements in one "sql"`,
      );
    }
    return { parts, params: s.params };
  });
}

/** Runs `f`; an error of statement `i` of `n` says which one it was. */
export function withIndex<T>(i: number, n: number, f: () => T): T {
  try {
    return f();
  } catch (e) {
    const h = toHaError(e);
    if (n > 1) h.details.statement = i + 1;
    throw n > 1 ? new HaError(h.code, `statement ${i + 1}: ${h.message}`, h.details) : h;
  }
}

/**
 * Runs a request's statements on a read-only connection (several: in one read transaction).
 * `needsWriter` when one of them is not a read, or fails to prepare here.
 */
export function readBatch(c: Connection, stmts: Statement[]): ExecReply {
  if (stmts.length === 1 && typeof stmts[0]?.sql === "string") {
    const parts = partsOf(stmts[0].sql);
    if (parts.length === 1) return readOne(c, stmts[0].sql, parts[0], stmts[0].params);
  }
  const items = expand(stmts);
  const kinds: Record<string, StatementKind> = {};
  let prepared: Prepared[][];
  try {
    prepared = items.map((it, i) =>
      it.parts.map((sql) => withIndex(i, items.length, () => c.prepare(sql)))
    );
  } catch {
    // A later statement may depend on an earlier one (CREATE then INSERT), and a reader's
    // cached schema may be stale without SQLite noticing at prepare time (a new INSTEAD OF
    // trigger: "cannot modify v because it is a view"): the writer answers authoritatively.
    return { results: [], needsWriter: true, kinds, payloads: [] };
  }
  for (const [i, ps] of prepared.entries()) kinds[stmts[i].sql] = aggregate(ps);
  if (prepared.flat().some((p) => p.kind !== "read")) {
    return { results: [], needsWriter: true, kinds, payloads: [] };
  }
  const multi = prepared.flat().length > 1;
  if (multi) c.exec("BEGIN");
  try {
    const results = prepared.map((ps, i) =>
      withIndex(i, items.length, () => last(ps.map((p) => c.run(p, items[i].params))))
    );
    return { results, kinds, payloads: [] };
  } catch (e) {
    // SQLITE_READONLY: it wanted to write after all; the writer runs it (nothing happened here).
    if (((toHaError(e).details.sqliteCode ?? 0) & 0xff) === SQLITE_READONLY) {
      for (const s of stmts) kinds[s.sql] = "write";
      return { results: [], needsWriter: true, kinds, payloads: [] };
    }
    throw e;
  } finally {
    if (multi && c.inTransaction) c.exec("COMMIT");
  }
}

const SQLITE_READONLY = 8;

/**
 * `readBatch` of one statement in one part (a point select): the same outcome without the
 * arrays and closures a batch needs (they were a few percent of the main thread per query).
 */
function readOne(c: Connection, sql: string, part: string, params: Statement["params"]): ExecReply {
  const kinds: Record<string, StatementKind> = {};
  let p: Prepared;
  try {
    p = c.prepare(part);
  } catch {
    return { results: [], needsWriter: true, kinds, payloads: [] };
  }
  kinds[sql] = p.kind;
  if (p.kind !== "read") return { results: [], needsWriter: true, kinds, payloads: [] };
  try {
    return { results: [c.run(p, params)], kinds, payloads: [] };
  } catch (e) {
    const h = toHaError(e);
    if (((h.details.sqliteCode ?? 0) & 0xff) === SQLITE_READONLY) {
      kinds[sql] = "write";
      return { results: [], needsWriter: true, kinds, payloads: [] };
    }
    throw h;
  }
}

/** A multi-statement string is a read only when all its parts are. */
export function aggregate(ps: Prepared[]): StatementKind {
  return ps.length === 1 ? ps[0].kind : ps.every((p) => p.kind === "read") ? "read" : "write";
}

/** The last element. */
export function last<T>(xs: T[]): T {
  return xs[xs.length - 1];
}
