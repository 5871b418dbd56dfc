/** Converts engine {@link Params} into node:sqlite bind arguments. */
import { HaError } from "../errors/mod.ts";
import type { Params, ParamValue, SqlValue } from "./types.ts";
import { tokenize } from "./lexer.ts";

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
const DOLLAR_NUMBER = /^\$\d+$/;

/**
 * The placeholders of a statement by SQLite slot (index − 1), as written: `?3`, `:name`, `$1`.
 * A bare `?` takes the next slot and is shown as `?N`; slots no placeholder names stay empty.
 */
export function parameterSlots(sql: string): (string | undefined)[] {
  const slots: (string | undefined)[] = [];
  const seen = new Set<string>();
  for (const t of tokenize(sql)) {
    if (t.kind !== "param") continue;
    const numbered = /^\?(\d+)$/.exec(t.text);
    if (numbered) {
      const i = Number(numbered[1]) - 1;
      if (i >= 0 && i < 32_767) slots[i] ??= `?${i + 1}`;
    } else if (t.text === "?") {
      slots.push(`?${slots.length + 1}`);
    } else if (!seen.has(t.text)) {
      seen.add(t.text);
      slots.push(t.text);
    }
  }
  return slots;
}

/**
 * `sql` with its placeholders made anonymous (`?`) when they are exactly `$1`, `$2`, … `$n`, in
 * this order and each once (what PostgreSQL drivers send), else `null`. The two texts bind the
 * same values to the same slots, but SQLite names a `$N` placeholder: node:sqlite binds it by
 * name, through an object, at ~1.4 µs more per point select than a positional `?`.
 */
export function anonymousDollars(sql: string): string | null {
  let out = "";
  let from = 0;
  let n = 0;
  for (const t of tokenize(sql)) {
    if (t.kind !== "param") continue;
    if (t.text !== `$${n + 1}`) return null;
    n++;
    out += sql.slice(from, t.start) + "?";
    from = t.end;
  }
  return n === 0 ? null : out + sql.slice(from);
}

/** What binding needs of a statement's placeholders, worked out once per text. */
interface SlotPlan {
  slots: (string | undefined)[];
  /** Placeholders (slots named). */
  count: number;
  /** Each placeholder and the index of its value (by slot, or by its `$N`), in slot order. */
  checks: { slot: string; index: number }[];
  /** A `$N` placeholder: values bind by name. */
  dollar: boolean;
}

const planCache = new Map<string, SlotPlan>();

function planOf(sql: string): SlotPlan {
  let plan = planCache.get(sql);
  if (!plan) {
    const slots = parameterSlots(sql);
    const checks: SlotPlan["checks"] = [];
    for (const [i, slot] of slots.entries()) {
      if (slot === undefined) continue;
      const dollar = /^\$(\d+)$/.exec(slot);
      checks.push({ slot, index: dollar ? Number(dollar[1]) - 1 : i });
    }
    plan = {
      slots,
      count: checks.length,
      checks,
      dollar: slots.some((s) => s !== undefined && DOLLAR_NUMBER.test(s)),
    };
    planCache.set(sql, plan);
    if (planCache.size > 512) planCache.delete(planCache.keys().next().value!);
  }
  return plan;
}

/** Unbound parameters would silently be NULL: name the first one instead. */
function missing(slot: string, count: number): HaError {
  return new HaError(
    "bad_request",
    `missing parameter ${slot}: the statement has ${count} parameter${count === 1 ? "" : "s"}`,
  );
}

/** Checks that `values` (by slot, or by `$N` name) fill every placeholder of `sql`. */
function checkPositional(plan: SlotPlan, values: SqlValue[]): void {
  for (const c of plan.checks) {
    if (values[c.index] === undefined) throw missing(c.slot, plan.count);
  }
}

/** Checks that `named` (bare names) fills every placeholder of `sql`. */
function checkNamed(plan: SlotPlan, named: Record<string, SqlValue>): void {
  for (const slot of plan.slots) {
    if (slot === undefined) continue;
    if (slot.startsWith("?") || !Object.hasOwn(named, slot.slice(1))) {
      throw missing(slot, plan.count);
    }
  }
}

/**
 * Builds the bind arguments for `sql` from `params`; `anonymous`: the statement was prepared
 * from {@link anonymousDollars}'s text, so `$N` values bind by position. Throws
 * HaError("bad_request") naming the first placeholder no parameter fills.
 */
export function bindArgs(sql: string, params: Params | undefined, anonymous = false): BindArgs {
  const plan = planOf(sql);
  if (params === undefined || params === null) {
    checkPositional(plan, []);
    return [];
  }
  if (Array.isArray(params)) {
    const values: SqlValue[] = [];
    for (let i = 0; i < params.length; i++) {
      const v = params[i];
      // The common values as they are; the position is named only when one cannot be bound.
      if (v === null || typeof v === "string" || typeof v === "bigint") values[i] = v;
      else if (v !== undefined || i in params) values[i] = toBindValue(v, `${i + 1}`);
      else values.length = i + 1; // a hole stays one (checkPositional names it)
    }
    checkPositional(plan, values);
    return anonymous ? onlyPlaceholders(plan, values) : positional(plan, values);
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
    checkPositional(plan, values);
    for (let i = 0; i < values.length; i++) if (values[i] === undefined) values[i] = null;
    return anonymous ? onlyPlaceholders(plan, values) : positional(plan, values);
  }
  const named: Record<string, SqlValue> = {};
  for (const k of keys) {
    const bare = /^[:@$]/.test(k) && k.length > 1 ? k.slice(1) : k;
    if (!/^[\p{L}\p{N}_$]+$/u.test(bare)) {
      throw new HaError("bad_request", `invalid parameter name "${k}"`);
    }
    named[bare] = toBindValue(params[k], k);
  }
  checkNamed(plan, named);
  if (!anonymous) return [named];
  if (keys.length > plan.count) throw extra(plan, keys.find((k) => !/^[$]?\d+$/.test(k))!);
  return plan.slots.map((slot) => named[slot!.slice(1)]);
}

/** A value for a `$N` the statement does not have (SQLite would name it as unknown). */
function extra(plan: SlotPlan, name: string): HaError {
  const n = plan.count;
  return new HaError(
    "bad_request",
    `unknown parameter ${name}: the statement has ${n} parameter${n === 1 ? "" : "s"}`,
  );
}

/** `values` of an anonymized statement, refusing one past its last placeholder. */
function onlyPlaceholders(plan: SlotPlan, values: SqlValue[]): SqlValue[] {
  if (values.length > plan.count) throw extra(plan, `$${plan.count + 1}`);
  return values;
}

function positional(plan: SlotPlan, values: SqlValue[]): BindArgs {
  // `$1`-style placeholders are names to SQLite. From the cached plan: lexing the text on
  // every execution cost ~3 % of the main thread on point selects.
  if (!plan.dollar) return values;
  const named: Record<string, SqlValue> = {};
  values.forEach((v, i) => named[`$${i + 1}`] = v);
  return [named];
}
