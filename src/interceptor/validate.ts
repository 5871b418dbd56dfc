/**
 * Strict validation of what hooks return. Anything that is not exactly one of the documented
 * shapes is rejected with a reason (the host then logs it and uses the default outcome).
 *
 * @module
 */
import type {
  ApplyError,
  Change,
  ChangeSet,
  Conflict,
  Resolution,
  SqlValue,
} from "../../interceptors/types.ts";

/** A hook result that is not one of the documented shapes. */
export class InvalidResult extends Error {
  /**
   * A rejected result.
   *
   * @param message what is wrong with the result
   */
  constructor(message: string) {
    super(message);
    this.name = "InvalidResult";
  }
}

/** What the applier does after `beforeApply`. */
export type BeforeOutcome =
  | { skip: true }
  | { skip: false; changeset: ChangeSet; rewritten: boolean };

const OPERATIONS = new Set(["INSERT", "UPDATE", "DELETE", "SQL"]);

/** Whether `v` is one exact SQLite value. */
export function isSqlValue(v: unknown): v is SqlValue {
  return v === null || typeof v === "bigint" || typeof v === "number" || typeof v === "string" ||
    v instanceof Uint8Array;
}

function describe(v: unknown): string {
  if (v === null) return "null";
  if (Array.isArray(v)) return "an array";
  if (typeof v === "object") return `an object with keys [${Object.keys(v as object).join(", ")}]`;
  if (typeof v === "string") return `the string ${JSON.stringify(v.slice(0, 40))}`;
  return `${typeof v} ${String(v).slice(0, 40)}`;
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  if (v === null || typeof v !== "object" || Array.isArray(v)) return false;
  const proto = Object.getPrototypeOf(v);
  return proto === Object.prototype || proto === null;
}

function onlyKeys(o: Record<string, unknown>, allowed: string[], what: string): void {
  const extra = Object.keys(o).filter((k) => !allowed.includes(k));
  if (extra.length) throw new InvalidResult(`${what} has unexpected keys [${extra.join(", ")}]`);
}

function checkValues(v: unknown, n: number, where: string): SqlValue[] {
  if (!Array.isArray(v)) throw new InvalidResult(`${where} must be an array, got ${describe(v)}`);
  if (v.length !== n) {
    throw new InvalidResult(`${where} has ${v.length} values for ${n} columns`);
  }
  v.forEach((x, i) => {
    if (!isSqlValue(x)) {
      throw new InvalidResult(
        `${where}[${i}] is ${describe(x)}: use null, bigint (INTEGER), number (REAL), string ` +
          `or Uint8Array`,
      );
    }
  });
  return v as SqlValue[];
}

function checkStrings(v: unknown, where: string): string[] {
  if (!Array.isArray(v) || v.some((x) => typeof x !== "string")) {
    throw new InvalidResult(`${where} must be an array of strings`);
  }
  return v as string[];
}

function checkRowid(v: unknown, where: string): void {
  if (v !== null && v !== undefined && typeof v !== "bigint") {
    throw new InvalidResult(`${where} must be a bigint or null, got ${describe(v)}`);
  }
}

/** Validates one change of a rewritten changeset. */
export function checkChange(c: unknown, i: number): Change {
  const at = `changes[${i}]`;
  if (!isPlainObject(c)) throw new InvalidResult(`${at} must be an object, got ${describe(c)}`);
  if (typeof c.operation !== "string" || !OPERATIONS.has(c.operation)) {
    throw new InvalidResult(`${at}.operation must be INSERT, UPDATE, DELETE or SQL`);
  }
  if (c.database !== undefined && typeof c.database !== "string") {
    throw new InvalidResult(`${at}.database must be a string`);
  }
  if (c.hlc !== undefined && !Number.isSafeInteger(c.hlc)) {
    throw new InvalidResult(`${at}.hlc must be a safe integer`);
  }
  if (c.operation === "SQL") {
    if (typeof c.command !== "string" || c.command.trim() === "") {
      throw new InvalidResult(`${at}.command must be a non-empty SQL string`);
    }
    return c as unknown as Change;
  }
  if (typeof c.table !== "string" || c.table === "") {
    throw new InvalidResult(`${at}.table must be a non-empty string`);
  }
  const columns = checkStrings(c.columns, `${at}.columns`);
  if (columns.length === 0) throw new InvalidResult(`${at}.columns is empty`);
  const pk = checkStrings(c.pk_columns, `${at}.pk_columns`);
  for (const p of pk) {
    if (!columns.includes(p)) throw new InvalidResult(`${at}.pk_columns: "${p}" is not a column`);
  }
  checkRowid(c.old_rowid, `${at}.old_rowid`);
  checkRowid(c.new_rowid, `${at}.new_rowid`);
  const needOld = c.operation !== "INSERT", needNew = c.operation !== "DELETE";
  if (needOld) checkValues(c.old_values, columns.length, `${at}.old_values`);
  else if (c.old_values != null) throw new InvalidResult(`${at}.old_values must be null (INSERT)`);
  if (needNew) checkValues(c.new_values, columns.length, `${at}.new_values`);
  else if (c.new_values != null) throw new InvalidResult(`${at}.new_values must be null (DELETE)`);
  return c as unknown as Change;
}

/**
 * Interprets a `beforeApply` result: `undefined` → apply `original`; `{skip: true}` → skip;
 * `{changeset}` → apply its (validated) `changes` with `original`'s other fields.
 */
export function parseBeforeResult(r: unknown, original: ChangeSet): BeforeOutcome {
  if (r === undefined) return { skip: false, changeset: original, rewritten: false };
  if (!isPlainObject(r)) {
    throw new InvalidResult(`expected undefined, {skip: true} or {changeset}, got ${describe(r)}`);
  }
  if ("skip" in r) {
    onlyKeys(r, ["skip"], "the result");
    if (r.skip !== true) throw new InvalidResult(`skip must be true, got ${describe(r.skip)}`);
    return { skip: true };
  }
  if ("changeset" in r) {
    onlyKeys(r, ["changeset"], "the result");
    const cs = r.changeset;
    if (!isPlainObject(cs)) throw new InvalidResult(`changeset must be an object`);
    if (!Array.isArray(cs.changes)) throw new InvalidResult(`changeset.changes must be an array`);
    const changes = cs.changes.map(checkChange);
    return { skip: false, changeset: { ...original, changes }, rewritten: true };
  }
  throw new InvalidResult(`expected undefined, {skip: true} or {changeset}, got ${describe(r)}`);
}

/**
 * Interprets an `afterApply` result: the final error (null = success/swallowed).
 */
export function parseAfterResult(r: unknown, error: ApplyError | null): ApplyError | null {
  if (r === undefined) return error;
  if (!isPlainObject(r) || !("error" in r)) {
    throw new InvalidResult(
      `expected undefined, {error: null} or {error: "message"}, got ${describe(r)}`,
    );
  }
  onlyKeys(r, ["error"], "the result");
  if (r.error === null) return null;
  if (typeof r.error === "string" && r.error !== "") return { message: r.error };
  throw new InvalidResult(`error must be null or a non-empty string, got ${describe(r.error)}`);
}

/** Interprets a `resolveConflict` result for `conflict`. */
export function parseResolution(r: unknown, conflict: Conflict): Resolution {
  if (r === undefined || r === "local" || r === "remote") return r;
  if (isPlainObject(r) && "values" in r) {
    onlyKeys(r, ["values"], "the resolution");
    return { values: checkValues(r.values, conflict.columns.length, "values") };
  }
  throw new InvalidResult(
    `expected undefined, "local", "remote" or {values: [...]}, got ${describe(r)}`,
  );
}
