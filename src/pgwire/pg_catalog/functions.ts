/**
 * The PostgreSQL functions catalog queries call (`format_type`, `pg_get_indexdef`,
 * `pg_table_is_visible`, `current_schemas`, …), the regex operator behind `~`, and the helpers
 * the rewriter's output uses (`_pg_regclass`, `_pg_array`, `_pg_array_agg`, …), registered as
 * SQLite user functions on the private catalog database.
 *
 * @example
 * ```ts
 * registerFunctions(db, () => env, () => oids);
 * db.prepare("SELECT format_type(1043, 54)").get(); // "character varying(50)"
 * ```
 * @module
 */
import type { DatabaseSync, SQLInputValue, SQLOutputValue } from "node:sqlite";
import { PgError } from "../errors.ts";
import { SERVER_VERSION, type Settings } from "../settings.ts";
import type { CatalogOids } from "./fill.ts";
import { formatType, PG_TYPES, typeName } from "./types.ts";

/** What the functions know of the session running the query. */
export interface FunctionEnv {
  user: string;
  database: string;
  pid: number;
  settings: Settings;
}

type Fn = (...args: SQLInputValue[]) => SQLOutputValue;

/** A PostgreSQL array literal (`{a,"b c",NULL}`) of values. */
export function arrayText(values: SQLInputValue[]): string {
  return `{${
    values.map((v) => {
      if (v === null || v === undefined) return "NULL";
      const s = v instanceof Uint8Array ? new TextDecoder().decode(v) : String(v);
      return s === "" || /[{},"\\\s]/.test(s) || /^null$/i.test(s)
        ? `"${s.replace(/["\\]/g, (c) => "\\" + c)}"`
        : s;
    }).join(",")
  }}`;
}

/** The elements of a PostgreSQL array literal, or of an int2vector/oidvector (`1 2`). */
export function parseArray(text: string): (string | null)[] {
  const s = text.trim();
  if (!s.startsWith("{")) return s ? s.split(/\s+/) : [];
  const out: (string | null)[] = [];
  let i = 1;
  while (i < s.length - 1) {
    if (s[i] === ",") {
      i++;
      continue;
    }
    if (s[i] === '"') {
      let v = "";
      i++;
      while (i < s.length && s[i] !== '"') {
        if (s[i] === "\\") i++;
        v += s[i++];
      }
      i++;
      out.push(v);
    } else {
      const e = s.indexOf(",", i);
      const end = e < 0 || e > s.length - 1 ? s.length - 1 : e;
      const v = s.slice(i, end);
      out.push(v === "NULL" ? null : v);
      i = end;
    }
  }
  return out;
}

/** PostgreSQL's OIDs of its catalog relations (`'pg_class'::regclass` in GUI clients' joins). */
const SYSTEM_RELATIONS: Record<string, number> = {
  pg_type: 1247,
  pg_attribute: 1249,
  pg_proc: 1255,
  pg_class: 1259,
  pg_database: 1262,
  pg_authid: 1260,
  pg_namespace: 2615,
  pg_constraint: 2606,
  pg_index: 2610,
  pg_description: 2609,
  pg_trigger: 2620,
  pg_am: 2601,
  pg_attrdef: 2604,
  pg_rewrite: 2618,
  pg_tablespace: 1213,
  pg_extension: 3079,
  pg_collation: 3456,
  pg_roles: 11_000,
  pg_settings: 11_001,
};
const SYSTEM_NAMES = new Map(Object.entries(SYSTEM_RELATIONS).map(([k, v]) => [v, k]));

/** A relation name as `::regclass` accepts it: `t`, `public.t`, `"T"`. */
function relationName(text: string): string {
  const parts = text.match(/"(?:[^"]|"")*"|[^.]+/g) ?? [text];
  const last = parts[parts.length - 1];
  return last.startsWith('"') ? last.slice(1, -1).replaceAll('""', '"') : last.toLowerCase();
}

/**
 * Registers every function on `db`; `env` and `oids` are read at each call. A function never
 * throws into SQLite (Deno's node:sqlite hangs on an exception thrown by a user function): its
 * error goes to `fail` and it returns NULL; the caller raises the error after the statement.
 */
export function registerFunctions(
  db: DatabaseSync,
  env: () => FunctionEnv,
  oids: () => CatalogOids,
  fail: (e: unknown) => void,
): void {
  const guard = <A extends unknown[]>(f: (...a: A) => SQLOutputValue) => (...a: A) => {
    try {
      return f(...a);
    } catch (e) {
      fail(e);
      return null;
    }
  };
  // varargs: PostgreSQL's optional arguments (pretty, missing_ok, …) are accepted everywhere
  const fn = (name: string, f: Fn) =>
    db.function(name, { varargs: true, deterministic: false }, guard(f));
  const constant = (names: string[], v: SQLOutputValue) => {
    for (const n of names) fn(n, () => v);
  };
  const regexes = new Map<string, RegExp>();
  fn("regexp", (pattern, value) => {
    if (pattern === null || value === null) return null;
    let p = String(pattern);
    let re = regexes.get(p);
    if (!re) {
      let flags = "";
      if (p.startsWith("(?i)")) {
        flags = "i";
        p = p.slice(4);
      }
      re = new RegExp(p, flags);
      if (regexes.size > 100) regexes.clear();
      regexes.set(String(pattern), re);
    }
    return re.test(String(value)) ? 1 : 0;
  });
  constant([
    "pg_table_is_visible",
    "pg_type_is_visible",
    "pg_function_is_visible",
    "pg_collation_is_visible",
    "pg_opclass_is_visible",
    "pg_opfamily_is_visible",
    "pg_operator_is_visible",
    "pg_conversion_is_visible",
    "pg_statistics_obj_is_visible",
    "pg_ts_config_is_visible",
    "pg_ts_dict_is_visible",
    "pg_ts_parser_is_visible",
    "pg_ts_template_is_visible",
    "has_table_privilege",
    "has_schema_privilege",
    "has_database_privilege",
    "has_column_privilege",
    "has_any_column_privilege",
    "has_function_privilege",
    "has_sequence_privilege",
    "pg_has_role",
  ], 1);
  constant([
    "pg_is_in_recovery",
    "pg_is_other_temp_schema",
    "pg_my_temp_schema",
    "pg_relation_is_publishable",
  ], 0);
  constant([
    "pg_relation_size",
    "pg_total_relation_size",
    "pg_table_size",
    "pg_indexes_size",
    "pg_database_size",
    "txid_current",
    "pg_stat_get_numscans",
    "pg_stat_get_tuples_returned",
    "pg_stat_get_tuples_fetched",
    "pg_stat_get_live_tuples",
    "pg_stat_get_dead_tuples",
  ], 0);
  constant([
    "obj_description",
    "col_description",
    "shobj_description",
    "pg_get_serial_sequence",
    "pg_get_partkeydef",
    "pg_get_function_result",
    "pg_get_triggerdef",
    "pg_get_ruledef",
    "pg_get_statisticsobjdef_columns",
    "pg_get_partition_constraintdef",
    "inet_server_addr",
    "inet_client_addr",
  ], null);
  constant(["pg_get_function_identity_arguments", "pg_get_function_arguments"], "");
  constant(["pg_tablespace_location"], "");
  constant(["pg_encoding_to_char"], "UTF8");
  constant(["pg_char_to_encoding"], 6);
  constant(["current_schema"], "public");
  fn("current_schemas", (implicit) => Number(implicit) ? "{pg_catalog,public}" : "{public}");
  for (const n of ["current_user", "session_user", "current_role", "user"]) {
    fn(n, () => env().user);
  }
  fn("pg_get_userbyid", () => env().user);
  for (const n of ["current_database", "current_catalog"]) fn(n, () => env().database);
  fn("version", () => `PostgreSQL ${SERVER_VERSION} on SQLite, compiled by Deno`);
  fn("pg_backend_pid", () => env().pid);
  fn("now", () => new Date().toISOString().replace("T", " ").replace("Z", "+00"));
  fn("pg_postmaster_start_time", () => new Date().toISOString());
  fn("current_setting", (name, missingOk) => {
    const v = env().settings.get(String(name));
    if (v !== undefined) return v;
    if (Number(missingOk)) return null;
    throw new PgError("42704", `unrecognized configuration parameter "${name}"`);
  });
  fn(
    "format_type",
    (oid, typmod) =>
      formatType(oid === null ? null : Number(oid), typmod === null ? -1 : Number(typmod)),
  );
  fn("pg_get_expr", (expr) => expr === null ? null : String(expr));
  fn("pg_get_indexdef", (oid, col) => {
    const def = oids().indexDefs.get(Number(oid));
    if (def === undefined) return null;
    const c = Number(col ?? 0);
    if (c <= 0) return def;
    const cols = /USING btree \((.*)\)/.exec(def)?.[1].split(", ") ?? [];
    return cols[c - 1] ?? "";
  });
  fn("pg_get_constraintdef", (oid) => oids().constraintDefs.get(Number(oid)) ?? null);
  fn("pg_get_viewdef", (oid) => {
    const o = typeof oid === "string" ? oids().byName.get(relationName(oid)) : Number(oid);
    return oids().viewDefs.get(o ?? 0) ?? null;
  });
  fn("pg_size_pretty", (n) => `${n} bytes`);
  fn(
    "quote_ident",
    (s) =>
      s === null
        ? null
        : /^[a-z_][a-z0-9_$]*$/.test(String(s))
        ? String(s)
        : `"${String(s).replaceAll('"', '""')}"`,
  );
  fn("left", (s, n) => s === null ? null : String(s).slice(0, Number(n)));
  fn("right", (s, n) => s === null ? null : String(s).slice(-Number(n)));
  fn(
    "to_regclass",
    (name) => name === null ? null : oids().byName.get(relationName(String(name))) ?? null,
  );
  fn("_pg_regclass", (x) => {
    if (x === null) return null;
    if (typeof x === "number" || typeof x === "bigint") {
      return oids().byOid.get(Number(x)) ?? SYSTEM_NAMES.get(Number(x)) ?? Number(x);
    }
    const name = relationName(String(x));
    const oid = oids().byName.get(name) ?? SYSTEM_RELATIONS[name];
    if (oid === undefined) {
      if (/^\d+$/.test(String(x))) return Number(x);
      throw new PgError("42P01", `relation "${x}" does not exist`);
    }
    return oid;
  });
  fn("_pg_regtype", (x) => {
    if (x === null) return null;
    if (typeof x === "number" || typeof x === "bigint") return typeName(Number(x));
    const n = String(x).toLowerCase();
    const t = PG_TYPES.find((p) => p.name === n || p.sqlName === n);
    if (!t) throw new PgError("42704", `type "${x}" does not exist`);
    return t.oid;
  });
  fn("_pg_bool", (x) => {
    if (x === null) return null;
    return /^(t|true|y|yes|on|1)$/i.test(String(x)) ? 1 : 0;
  });
  fn("_pg_array", (...xs) => arrayText(xs));
  fn("_pg_array_json", (a) =>
    a === null ? "[]" : JSON.stringify(
      parseArray(String(a)).map((v) => v !== null && /^-?\d+$/.test(v) ? Number(v) : v),
    ));
  fn("array_to_string", (a, sep, nul) => {
    if (a === null) return null;
    return parseArray(String(a)).map((v) => v ?? (nul ?? null)).filter((v) => v !== null)
      .join(String(sep));
  });
  for (const n of ["array_length", "array_upper", "cardinality"]) {
    fn(n, (a) => {
      if (a === null) return null;
      const len = parseArray(String(a)).length;
      return len === 0 && n !== "cardinality" ? null : len;
    });
  }
  // set-returning in PostgreSQL; a table without partitions is its own only ancestor
  fn("pg_partition_ancestors", (x) => x === null ? null : Number(x));
  // substring(s FROM 'regex') (the rewriter turns FROM/FOR into arguments) and substring(s, n, m)
  fn("_pg_substring", (str, from, len) => {
    if (str === null || from === null) return null;
    const s = String(str);
    if (typeof from === "string" && !/^\d+$/.test(from)) {
      const m = new RegExp(from).exec(s);
      return m ? (m[1] ?? m[0]) : null;
    }
    const start = Math.max(Number(from), 1) - 1;
    const end = len === undefined || len === null ? undefined : Number(from) - 1 + Number(len);
    return s.slice(start, end === undefined ? undefined : Math.max(end, start));
  });
  fn("_pg_series", (a, b, step) => {
    const out: number[] = [];
    const by = Number(step ?? 1) || 1;
    for (let v = Number(a); by > 0 ? v <= Number(b) : v >= Number(b); v += by) {
      out.push(v);
      // catalog queries run on the main thread: a series is for subscripts, not for load
      if (out.length >= 10_000) {
        throw new PgError("54000", "generate_series in a catalog query is limited to 10000 rows");
      }
    }
    return JSON.stringify(out);
  });
  fn("_pg_subscript", (a, i) => {
    if (a === null || i === null) return null;
    const text = String(a).trim();
    // arrays count from 1, int2vector/oidvector from 0
    const v = parseArray(text)[Number(i) - (text.startsWith("{") ? 1 : 0)];
    return v === undefined ? null : v;
  });
  fn("array_remove", (a, x) => {
    if (a === null) return null;
    return arrayText(
      parseArray(String(a)).filter((v) => x === null ? v !== null : v !== String(x)),
    );
  });
  fn("array_lower", (a) => a === null || parseArray(String(a)).length === 0 ? null : 1);
  // (no guard() here: node:sqlite takes an aggregate's arity from its step function)
  db.aggregate("_pg_array_agg", {
    start: () => "[]",
    step: (acc: SQLInputValue, v: SQLInputValue) => {
      const xs = JSON.parse(String(acc)) as SQLInputValue[];
      xs.push(typeof v === "bigint" ? v.toString() : v instanceof Uint8Array ? null : v);
      return JSON.stringify(xs);
    },
    result: (acc: SQLInputValue) => {
      const xs = JSON.parse(String(acc)) as SQLInputValue[];
      return xs.length ? arrayText(xs) : "{}";
    },
  });
}
