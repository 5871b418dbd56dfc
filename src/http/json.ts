/**
 * JSON for the HTTP API with exact values: integers outside ±(2^53−1) are
 * read and written with all their digits (as JSON numbers), REALs always
 * carry a decimal point or exponent (`1.0`), BLOBs are base64 strings in
 * results and `{"base64": "..."}` objects in parameters.
 *
 * @example
 * ```ts
 * parseJson('{"a": 9223372036854775807}'); // { a: 9223372036854775807n }
 * stringifyJson({ a: 9223372036854775807n, r: 1 }); // '{"a":9223372036854775807,"r":1.0}' (r as REAL)
 * ```
 */
import { HaError } from "../errors/mod.ts";
import type { Params, ParamValue, SqlValue, Statement, StatementResult } from "../engine/mod.ts";

declare global {
  interface JSON {
    rawJSON(text: string): unknown;
  }
}

type ReviverContext = { source?: string };

const MANY_DIGITS = /\d{16}/;

/** Parses JSON keeping integers that do not fit a double exactly as bigint. */
export function parseJson(text: string): unknown {
  // An integer a double cannot hold has 16 digits or more: without such a run of digits the
  // reviver (~3 % of the main thread on small requests) has nothing to do.
  if (!MANY_DIGITS.test(text)) return JSON.parse(text);
  return JSON.parse(
    text,
    function (_key: string, value: unknown, ctx?: ReviverContext) {
      if (typeof value === "number" && ctx?.source && /^-?\d+$/.test(ctx.source)) {
        if (!Number.isSafeInteger(value)) return BigInt(ctx.source);
      }
      return value;
    } as (this: unknown, key: string, value: unknown) => unknown,
  );
}

/** Encodes one result value for a JSON response. */
export function encodeValue(v: SqlValue): unknown {
  if (typeof v === "bigint") {
    return v >= -9007199254740991n && v <= 9007199254740991n
      ? Number(v)
      : JSON.rawJSON(v.toString());
  }
  if (typeof v === "number") {
    if (!Number.isFinite(v)) return JSON.rawJSON(v > 0 ? "1e999" : "-1e999");
    return Number.isInteger(v) ? JSON.rawJSON(v.toFixed(1)) : v;
  }
  if (v instanceof Uint8Array) return encodeBase64(v);
  return v;
}

/** The JSON shape of one statement result (ha-reference §2). */
export function encodeResult(r: StatementResult): { columns: string[]; rows: unknown[][] } {
  if (r.columns.length === 0) {
    return {
      columns: ["rows_affected", "last_insert_id"],
      rows: [[r.rowsAffected, encodeValue(r.lastInsertId)]],
    };
  }
  return { columns: r.columns.map((c) => c.name), rows: r.rows.map((row) => row.map(encodeValue)) };
}

/** JSON.stringify that understands the raw JSON values made by {@link encodeValue}. */
export function stringifyJson(v: unknown, pretty = false): string {
  return JSON.stringify(v, null, pretty ? 2 : undefined);
}

/** The request body: one statement object or an array of them. */
export interface QueryRequest {
  statements: Statement[];
  /** True when the body was an array (response `{"results": [...]}`). */
  array: boolean;
}

/** Validates a parsed request body. Throws HaError("bad_request") with a precise message. */
export function decodeQueryRequest(body: unknown): QueryRequest {
  if (Array.isArray(body)) {
    if (body.length === 0) throw new HaError("bad_request", "the array of statements is empty");
    return {
      statements: body.map((s, i) => decodeStatement(s, `statement ${i + 1}`)),
      array: true,
    };
  }
  return { statements: [decodeStatement(body, "request")], array: false };
}

function decodeStatement(s: unknown, where: string): Statement {
  if (s === null || typeof s !== "object" || Array.isArray(s)) {
    throw new HaError("bad_request", `${where}: expected an object {"sql": "...", "params": ...}`);
  }
  const o = s as Record<string, unknown>;
  for (const k of Object.keys(o)) {
    if (k !== "sql" && k !== "params") {
      throw new HaError("bad_request", `${where}: unknown field "${k}" (expected "sql", "params")`);
    }
  }
  if (typeof o.sql !== "string") {
    throw new HaError("bad_request", `${where}: "sql" must be a string`);
  }
  if (o.sql.trim() === "") throw new HaError("bad_request", `${where}: "sql" is empty`);
  if (o.params === undefined || o.params === null) return { sql: o.sql };
  return { sql: o.sql, params: decodeParams(o.params, where) };
}

function decodeParams(p: unknown, where: string): Params {
  if (Array.isArray(p)) return p.map((v, i) => decodeParam(v, `${where}: parameter ${i + 1}`));
  if (typeof p === "object" && p !== null) {
    const out: Record<string, ParamValue> = {};
    for (const [k, v] of Object.entries(p)) out[k] = decodeParam(v, `${where}: parameter "${k}"`);
    return out;
  }
  throw new HaError("bad_request", `${where}: "params" must be an array or an object`);
}

/** One parameter: JSON scalars, or `{"base64": "..."}` for a BLOB. */
function decodeParam(v: unknown, where: string): ParamValue {
  if (
    v === null || typeof v === "string" || typeof v === "number" || typeof v === "boolean" ||
    typeof v === "bigint"
  ) return v;
  if (typeof v === "object" && !Array.isArray(v)) {
    const o = v as Record<string, unknown>;
    const keys = Object.keys(o);
    if (keys.length === 1 && keys[0] === "base64" && typeof o.base64 === "string") {
      try {
        return decodeBase64(o.base64);
      } catch {
        throw new HaError("bad_request", `${where}: invalid base64`);
      }
    }
  }
  throw new HaError(
    "bad_request",
    `${where}: expected null, a number, a string, a boolean or {"base64": "..."} for a BLOB`,
  );
}

/** Standard base64 of bytes. */
export function encodeBase64(b: Uint8Array): string {
  let s = "";
  for (let i = 0; i < b.length; i += 0x8000) {
    s += String.fromCharCode(...b.subarray(i, i + 0x8000));
  }
  return btoa(s);
}

/** Bytes of a standard (or URL-safe) base64 string. */
export function decodeBase64(s: string): Uint8Array {
  const bin = atob(s.replace(/-/g, "+").replace(/_/g, "/"));
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out;
}
