/**
 * Exact JSON encoding of SQLite values for the replication wire format, so that after
 * replication `SELECT typeof(c), quote(c)` is identical on every node.
 *
 * | storage class | JSON |
 * |---|---|
 * | NULL | `null` |
 * | INTEGER within ±(2^53−1) | number |
 * | INTEGER outside | `{"int": "digits"}` |
 * | REAL integral or non-finite | `{"real": "1.0"}` / `{"real": "Infinity"}` |
 * | REAL other | number (always has a fraction or exponent, so it decodes as REAL) |
 * | TEXT | string |
 * | BLOB | `{"blob": "base64"}` |
 *
 * @example
 * ```ts
 * encodeValue(2n ** 63n - 1n); // { int: "9223372036854775807" }
 * decodeValue({ real: "1.0" }); // 1 (a number: binds as REAL with node:sqlite)
 * ```
 * @module
 */

/** A value as it travels in JSON. */
export type WireValue =
  | null
  | number
  | string
  | { int: string }
  | { real: string }
  | { blob: string };

/** A SQLite value inside ha: INTEGER is bigint, REAL number, BLOB Uint8Array. */
export type CdcValue = null | bigint | number | string | Uint8Array;

/**
 * Encodes one value. INTEGERs must arrive as bigint (or as a safe integer number only when the
 * caller knows the storage class is INTEGER — prefer bigint).
 *
 * @example
 * ```ts
 * encodeValue(1.5); // 1.5
 * encodeValue(new Uint8Array([1, 2])); // { blob: "AQI=" }
 * ```
 */
export function encodeValue(v: CdcValue): WireValue {
  if (v === null || typeof v === "string") return v;
  if (typeof v === "bigint") {
    return v >= -MAX_SAFE && v <= MAX_SAFE ? Number(v) : { int: v.toString() };
  }
  if (typeof v === "number") {
    if (!Number.isFinite(v) || Number.isInteger(v)) return { real: realText(v) };
    return v;
  }
  if (v instanceof Uint8Array) return { blob: toBase64(v) };
  throw new TypeError(`cannot encode value of type ${typeof v}`);
}

/**
 * Decodes one wire value: INTEGER → bigint, REAL → number (node:sqlite binds every JS number
 * as REAL and bigint as INTEGER, so binding the result restores the storage class).
 *
 * @example
 * ```ts
 * decodeValue(5); // 5n
 * decodeValue({ int: "-9223372036854775808" }); // -9223372036854775808n
 * ```
 */
export function decodeValue(w: WireValue): CdcValue {
  if (w === null || typeof w === "string") return w;
  if (typeof w === "number") return Number.isInteger(w) ? BigInt(w) : w;
  if (typeof w === "object") {
    if ("int" in w && typeof w.int === "string" && /^-?\d+$/.test(w.int)) return BigInt(w.int);
    if ("real" in w && typeof w.real === "string") return Number(w.real);
    if ("blob" in w && typeof w.blob === "string") return fromBase64(w.blob);
  }
  throw new TypeError(`invalid wire value: ${JSON.stringify(w)}`);
}

/** Two wire values are equal (for keys). */
export function wireKey(values: WireValue[]): string {
  return JSON.stringify(values);
}

const MAX_SAFE = BigInt(Number.MAX_SAFE_INTEGER);

function realText(v: number): string {
  if (Number.isNaN(v)) return "NaN";
  if (v === Infinity) return "Infinity";
  if (v === -Infinity) return "-Infinity";
  const s = String(v);
  return /[.eE]/.test(s) ? s : `${s}.0`;
}

function toBase64(b: Uint8Array): string {
  let s = "";
  for (let i = 0; i < b.length; i += 0x8000) {
    s += String.fromCharCode(...b.subarray(i, i + 0x8000));
  }
  return btoa(s);
}

function fromBase64(s: string): Uint8Array {
  const bin = atob(s);
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out;
}
