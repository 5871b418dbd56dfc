/**
 * The one type mapping between SQLite values and PostgreSQL types: result
 * column OIDs (from declared type and values), text and binary encoding of
 * results (Bind parameters are decoded by `params.ts`).
 *
 * @example
 * ```ts
 * const oid = columnOid("BOOLEAN", [[1n]], 0); // OID.bool
 * encodeText(1n, oid); // "t"
 * ```
 */
import type { SqlValue } from "../engine/types.ts";
import { PgError } from "./errors.ts";

/** Type OIDs this server speaks. */
export const OID = {
  unknown0: 0,
  bool: 16,
  bytea: 17,
  char: 18,
  name: 19,
  int8: 20,
  int2: 21,
  int4: 23,
  text: 25,
  oid: 26,
  json: 114,
  xml: 142,
  float4: 700,
  float8: 701,
  unknown: 705,
  bpchar: 1042,
  varchar: 1043,
  date: 1082,
  time: 1083,
  timestamp: 1114,
  timestamptz: 1184,
  interval: 1186,
  timetz: 1266,
  numeric: 1700,
  uuid: 2950,
  jsonb: 3802,
} as const;

/** typlen per OID (-1 = variable length). */
export function typeSize(oid: number): number {
  switch (oid) {
    case OID.bool:
    case OID.char:
      return 1;
    case OID.int2:
      return 2;
    case OID.int4:
    case OID.oid:
    case OID.float4:
    case OID.date:
      return 4;
    case OID.int8:
    case OID.float8:
    case OID.timestamp:
    case OID.timestamptz:
    case OID.time:
      return 8;
    case OID.uuid:
      return 16;
    case OID.name:
      return 64;
    default:
      return -1;
  }
}

/** Known declared type names (upper case, without size) → OID. */
const DECLARED: Record<string, number> = {
  BOOL: OID.bool,
  BOOLEAN: OID.bool,
  BYTEA: OID.bytea,
  BLOB: OID.bytea,
  DATE: OID.date,
  TIME: OID.time,
  TIMESTAMP: OID.timestamp,
  DATETIME: OID.timestamp,
  "TIMESTAMP WITHOUT TIME ZONE": OID.timestamp,
  TIMESTAMPTZ: OID.timestamptz,
  "TIMESTAMP WITH TIME ZONE": OID.timestamptz,
  JSON: OID.json,
  JSONB: OID.jsonb,
  UUID: OID.uuid,
  NUMERIC: OID.numeric,
  DECIMAL: OID.numeric,
  VARCHAR: OID.varchar,
  "CHARACTER VARYING": OID.varchar,
  "VARYING CHARACTER": OID.varchar,
  NVARCHAR: OID.varchar,
  "NATIVE CHARACTER": OID.varchar,
  TEXT: OID.text,
};

/**
 * The OID a declared column type suggests, or null when it says nothing
 * (no declared type, or SQLite NUMERIC affinity under an unknown name).
 * Follows SQLite's affinity rules: contains INT → int8; CHAR/CLOB/TEXT → text;
 * BLOB → bytea; REAL/FLOA/DOUB → float8.
 */
export function declaredOid(declType: string | null): number | null {
  if (!declType) return null;
  // Asked per result column of every query; a schema has few distinct declared types.
  let oid = declaredOids.get(declType);
  if (oid === undefined) {
    oid = oidOfDeclared(declType);
    if (declaredOids.size >= 256) declaredOids.clear();
    declaredOids.set(declType, oid);
  }
  return oid;
}

const declaredOids = new Map<string, number | null>();

function oidOfDeclared(declType: string): number | null {
  const t = declType.toUpperCase().replace(/\(.*$/s, "").trim().replace(/\s+/g, " ");
  if (t in DECLARED) return DECLARED[t];
  if (t.includes("INT")) return OID.int8;
  if (t.includes("CHAR") || t.includes("CLOB") || t.includes("TEXT")) {
    return t.includes("VAR") ? OID.varchar : OID.text;
  }
  if (t.includes("BLOB")) return OID.bytea;
  if (t.includes("REAL") || t.includes("FLOA") || t.includes("DOUB")) return OID.float8;
  return null;
}

/** The OID of a value by its storage class (expressions without a declared type). */
export function valueOid(v: SqlValue): number {
  if (typeof v === "bigint") return OID.int8;
  if (typeof v === "number") return OID.float8;
  if (v instanceof Uint8Array) return OID.bytea;
  return OID.text;
}

const DATE_RE = /^\d{4,}-\d{2}-\d{2}$/;
const TIMESTAMP_RE =
  /^(\d{4,})-(\d{2})-(\d{2})[T ](\d{2}):(\d{2})(?::(\d{2})(\.\d+)?)?\s*(Z|[+-]\d{2}(?::?\d{2})?)?$/i;
const UUID_RE = /^\{?[0-9a-f]{8}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{12}\}?$/i;
/** Decimal number text (numeric values and parameters). */
export const NUMERIC_RE = /^\s*[+-]?(\d+\.?\d*|\.\d+)(e[+-]?\d+)?\s*$/i;
/** Boolean input words, as PostgreSQL accepts them. */
export const TRUE_WORDS = new Set(["t", "true", "y", "yes", "on", "1"]);
export const FALSE_WORDS = new Set(["f", "false", "n", "no", "off", "0"]);

/** Whether `v` can be presented as a value of type `oid`. */
export function fits(oid: number, v: SqlValue): boolean {
  if (v === null) return true;
  switch (oid) {
    case OID.int8:
      return typeof v === "bigint";
    case OID.float8:
      return typeof v === "number" || typeof v === "bigint";
    case OID.numeric:
      return typeof v === "bigint" || typeof v === "number" ||
        (typeof v === "string" && NUMERIC_RE.test(v));
    case OID.bool:
      return typeof v === "bigint" ? v === 0n || v === 1n : typeof v === "string" &&
        (TRUE_WORDS.has(v.toLowerCase()) || FALSE_WORDS.has(v.toLowerCase()));
    case OID.bytea:
      return v instanceof Uint8Array;
    case OID.date:
      return typeof v === "string" && DATE_RE.test(v);
    case OID.timestamp:
    case OID.timestamptz:
      return typeof v === "string" && TIMESTAMP_RE.test(v.trim());
    case OID.uuid:
      return typeof v === "string" && UUID_RE.test(v);
    case OID.json:
    case OID.jsonb:
    case OID.text:
    case OID.varchar:
    case OID.time:
      return !(v instanceof Uint8Array);
    default:
      return true;
  }
}

/**
 * The OID of result column `col`: its declared type when the first non-null
 * value fits it, else the value's storage class; text when nothing is known.
 */
export function columnOid(declType: string | null, rows: SqlValue[][], col: number): number {
  let sample: SqlValue = null;
  for (const row of rows) {
    if (row[col] !== null && row[col] !== undefined) {
      sample = row[col];
      break;
    }
  }
  const declared = declaredOid(declType);
  if (declared !== null && fits(declared, sample)) return declared;
  if (sample !== null) return valueOid(sample);
  return declared ?? OID.text;
}

/** The OID of a column known only by its declared type (Describe before execution). */
export function describedOid(declType: string | null): number {
  return declaredOid(declType) ?? OID.text;
}

// ---------------------------------------------------------------- text output

/** Two-digit lower-case hex of each byte value. */
export const HEX = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, "0"));

/** `\x` hex bytea text. */
export function byteaHex(b: Uint8Array): string {
  let s = "\\x";
  for (let i = 0; i < b.length; i++) s += HEX[b[i]];
  return s;
}

/** PostgreSQL float8 text: Infinity/-Infinity/NaN spelled out, shortest round-trip digits. */
export function floatText(n: number): string {
  if (Number.isNaN(n)) return "NaN";
  if (n === Infinity) return "Infinity";
  if (n === -Infinity) return "-Infinity";
  if (Object.is(n, -0)) return "-0";
  return String(n);
}

/** A number in plain positional notation (numeric output never uses exponents). */
export function plainNumber(n: number): string {
  const s = floatText(n);
  const m = /^(-?)(\d)(?:\.(\d+))?e([+-]\d+)$/.exec(s);
  if (!m) return s;
  const [, sign, head, tail = "", expText] = m;
  const exp = Number(expText);
  const digits = head + tail;
  if (exp >= 0) {
    return sign +
      (exp >= tail.length
        ? digits + "0".repeat(exp - tail.length)
        : digits.slice(0, exp + 1) + "." + digits.slice(exp + 1));
  }
  return sign + "0." + "0".repeat(-exp - 1) + digits;
}

/** `n` zero-padded to `w` digits. */
export function pad(n: number, w = 2): string {
  return String(n).padStart(w, "0");
}

/** Parses a date/timestamp text into its parts (UTC when a zone is given). */
function timestampParts(s: string): { ms: number; micros: number; zoned: boolean } | null {
  const m = TIMESTAMP_RE.exec(s.trim());
  if (!m) return null;
  const [, y, mo, d, h, mi, sec = "0", frac = "", zone] = m;
  const micros = frac ? Number((frac.slice(1) + "000000").slice(0, 6)) : 0;
  let ms = Date.UTC(Number(y), Number(mo) - 1, Number(d), Number(h), Number(mi), Number(sec));
  if (Number(y) < 100) {
    const dt = new Date(ms);
    dt.setUTCFullYear(Number(y));
    ms = dt.getTime();
  }
  if (zone && zone.toUpperCase() !== "Z") {
    const zm = /^([+-])(\d{2}):?(\d{2})?$/.exec(zone)!;
    const off = (Number(zm[2]) * 60 + Number(zm[3] ?? 0)) * (zm[1] === "-" ? -1 : 1);
    ms -= off * 60_000;
  }
  return { ms, micros, zoned: zone !== undefined };
}

function formatTimestamp(ms: number, micros: number, tz: boolean): string {
  const d = new Date(ms);
  let s = `${pad(d.getUTCFullYear(), 4)}-${pad(d.getUTCMonth() + 1)}-${pad(d.getUTCDate())} ` +
    `${pad(d.getUTCHours())}:${pad(d.getUTCMinutes())}:${pad(d.getUTCSeconds())}`;
  if (micros) s += "." + pad(micros, 6).replace(/0+$/, "");
  return tz ? s + "+00" : s;
}

function boolText(v: SqlValue): string | null {
  if (typeof v === "bigint") return v !== 0n ? "t" : "f";
  if (typeof v === "number") return v !== 0 ? "t" : "f";
  if (typeof v === "string") {
    const w = v.toLowerCase();
    if (TRUE_WORDS.has(w)) return "t";
    if (FALSE_WORDS.has(w)) return "f";
  }
  return null;
}

/** Text format of a value presented as type `oid` (null stays null). */
export function encodeText(v: SqlValue, oid: number): string | null {
  if (v === null) return null;
  switch (oid) {
    case OID.bool: {
      const b = boolText(v);
      if (b !== null) return b;
      break;
    }
    case OID.numeric:
      if (typeof v === "number") return plainNumber(v);
      break;
    case OID.timestamp:
    case OID.timestamptz:
      if (typeof v === "string") {
        const p = timestampParts(v);
        // Without a zone a timestamp is shown as stored (no shift); with one, in UTC.
        if (p) return formatTimestamp(p.ms, p.micros, oid === OID.timestamptz);
      }
      break;
  }
  if (typeof v === "string") return v;
  if (typeof v === "bigint") return v.toString();
  if (typeof v === "number") return floatText(v);
  return byteaHex(v);
}

// -------------------------------------------------------------- binary output

/** The PostgreSQL epoch (2000-01-01) of binary dates and timestamps. */
export const PG_EPOCH_MS = Date.UTC(2000, 0, 1);
export const DAY_MS = 86_400_000;
const enc = new TextEncoder();

function cannot(v: SqlValue, oid: number): PgError {
  const what = v instanceof Uint8Array ? "blob" : typeof v;
  return new PgError("22P03", `cannot send ${what} value as binary type ${oid}`);
}

function toBigInt(v: SqlValue, oid: number): bigint {
  if (typeof v === "bigint") return v;
  if (typeof v === "number" && Number.isInteger(v)) return BigInt(v);
  if (typeof v === "string" && /^\s*[+-]?\d+\s*$/.test(v)) return BigInt(v.trim());
  throw cannot(v, oid);
}

function toNumber(v: SqlValue, oid: number): number {
  if (typeof v === "number") return v;
  if (typeof v === "bigint") return Number(v);
  if (typeof v === "string" && NUMERIC_RE.test(v)) return Number(v);
  throw cannot(v, oid);
}

/** Binary format of a value presented as type `oid`. */
export function encodeBinary(v: SqlValue, oid: number): Uint8Array | null {
  if (v === null) return null;
  switch (oid) {
    case OID.bool: {
      const b = boolText(v);
      if (b === null) throw cannot(v, oid);
      return new Uint8Array([b === "t" ? 1 : 0]);
    }
    case OID.int2:
    case OID.int4:
    case OID.int8:
    case OID.oid: {
      const n = toBigInt(v, oid);
      const size = typeSize(oid);
      const out = new Uint8Array(size);
      const dv = new DataView(out.buffer);
      if (size === 8) dv.setBigInt64(0, n);
      else if (size === 4) oid === OID.oid ? dv.setUint32(0, Number(n)) : dv.setInt32(0, Number(n));
      else dv.setInt16(0, Number(n));
      return out;
    }
    case OID.float4:
    case OID.float8: {
      const out = new Uint8Array(oid === OID.float4 ? 4 : 8);
      const dv = new DataView(out.buffer);
      if (oid === OID.float4) dv.setFloat32(0, toNumber(v, oid));
      else dv.setFloat64(0, toNumber(v, oid));
      return out;
    }
    case OID.bytea:
      return v instanceof Uint8Array ? v : enc.encode(encodeText(v, OID.text)!);
    case OID.numeric:
      return encodeNumeric(encodeText(v, oid)!);
    case OID.date: {
      if (typeof v !== "string" || !DATE_RE.test(v)) throw cannot(v, oid);
      const p = timestampParts(v + " 00:00:00")!;
      const out = new Uint8Array(4);
      new DataView(out.buffer).setInt32(0, Math.floor((p.ms - PG_EPOCH_MS) / DAY_MS));
      return out;
    }
    case OID.timestamp:
    case OID.timestamptz: {
      const p = typeof v === "string" ? timestampParts(v) : null;
      if (!p) throw cannot(v, oid);
      const out = new Uint8Array(8);
      const us = BigInt(p.ms - PG_EPOCH_MS) * 1000n + BigInt(p.micros);
      new DataView(out.buffer).setBigInt64(0, us);
      return out;
    }
    case OID.uuid: {
      if (typeof v !== "string" || !UUID_RE.test(v)) throw cannot(v, oid);
      const hex = v.replace(/[{}-]/g, "");
      return Uint8Array.from({ length: 16 }, (_, i) => parseInt(hex.slice(i * 2, i * 2 + 2), 16));
    }
    case OID.jsonb: {
      const body = enc.encode(encodeText(v, oid)!);
      const out = new Uint8Array(body.length + 1);
      out[0] = 1;
      out.set(body, 1);
      return out;
    }
    default:
      return enc.encode(encodeText(v, oid)!);
  }
}

/** PostgreSQL binary numeric from decimal text (NaN and ±Infinity included). */
export function encodeNumeric(text: string): Uint8Array {
  const special: Record<string, number> = { NaN: 0xc000, Infinity: 0xd000, "-Infinity": 0xf000 };
  const t = text.trim();
  if (t in special) {
    const out = new Uint8Array(8);
    new DataView(out.buffer).setUint16(4, special[t]);
    return out;
  }
  const m = /^([+-]?)(\d*)(?:\.(\d*))?(?:e([+-]?\d+))?$/i.exec(t);
  if (!m || (m[2] === "" && !m[3])) throw new PgError("22P02", `invalid numeric value "${text}"`);
  let intPart = m[2] || "0";
  let frac = m[3] ?? "";
  const exp = Number(m[4] ?? 0);
  if (exp > 0) {
    frac = frac.padEnd(exp, "0");
    intPart += frac.slice(0, exp);
    frac = frac.slice(exp);
  } else if (exp < 0) {
    intPart = intPart.padStart(-exp + 1, "0");
    frac = intPart.slice(intPart.length + exp) + frac;
    intPart = intPart.slice(0, intPart.length + exp);
  }
  intPart = intPart.replace(/^0+/, "");
  const dscale = frac.length;
  // group into base-10000 digits aligned on the decimal point
  const intGroups: number[] = [];
  for (let i = intPart.length; i > 0; i -= 4) {
    intGroups.unshift(Number(intPart.slice(Math.max(0, i - 4), i)));
  }
  const fracGroups: number[] = [];
  for (let i = 0; i < frac.length; i += 4) {
    fracGroups.push(Number(frac.slice(i, i + 4).padEnd(4, "0")));
  }
  let digits = [...intGroups, ...fracGroups];
  let weight = intGroups.length - 1;
  while (digits.length && digits[0] === 0) {
    digits.shift();
    weight--;
  }
  while (digits.length && digits[digits.length - 1] === 0) digits.pop();
  if (!digits.length) weight = 0;
  digits = digits.slice(0, 32767);
  const out = new Uint8Array(8 + digits.length * 2);
  const dv = new DataView(out.buffer);
  dv.setInt16(0, digits.length);
  dv.setInt16(2, weight);
  dv.setUint16(4, m[1] === "-" && digits.length ? 0x4000 : 0);
  dv.setInt16(6, dscale);
  digits.forEach((d, i) => dv.setInt16(8 + i * 2, d));
  return out;
}

/** Decimal text from PostgreSQL binary numeric. */
export function decodeNumeric(b: Uint8Array): string {
  if (b.length < 8) throw new PgError("22P03", "insufficient data in binary numeric");
  const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
  const ndigits = dv.getInt16(0);
  const weight = dv.getInt16(2);
  const sign = dv.getUint16(4);
  const dscale = dv.getInt16(6);
  if (sign === 0xc000) return "NaN";
  if (sign === 0xd000) return "Infinity";
  if (sign === 0xf000) return "-Infinity";
  if (ndigits < 0 || b.length !== 8 + ndigits * 2 || dscale < 0) {
    throw new PgError("22P03", "invalid binary numeric");
  }
  const digits: number[] = [];
  for (let i = 0; i < ndigits; i++) digits.push(dv.getInt16(8 + i * 2));
  let intPart = "";
  for (let w = 0; w <= weight; w++) {
    const d = digits[w] ?? 0;
    intPart += w === 0 ? String(d) : pad(d, 4);
  }
  if (intPart === "") intPart = "0";
  let frac = "";
  for (let w = weight + 1; frac.length < dscale; w++) {
    frac += w < 0 ? "0000" : pad(digits[w] ?? 0, 4);
  }
  frac = frac.slice(0, dscale);
  return (sign === 0x4000 ? "-" : "") + intPart + (frac ? "." + frac : "");
}
