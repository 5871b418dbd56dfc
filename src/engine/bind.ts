/** Converts engine {@link Params} into node:sqlite bind arguments. */
import { HaError } from "../errors/mod.ts";
import type { Params, ParamValue, SqlValue } from "./types.ts";
import { usesDollarNumbers } from "./split.ts";

/** Arguments for `StatementSync.all/run`: an optional named object, then positional values. */
export type BindArgs = [Record<string, SqlValue>, ...SqlValue[]] | SqlValue[];

/** Normalises one parameter value to what node:sqlite binds with the right storage class. */
export function toBindValue(v: ParamValue, where: string): SqlValue {
  if (v === null || typeof v === "string" || typeof v === "bigint") return v;
  if (typeof v === "number") {
    // node:sqlite binds every JS number as REAL; integral values must stay INTEGER.
    return Number.isSafeInteger(v) ? BigInt(v) : v;
  }
  if (typeof v === "boolean") return v ? 1n : 0n;
  if (v instanceof Uint8Array) return v;
  throw new HaError("bad_request", `unsupported value for parameter ${where}`);
}

const POSITIONAL_KEY = /^[$?]?(\d+)$/;

/** Builds the bind arguments for `sql` from `params`. */
export function bindArgs(sql: string, params: Params | undefined): BindArgs {
  if (params === undefined || params === null) return [];
  if (Array.isArray(params)) {
    return positional(
      sql,
      params.map((v, i) => toBindValue(v, `${i + 1}`)),
    );
  }
  if (typeof params !== "object") {
    throw new HaError("bad_request", "params must be an array or an object");
  }
  const keys = Object.keys(params);
  if (keys.length > 0 && keys.every((k) => POSITIONAL_KEY.test(k))) {
    const values: SqlValue[] = [];
    for (const k of keys) {
      const idx = Number(POSITIONAL_KEY.exec(k)![1]);
      if (idx < 1) throw new HaError("bad_request", `invalid positional parameter "${k}"`);
      values[idx - 1] = toBindValue(params[k], k);
    }
    for (let i = 0; i < values.length; i++) if (values[i] === undefined) values[i] = null;
    return positional(sql, values);
  }
  const named: Record<string, SqlValue> = {};
  for (const k of keys) {
    const bare = /^[:@$]/.test(k) && k.length > 1 ? k.slice(1) : k;
    if (!/^[\p{L}\p{N}_$]+$/u.test(bare)) {
      throw new HaError("bad_request", `invalid parameter name "${k}"`);
    }
    named[bare] = toBindValue(params[k], k);
  }
  return [named];
}

function positional(sql: string, values: SqlValue[]): BindArgs {
  if (!usesDollarNumbers(sql)) return values;
  const named: Record<string, SqlValue> = {};
  values.forEach((v, i) => named[`$${i + 1}`] = v);
  return [named];
}
