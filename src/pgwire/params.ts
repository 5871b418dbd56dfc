/**
 * Bind parameter input: decodes the text or binary value a client sent for a
 * parameter into a SQLite value, by the OID it declared (unknown/0: as text).
 *
 * @example
 * ```ts
 * decodeParam(new TextEncoder().encode("42"), OID.int4, 0); // 42n
 * ```
 */
import type { SqlValue } from "../engine/types.ts";
import { PgError } from "./errors.ts";
import { utf8 } from "./messages.ts";
import {
  DAY_MS,
  decodeNumeric,
  FALSE_WORDS,
  HEX,
  NUMERIC_RE,
  OID,
  pad,
  PG_EPOCH_MS,
  TRUE_WORDS,
} from "./types.ts";

const enc = new TextEncoder();

function invalid(typeName: string, s: string): PgError {
  return new PgError("22P02", `invalid input syntax for type ${typeName}: "${s}"`);
}

const INT64_MIN = -(2n ** 63n);
const INT64_MAX = 2n ** 63n - 1n;

function parseInteger(s: string, typeName: string): bigint {
  const t = s.trim();
  if (!/^[+-]?\d+$/.test(t)) throw invalid(typeName, s);
  const n = BigInt(t);
  if (n < INT64_MIN || n > INT64_MAX) {
    throw new PgError("22003", `value "${s}" is out of range for type ${typeName}`);
  }
  return n;
}

function parseFloatText(s: string, typeName: string): number {
  const t = s.trim().toLowerCase();
  if (t === "nan") return NaN;
  if (t === "infinity" || t === "+infinity" || t === "inf") return Infinity;
  if (t === "-infinity" || t === "-inf") return -Infinity;
  if (!NUMERIC_RE.test(t)) throw invalid(typeName, s);
  return Number(t);
}

/** A numeric parameter: integral → INTEGER when it fits 64 bits, else REAL when exact, else TEXT. */
function numericValue(s: string): SqlValue {
  const t = s.trim();
  if (/^[+-]?\d+$/.test(t)) {
    const n = BigInt(t);
    return n >= INT64_MIN && n <= INT64_MAX ? n : t;
  }
  if (t === "NaN") return t;
  if (!NUMERIC_RE.test(t)) throw invalid("numeric", s);
  return Number(t);
}

/** Decodes text-format bytea (hex `\x…` or escape format). */
export function parseByteaText(s: string): Uint8Array {
  if (s.startsWith("\\x")) {
    const hex = s.slice(2).replace(/\s+/g, "");
    if (hex.length % 2 || /[^0-9a-f]/i.test(hex)) throw invalid("bytea", s.slice(0, 40));
    const out = new Uint8Array(hex.length / 2);
    for (let i = 0; i < out.length; i++) out[i] = parseInt(hex.slice(i * 2, i * 2 + 2), 16);
    return out;
  }
  const bytes: number[] = [];
  const raw = enc.encode(s);
  for (let i = 0; i < raw.length; i++) {
    if (raw[i] !== 0x5c) {
      bytes.push(raw[i]);
    } else if (raw[i + 1] === 0x5c) {
      bytes.push(0x5c);
      i++;
    } else {
      const oct = s.length >= i + 4 ? String.fromCharCode(...raw.subarray(i + 1, i + 4)) : "";
      if (!/^[0-3][0-7]{2}$/.test(oct)) throw invalid("bytea", s.slice(0, 40));
      bytes.push(parseInt(oct, 8));
      i += 3;
    }
  }
  return new Uint8Array(bytes);
}

function parseBool(s: string): bigint {
  const w = s.trim().toLowerCase();
  if (TRUE_WORDS.has(w)) return 1n;
  if (FALSE_WORDS.has(w)) return 0n;
  throw invalid("boolean", s);
}

function decodeText(s: string, oid: number): SqlValue {
  switch (oid) {
    case OID.int2:
    case OID.int4:
    case OID.int8:
    case OID.oid:
      return parseInteger(
        s,
        oid === OID.int8 ? "bigint" : oid === OID.int2 ? "smallint" : "integer",
      );
    case OID.float4:
    case OID.float8:
      return parseFloatText(s, "double precision");
    case OID.numeric:
      return numericValue(s);
    case OID.bool:
      return parseBool(s);
    case OID.bytea:
      return parseByteaText(s);
    default:
      return s;
  }
}

function need(b: Uint8Array, n: number, typeName: string): DataView {
  if (b.length !== n) {
    throw new PgError("22P03", `incorrect binary data format in bind parameter (${typeName})`);
  }
  return new DataView(b.buffer, b.byteOffset, b.byteLength);
}

function decodeBinary(b: Uint8Array, oid: number): SqlValue {
  switch (oid) {
    case OID.int2:
      return BigInt(need(b, 2, "int2").getInt16(0));
    case OID.int4:
      return BigInt(need(b, 4, "int4").getInt32(0));
    case OID.oid:
      return BigInt(need(b, 4, "oid").getUint32(0));
    case OID.int8:
      return need(b, 8, "int8").getBigInt64(0);
    case OID.float4:
      return need(b, 4, "float4").getFloat32(0);
    case OID.float8:
      return need(b, 8, "float8").getFloat64(0);
    case OID.bool:
      return need(b, 1, "bool").getUint8(0) ? 1n : 0n;
    case OID.numeric:
      return numericValue(decodeNumeric(b));
    case OID.date: {
      const days = need(b, 4, "date").getInt32(0);
      return new Date(PG_EPOCH_MS + days * DAY_MS).toISOString().slice(0, 10);
    }
    case OID.timestamp:
    case OID.timestamptz: {
      const us = need(b, 8, "timestamp").getBigInt64(0);
      const ms = Number(us / 1000n) + PG_EPOCH_MS;
      const micros = Number(((us % 1000000n) + 1000000n) % 1000000n);
      const iso = new Date(Math.floor(ms / 1000) * 1000).toISOString().slice(0, 19).replace(
        "T",
        " ",
      );
      const frac = micros ? "." + pad(micros, 6).replace(/0+$/, "") : "";
      return iso + frac + (oid === OID.timestamptz ? "+00" : "");
    }
    case OID.uuid: {
      need(b, 16, "uuid");
      const h = Array.from(b, (x) => HEX[x]).join("");
      return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${
        h.slice(20)
      }`;
    }
    case OID.jsonb:
      if (b.length < 1 || b[0] !== 1) {
        throw new PgError("22P03", "unsupported jsonb version number");
      }
      return utf8(b.subarray(1));
    case OID.text:
    case OID.varchar:
    case OID.bpchar:
    case OID.name:
    case OID.char:
    case OID.json:
    case OID.xml:
    case OID.unknown:
      return utf8(b);
    default:
      // bytea, and binary data of an unspecified type (e.g. node-pg Buffers)
      return b.slice();
  }
}

/**
 * Decodes one Bind parameter into a value to bind: integers → bigint, floats →
 * number, bool → 1n/0n, bytea → Uint8Array, everything else → text.
 */
export function decodeParam(raw: Uint8Array | null, oid: number, format: number): SqlValue {
  if (raw === null) return null;
  return format === 1 ? decodeBinary(raw, oid) : decodeText(utf8(raw), oid);
}
