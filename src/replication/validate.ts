/**
 * What a stream message must be before any of it is applied. A message that fails these checks
 * can never become valid by retrying: it is dead-lettered (see `dead_letters.ts`) and
 * replication goes on. A valid message that fails to apply keeps the retry/skip path.
 *
 * Checked: the `--cluster-key` signature, JSON and the changeset's shape (strings, arrays of
 * column names, primary-key columns among the columns, as many values as columns, every value a
 * wire value), every HLC a positive safe integer no further ahead of the local clock than
 * `--max-clock-skew`, and every DDL change a single schema statement ({@link ddlRefusal}).
 *
 * @example
 * ```ts
 * const cs = checkMessage({ data: '{"id":"…"}' }, { clusterKey: null, maxClockSkewMs: 60_000 });
 * ```
 * @module
 */
import {
  type ChangeSet,
  ddlRefusal,
  decodeChangeSet,
  decodeValue,
  type WireValue,
} from "../cdc/mod.ts";
import type { verifyPayload } from "./signature.ts";

/** A message that can never be applied; the reason is recorded with its dead letter. */
export class InvalidMessage extends Error {
  constructor(reason: string) {
    super(reason);
    this.name = "InvalidMessage";
  }
}

/**
 * A valid message whose table or column does not exist here yet: its DDL may still come later in
 * the stream (a changeset whose publication was retried lands after its successors), so it is
 * parked in `_ha_dead_letters` and applied again after each later DDL.
 */
export class SchemaMisfit extends InvalidMessage {
  constructor(reason: string) {
    super(reason);
    this.name = "SchemaMisfit";
  }
}

/**
 * Set by {@link loadVerifier}. node:crypto costs an isolate (the writer's) ~2 MB of heap and
 * 3 MB of RSS, and only `--cluster-key` needs it.
 */
let verify: typeof verifyPayload | null = null;

/** Loads the signature check: before {@link checkMessage} checks messages with a cluster key. */
export async function loadVerifier(): Promise<void> {
  verify ??= (await import("./signature.ts")).verifyPayload;
}

/** What {@link checkMessage} checks against. */
export interface MessageRules {
  /** `--cluster-key`: messages must be signed with it; null = no signature needed. */
  clusterKey: string | null;
  /** `--max-clock-skew`: how far ahead of `now` an HLC may be, ms. */
  maxClockSkewMs: number;
  /** Local wall clock, ms (injectable for tests). Default `Date.now`. */
  now?: () => number;
}

/**
 * Decodes and checks one message (`data`, and `sig` from its `Ha-Signature` header; `signed` is
 * the text the signature covers when `data` was rewritten by an interceptor). Throws
 * {@link InvalidMessage} with the reason.
 */
export function checkMessage(
  m: { data: string; sig?: string; signed?: string },
  rules: MessageRules,
): ChangeSet {
  if (rules.clusterKey !== null) {
    if (!m.sig) throw new InvalidMessage("unsigned changeset (--cluster-key is set)");
    // Not an InvalidMessage: the apply stops with the error, nothing is dead-lettered.
    if (!verify) throw new Error("signature check not loaded (loadVerifier)");
    if (!verify(rules.clusterKey, m.signed ?? m.data, m.sig)) {
      throw new InvalidMessage("bad signature (not signed with this --cluster-key)");
    }
  }
  let cs: ChangeSet;
  try {
    cs = decodeChangeSet(m.data);
  } catch (e) {
    throw new InvalidMessage(`undecodable changeset: ${(e as Error).message}`);
  }
  if (cs.node === "") throw new InvalidMessage(`changeset: "node" is empty`);
  const maxHlc = ((rules.now ?? Date.now)() + rules.maxClockSkewMs) * 1000;
  checkHlc(() => "changeset", cs.hlc, maxHlc);
  // Consecutive row changes of one table share their column lists: those are checked once (and
  // once for consecutive changesets: a catch-up's single-row changesets of one table).
  let shape = checkedShape;
  for (let i = 0; i < cs.changes.length; i++) {
    const c = cs.changes[i];
    const at = () => `change ${i}`;
    if (c.hlc !== undefined) checkHlc(at, c.hlc, maxHlc);
    if (c.operation === "SQL") {
      const why = ddlRefusal(c.command ?? "");
      if (why !== null) throw new InvalidMessage(`${at()}: ${why}`);
      continue;
    }
    if (c.table === "") throw new InvalidMessage(`${at()}: "table" is empty`);
    if (!shape || !sameList(c.columns, shape.columns) || !sameList(c.pk_columns, shape.pk)) {
      checkColumns(at, c.columns, c.pk_columns);
      shape = checkedShape = { columns: [...c.columns], pk: [...c.pk_columns] };
    }
    checkValues(at, "old_values", c.old_values, c.columns.length);
    checkValues(at, "new_values", c.new_values, c.columns.length);
    checkRowid(at, "old_rowid", c.old_rowid);
    checkRowid(at, "new_rowid", c.new_rowid);
  }
  return cs;
}

/** Copies of the column lists {@link checkColumns} accepted last. */
let checkedShape: { columns: string[]; pk: string[] } | null = null;

/** `at` names the change in an error message (built only then). */
type At = () => string;

function checkColumns(at: At, columns: unknown, pk: unknown): void {
  if (!strings(columns) || columns.length === 0) {
    throw new InvalidMessage(`${at()}: "columns" must be a non-empty array of names`);
  }
  if (new Set(columns).size !== columns.length) {
    throw new InvalidMessage(`${at()}: duplicate column names`);
  }
  if (!strings(pk) || pk.some((p) => !columns.includes(p))) {
    throw new InvalidMessage(`${at()}: "pk_columns" must name columns of the change`);
  }
}

function checkValues(at: At, side: string, values: WireValue[] | undefined, n: number): void {
  if (values === undefined) return;
  if (values.length !== n) {
    throw new InvalidMessage(`${at()}: ${values.length} ${side} for ${n} columns`);
  }
  for (const v of values) wireValue(at, v);
}

function checkRowid(at: At, side: string, r: WireValue | undefined): void {
  if (r === undefined || r === null) return;
  // A JSON number decodes to an integer exactly when it is one.
  const integer = typeof r === "number"
    ? Number.isInteger(r)
    : typeof decodeValue(wireValue(at, r)) === "bigint";
  if (!integer) throw new InvalidMessage(`${at()}: "${side}" must be an integer`);
}

/** Same names in the same order (`b` was checked). */
function sameList(a: unknown, b: string[]): boolean {
  if (a === b) return true;
  if (!Array.isArray(a) || a.length !== b.length) return false;
  for (let i = 0; i < b.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

function checkHlc(at: At, hlc: unknown, max: number): void {
  if (typeof hlc !== "number" || !Number.isSafeInteger(hlc) || hlc <= 0) {
    throw new InvalidMessage(`${at()}: hlc ${JSON.stringify(hlc)} is not a positive safe integer`);
  }
  if (hlc > max) {
    throw new InvalidMessage(
      `${at()}: hlc ${hlc} is ${Math.round((hlc - max) / 1000)} ms further ahead of the local ` +
        "clock than --max-clock-skew allows",
    );
  }
}

function strings(xs: unknown): xs is string[] {
  return Array.isArray(xs) && xs.every((x) => typeof x === "string");
}

function wireValue<T>(at: At, v: T): T {
  // JSON's null, strings and numbers always decode: only objects need the full check (which
  // would allocate a BigInt per integer, for every row of every changeset).
  if (v === null || typeof v === "string" || typeof v === "number") return v;
  try {
    decodeValue(v as never);
  } catch (e) {
    throw new InvalidMessage(`${at()}: ${(e as Error).message}`);
  }
  return v;
}
