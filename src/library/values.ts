/**
 * Values crossing the library's API: parameters in the HTTP API's forms (plus `Uint8Array`), and
 * result values with nothing lost (INTEGER beyond 2^53 as `bigint`, BLOB as `Uint8Array`).
 *
 * @example
 * ```ts
 * import { toParams, toValue } from "./values.ts";
 * toParams([1, { base64: "AAE=" }]); // [1, Uint8Array [0, 1]]
 * toValue(9007199254740993n, false); // 9007199254740993n (too large for a number)
 * toValue(42n, false); // 42
 * ```
 * @module
 */
import type { Params, ParamValue, SqlValue } from "../engine/mod.ts";
import { HaError } from "../errors/mod.ts";

/** `Uint8Array.fromBase64` (in Deno's V8; not yet in TypeScript's lib). */
const fromBase64 = (Uint8Array as unknown as { fromBase64(s: string): Uint8Array }).fromBase64;

/**
 * One SQLite value as a query returns it: NULL `null`, INTEGER `number` (or `bigint` beyond
 * 2^53, or always with `bigints: true`), REAL `number`, TEXT `string`, BLOB `Uint8Array`.
 *
 * @example
 * ```ts
 * const row: Value[] = [1, 9223372036854775807n, 1.5, "text", new Uint8Array([1]), null];
 * ```
 */
export type Value = null | number | bigint | string | Uint8Array;

/**
 * One parameter: `null`, a number (a safe integer binds as INTEGER, any other as REAL), a
 * `bigint` (INTEGER), a string, a boolean (INTEGER 0/1), a `Uint8Array` or `{ base64 }` (BLOB).
 *
 * @example
 * ```ts
 * const params: Param[] = [42, 2n ** 62n, "x", true, new Uint8Array([0xff]), { base64: "/w==" }];
 * ```
 */
export type Param = null | number | bigint | string | boolean | Uint8Array | { base64: string };

/**
 * Statement parameters: an array binds positionally (`?`, `?NNN`, `$N`); an object binds by
 * name, with or without the prefix (`id`, `:id`, `@id` and `$id` all bind `:id`).
 *
 * @example
 * ```ts
 * await db.query("SELECT * FROM users WHERE id = ? AND name = ?", [1, "ada"]);
 * await db.query("SELECT * FROM users WHERE id = :id", { id: 1 });
 * ```
 */
export type QueryParams = Param[] | Record<string, Param>;

/**
 * Checks and converts parameters for the engine; throws `HaError("bad_request")`.
 *
 * @example
 * ```ts
 * toParams({ data: { base64: "AAE=" } }); // { data: Uint8Array [0, 1] }
 * ```
 */
export function toParams(params: QueryParams | undefined): Params | undefined {
  if (params === undefined || params === null) return undefined;
  if (Array.isArray(params)) return params.map((v, i) => toParam(v, `parameter ${i + 1}`));
  if (typeof params === "object") {
    const out: Record<string, ParamValue> = {};
    for (const [k, v] of Object.entries(params)) out[k] = toParam(v, `parameter "${k}"`);
    return out;
  }
  throw new HaError("bad_request", "params must be an array or an object");
}

function toParam(v: Param, where: string): ParamValue {
  if (
    v === null || typeof v === "number" || typeof v === "bigint" || typeof v === "string" ||
    typeof v === "boolean" || v instanceof Uint8Array
  ) return v;
  if (typeof v === "object" && typeof (v as { base64?: unknown }).base64 === "string") {
    try {
      // Standard or URL-safe, as the HTTP API accepts.
      return fromBase64(v.base64.replace(/-/g, "+").replace(/_/g, "/"));
    } catch {
      throw new HaError("bad_request", `${where}: invalid base64`);
    }
  }
  throw new HaError(
    "bad_request",
    `${where}: expected null, a number, a bigint, a string, a boolean, a Uint8Array or ` +
      `{ base64: "..." }, got ${v === undefined ? "undefined" : typeof v}`,
  );
}

/**
 * An engine value for the caller: INTEGER as `number` when exact (unless `bigints`).
 *
 * @example
 * ```ts
 * toValue(7n, false); // 7
 * toValue(7n, true); // 7n
 * ```
 */
export function toValue(v: SqlValue, bigints: boolean): Value {
  if (typeof v !== "bigint" || bigints) return v;
  return v >= -9007199254740991n && v <= 9007199254740991n ? Number(v) : v;
}
