/**
 * What PostgreSQL clients say that SQLite does not understand: start-up
 * chatter (`SET`, `SHOW`, `RESET`, `SELECT version()`, `current_setting(…)`,
 * …), PostgreSQL spellings of transaction control (`START TRANSACTION`,
 * `BEGIN ISOLATION LEVEL …`, `END`, `ABORT`), driver catalog probes, and ha's
 * own `SHOW DATABASES` / `SET DATABASE TO <id>`. Everything else goes to SQLite.
 *
 * @example
 * ```ts
 * const c = classify("SET application_name = 'x'");
 * // c.kind === "local"; c.run(ctx) stores the setting and reports it
 * ```
 */
import type { SqlValue } from "../engine/types.ts";
import { SERVER_VERSION, type Settings } from "./settings.ts";
import { PgError } from "./errors.ts";
import { isBlank, type Shape, shapeOf, type Token, tokenize } from "./sql.ts";
import { OID } from "./types.ts";
import { isCatalogQuery } from "./pg_catalog/detect.ts";
import { mapDdl, mayMapDdl } from "./ddl_map.ts";
import { type CopyCommand, parseCopy } from "./copy.ts";
import { valuesDefaultTarget } from "./insert_defaults.ts";

/** What a local statement can see and change of its session. */
export interface CatalogContext {
  settings: Settings;
  user: string;
  /** Current database id. */
  database: string;
  pid: number;
  /** Ids of all databases. */
  databases(): string[];
  /** Switches the session to another database (rolls back an open transaction). */
  useDatabase(id: string): Promise<void>;
  /** Drops a named prepared statement, or all when null. */
  deallocate(name: string | null): void;
}

/** A result column of a local statement. */
export interface LocalField {
  name: string;
  oid: number;
}

/** The outcome of a local statement. */
export interface LocalResult {
  rows: SqlValue[][];
  tag: string;
  /** ParameterStatus messages to send. */
  status?: [string, string][];
}

/** A statement after classification. */
export type Classified =
  | { kind: "empty" }
  | {
    kind: "sql";
    sql: string;
    shape: Shape;
    /** INSERT … VALUES (DEFAULT, …): the table whose column defaults replace DEFAULT. */
    valuesDefault?: string;
  }
  | {
    kind: "tx";
    op: "begin" | "commit" | "rollback" | "savepoint" | "release" | "rollback_to";
    /** SQL for SQLite. */
    sql: string;
    tag: string;
  }
  /** A query of pg_catalog / information_schema, answered by the connection's PgCatalog. */
  | { kind: "catalog"; sql: string }
  /** COPY … FROM STDIN / TO STDOUT, run by the session (it speaks the copy sub-protocol). */
  | { kind: "copy"; copy: CopyCommand }
  | {
    kind: "local";
    fields: LocalField[];
    run(ctx: CatalogContext): LocalResult | Promise<LocalResult>;
  };

function unquote(t: Token): string {
  if (t.kind === "string") return t.text.slice(1, -1).replaceAll("''", "'");
  if (t.kind === "ident") return t.text.slice(1, -1).replaceAll('""', '"');
  return t.kind === "word" ? t.text.toLowerCase() : t.text;
}

/** Tokens without a trailing semicolon. */
function significant(sql: string): Token[] {
  const ts = tokenize(sql);
  let n = ts.length;
  while (n && ts[n - 1].kind === "punct" && ts[n - 1].text === ";") n--;
  return n === ts.length ? ts : ts.slice(0, n);
}

function isWord(t: Token | undefined, ...w: string[]): boolean {
  return t !== undefined && t.kind === "word" && w.includes(t.text);
}

/** A dotted setting name starting at tokens[i]; returns [name, next index]. */
function settingName(ts: Token[], i: number): [string, number] {
  if (!ts[i] || (ts[i].kind !== "word" && ts[i].kind !== "ident")) {
    throw new PgError("42601", "syntax error: a setting name is expected");
  }
  let name = unquote(ts[i]);
  i++;
  while (ts[i]?.text === "." && ts[i + 1]) {
    name += "." + unquote(ts[i + 1]);
    i += 2;
  }
  return [name, i];
}

/** The value list of a SET: comma-separated literals, DEFAULT → null. */
function settingValue(sql: string, ts: Token[], i: number): string | null {
  if (i >= ts.length) throw new PgError("42601", "syntax error: a value is expected");
  if (isWord(ts[i], "DEFAULT") && ts.length === i + 1) return null;
  const parts: string[] = [];
  let cur = "";
  for (let j = i; j < ts.length; j++) {
    const t = ts[j];
    if (t.kind === "punct" && t.text === ",") {
      parts.push(cur);
      cur = "";
      continue;
    }
    // tokens separated by whitespace keep one space; adjacent ones (a.b, -1) join
    if (cur && j > i && t.start > ts[j - 1].end) cur += " ";
    cur += t.kind === "punct" || t.kind === "number" ? sql.slice(t.start, t.end) : unquote(t);
  }
  parts.push(cur);
  return parts.join(", ");
}

const TEXT = OID.text;

function setStatement(sql: string, ts: Token[]): Classified {
  let i = 1;
  if (isWord(ts[i], "SESSION", "LOCAL")) {
    if (isWord(ts[i + 1], "CHARACTERISTICS", "AUTHORIZATION")) return noop("SET");
    i++;
  }
  if (isWord(ts[i], "TRANSACTION", "ROLE", "CONSTRAINTS")) return noop("SET");
  let name: string;
  if (isWord(ts[i], "TIME") && isWord(ts[i + 1], "ZONE")) {
    name = "TimeZone";
    i += 2;
  } else if (isWord(ts[i], "NAMES")) {
    name = "client_encoding";
    i++;
  } else if (isWord(ts[i], "SCHEMA")) {
    name = "search_path";
    i++;
  } else {
    [name, i] = settingName(ts, i);
    if (!isWord(ts[i], "TO") && ts[i]?.text !== "=") {
      throw new PgError("42601", `syntax error at or near "${ts[i]?.text ?? "end of input"}"`);
    }
    i++;
  }
  const value = settingValue(sql, ts, i);
  if (name === "database") {
    if (value === null) throw new PgError("42601", "SET DATABASE needs a database id");
    return local([], async (ctx) => {
      await ctx.useDatabase(value);
      return { rows: [], tag: "SET" };
    });
  }
  return local([], (ctx) => {
    const status = ctx.settings.set(name, value);
    return { rows: [], tag: "SET", status: status ? [status] : [] };
  });
}

function showStatement(ts: Token[]): Classified {
  if (isWord(ts[1], "ALL") && ts.length === 2) {
    const fields = [{ name: "name", oid: TEXT }, { name: "setting", oid: TEXT }, {
      name: "description",
      oid: TEXT,
    }];
    return local(fields, (ctx) => {
      const rows = ctx.settings.all().map(([k, v]) => [k, v, ""]);
      return { rows, tag: `SHOW` };
    });
  }
  if (isWord(ts[1], "DATABASES") && ts.length === 2) {
    return local([{ name: "database", oid: TEXT }, { name: "active", oid: TEXT }], (ctx) => {
      const rows = ctx.databases().map((id) => [id, id === ctx.database ? "1" : "0"]);
      return { rows, tag: `SELECT ${rows.length}` };
    });
  }
  let name: string;
  if (isWord(ts[1], "TRANSACTION") && isWord(ts[2], "ISOLATION") && isWord(ts[3], "LEVEL")) {
    name = "transaction_isolation";
  } else if (isWord(ts[1], "TIME") && isWord(ts[2], "ZONE")) {
    name = "TimeZone";
  } else if (isWord(ts[1], "SESSION") && isWord(ts[2], "AUTHORIZATION")) {
    name = "session_authorization";
  } else {
    let next: number;
    [name, next] = settingName(ts, 1);
    if (next !== ts.length) throw new PgError("42601", "syntax error in SHOW");
  }
  return local([{ name: name.toLowerCase(), oid: TEXT }], (ctx) => {
    const v = ctx.settings.get(name);
    if (v === undefined) {
      throw new PgError("42704", `unrecognized configuration parameter "${name}"`);
    }
    return { rows: [[v]], tag: "SHOW" };
  });
}

function resetStatement(ts: Token[]): Classified {
  if (isWord(ts[1], "ALL") && ts.length === 2) {
    return local([], (ctx) => ({ rows: [], tag: "RESET", status: ctx.settings.resetAll() }));
  }
  const [name] = settingName(ts, 1);
  return local([], (ctx) => {
    const status = ctx.settings.set(name, null);
    return { rows: [], tag: "RESET", status: status ? [status] : [] };
  });
}

function local(
  fields: LocalField[],
  run: (ctx: CatalogContext) => LocalResult | Promise<LocalResult>,
): Classified {
  return { kind: "local", fields, run };
}

function noop(tag: string): Classified {
  return local([], () => ({ rows: [], tag }));
}

function txStatement(ts: Token[]): Classified | null {
  const first = ts[0].text;
  const rest = ts.slice(1);
  const isTxNoise = (t: Token) => isWord(t, "WORK", "TRANSACTION");
  if (first === "BEGIN" || (first === "START" && isWord(ts[1], "TRANSACTION"))) {
    // SQLite's own BEGIN DEFERRED/IMMEDIATE/EXCLUSIVE pass through; PostgreSQL modes are dropped.
    if (first === "BEGIN" && isWord(ts[1], "DEFERRED", "IMMEDIATE", "EXCLUSIVE")) {
      return { kind: "tx", op: "begin", sql: `BEGIN ${ts[1].text}`, tag: "BEGIN" };
    }
    return {
      kind: "tx",
      op: "begin",
      sql: "BEGIN",
      tag: first === "START" ? "START TRANSACTION" : "BEGIN",
    };
  }
  if (first === "COMMIT" || first === "END") {
    if (isWord(ts[1], "PREPARED")) {
      throw new PgError("0A000", "prepared transactions are not supported");
    }
    return { kind: "tx", op: "commit", sql: "COMMIT", tag: "COMMIT" };
  }
  if (first === "ROLLBACK" || first === "ABORT") {
    const r = rest.filter((t) => !isTxNoise(t));
    if (isWord(r[0], "TO")) {
      const name = r[r.length - 1];
      const ident = name.kind === "word" ? `"${name.text.toLowerCase()}"` : name.text;
      return {
        kind: "tx",
        op: "rollback_to",
        sql: `ROLLBACK TO SAVEPOINT ${ident}`,
        tag: "ROLLBACK",
      };
    }
    if (isWord(r[0], "PREPARED")) {
      throw new PgError("0A000", "prepared transactions are not supported");
    }
    return { kind: "tx", op: "rollback", sql: "ROLLBACK", tag: "ROLLBACK" };
  }
  if (first === "SAVEPOINT" && ts.length === 2) {
    const ident = ts[1].kind === "word" ? `"${ts[1].text.toLowerCase()}"` : ts[1].text;
    return { kind: "tx", op: "savepoint", sql: `SAVEPOINT ${ident}`, tag: "SAVEPOINT" };
  }
  if (first === "RELEASE") {
    const name = ts[ts.length - 1];
    const ident = name.kind === "word" ? `"${name.text.toLowerCase()}"` : name.text;
    return { kind: "tx", op: "release", sql: `RELEASE SAVEPOINT ${ident}`, tag: "RELEASE" };
  }
  return null;
}

/** Functions answered locally in a `SELECT f(...), …` without FROM. */
type LocalFn = (args: string[], ctx: CatalogContext) => SqlValue;

const FUNCTIONS: Record<string, { oid: number; fn: LocalFn; bare?: boolean }> = {
  version: {
    oid: TEXT,
    fn: () => `PostgreSQL ${SERVER_VERSION} on SQLite, compiled by Deno`,
  },
  current_setting: {
    oid: TEXT,
    fn: (args, ctx) => {
      const v = ctx.settings.get(args[0] ?? "");
      if (v !== undefined) return v;
      if (/^(t|true|on|1)$/i.test(args[1] ?? "")) return null;
      throw new PgError("42704", `unrecognized configuration parameter "${args[0]}"`);
    },
  },
  set_config: {
    oid: TEXT,
    fn: (args, ctx) => {
      ctx.settings.set(args[0] ?? "", args[1] ?? "");
      return ctx.settings.get(args[0] ?? "") ?? "";
    },
  },
  current_database: { oid: OID.name, fn: (_a, ctx) => ctx.database },
  current_catalog: { oid: OID.name, fn: (_a, ctx) => ctx.database, bare: true },
  current_schema: { oid: OID.name, fn: () => "public", bare: true },
  current_user: { oid: OID.name, fn: (_a, ctx) => ctx.user, bare: true },
  current_role: { oid: OID.name, fn: (_a, ctx) => ctx.user, bare: true },
  session_user: { oid: OID.name, fn: (_a, ctx) => ctx.user, bare: true },
  user: { oid: OID.name, fn: (_a, ctx) => ctx.user, bare: true },
  pg_backend_pid: { oid: OID.int4, fn: (_a, ctx) => BigInt(ctx.pid) },
  pg_is_in_recovery: { oid: OID.bool, fn: () => 0n },
};

/** Parses `SELECT item [[AS] alias], …` where every item is a known function; else null. */
function functionSelect(ts: Token[]): Classified | null {
  const items: { name: string; fn: LocalFn; args: string[]; oid: number }[] = [];
  let i = 1;
  while (i < ts.length) {
    if (isWord(ts[i], "PG_CATALOG") && ts[i + 1]?.text === ".") i += 2;
    const t = ts[i];
    if (!t || t.kind !== "word") return null;
    const def = FUNCTIONS[t.text.toLowerCase()];
    if (!def) return null;
    let name = t.text.toLowerCase();
    const args: string[] = [];
    i++;
    if (ts[i]?.text === "(") {
      i++;
      while (ts[i] && ts[i].text !== ")") {
        const a = ts[i];
        if (a.kind === "string" || a.kind === "number") args.push(unquote(a));
        else if (isWord(a, "TRUE", "FALSE")) args.push(a.text.toLowerCase());
        else if (!(a.kind === "punct" && a.text === ",")) return null;
        i++;
      }
      if (ts[i]?.text !== ")") return null;
      i++;
    } else if (!def.bare) {
      return null;
    }
    while (ts[i]?.text === ":" && ts[i + 1]?.kind === "param") i += 2; // ::type casts
    if (ts[i]?.kind === "param" && ts[i].text.startsWith(":") && ts[i - 1]?.text === ":") i++;
    if (isWord(ts[i], "AS")) i++;
    if (ts[i] && (ts[i].kind === "word" || ts[i].kind === "ident") && !isWord(ts[i], "FROM")) {
      name = unquote(ts[i]);
      i++;
    }
    items.push({ name, fn: def.fn, args, oid: def.oid });
    if (i < ts.length) {
      if (ts[i].text !== ",") return null;
      i++;
    }
  }
  if (!items.length) return null;
  return local(items.map((it) => ({ name: it.name, oid: it.oid })), (ctx) => ({
    rows: [items.map((it) => it.fn(it.args, ctx))],
    tag: "SELECT 1",
  }));
}

/** postgres.js asks for array types at connect (fetch_types); there are none. */
function catalogProbe(ts: Token[]): Classified | null {
  if (!ts.some((t) => t.kind === "word" && t.text === "PG_TYPE")) return null;
  const ws = new Set(ts.filter((t) => t.kind === "word").map((t) => t.text));
  if (ws.has("PG_TYPE") && ws.has("TYPARRAY") && ws.has("TYPCATEGORY")) {
    return local(
      [{ name: "oid", oid: OID.oid }, { name: "typarray", oid: OID.oid }],
      () => ({ rows: [], tag: "SELECT 0" }),
    );
  }
  return null;
}

/** Classifies one statement (already split from a multi-statement string). */
export function classify(sql: string): Classified {
  if (isBlank(sql)) return { kind: "empty" };
  const ts = significant(sql);
  const first = ts[0]?.kind === "word" ? ts[0].text : "";
  switch (first) {
    case "SET":
      return setStatement(sql, ts);
    case "SHOW":
      return showStatement(ts);
    case "RESET":
      return resetStatement(ts);
    case "DISCARD":
      return local([], (ctx) => {
        ctx.deallocate(null);
        return {
          rows: [],
          tag: `DISCARD ${ts[1]?.text ?? "ALL"}`,
          status: ctx.settings.resetAll(),
        };
      });
    case "DEALLOCATE": {
      const r = ts.slice(1).filter((t) => !isWord(t, "PREPARE"));
      const all = isWord(r[0], "ALL");
      const name = r[0] ? unquote(r[0]) : "";
      return local([], (ctx) => {
        ctx.deallocate(all ? null : name);
        return { rows: [], tag: all ? "DEALLOCATE ALL" : "DEALLOCATE" };
      });
    }
    case "LISTEN":
    case "UNLISTEN":
    case "NOTIFY":
      throw new PgError("0A000", `${first} is not supported by ha`);
    case "COPY":
      return { kind: "copy", copy: parseCopy(sql) };
    case "BEGIN":
    case "START":
    case "COMMIT":
    case "END":
    case "ROLLBACK":
    case "ABORT":
    case "SAVEPOINT":
    case "RELEASE": {
      const tx = txStatement(ts);
      if (tx) return tx;
      break;
    }
    case "SELECT": {
      const f = functionSelect(ts) ?? catalogProbe(ts);
      if (f) return f;
      break;
    }
  }
  if (isCatalogQuery(ts)) return { kind: "catalog", sql };
  if (mayMapDdl(first)) sql = mapDdl(sql);
  const valuesDefault = first === "INSERT" ? valuesDefaultTarget(ts) : null;
  if (valuesDefault !== null) return { kind: "sql", sql, shape: shapeOf(sql), valuesDefault };
  return { kind: "sql", sql, shape: shapeOf(sql) };
}
