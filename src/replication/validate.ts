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
import { type ChangeSet, ddlRefusal, decodeChangeSet, decodeValue } from "../cdc/mod.ts";
import { verifyPayload } from "./signature.ts";

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
    if (!verifyPayload(rules.clusterKey, m.signed ?? m.data, m.sig)) {
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
  checkHlc("changeset", cs.hlc, maxHlc);
  cs.changes.forEach((c, i) => {
    const at = `change ${i}`;
    if (c.hlc !== undefined) checkHlc(at, c.hlc, maxHlc);
    if (c.operation === "SQL") {
      const why = ddlRefusal(c.command ?? "");
      if (why !== null) throw new InvalidMessage(`${at}: ${why}`);
      return;
    }
    if (c.table === "") throw new InvalidMessage(`${at}: "table" is empty`);
    if (!strings(c.columns) || c.columns.length === 0) {
      throw new InvalidMessage(`${at}: "columns" must be a non-empty array of names`);
    }
    if (new Set(c.columns).size !== c.columns.length) {
      throw new InvalidMessage(`${at}: duplicate column names`);
    }
    if (!strings(c.pk_columns) || c.pk_columns.some((p) => !c.columns.includes(p))) {
      throw new InvalidMessage(`${at}: "pk_columns" must name columns of the change`);
    }
    for (const side of ["old_values", "new_values"] as const) {
      const values = c[side];
      if (values === undefined) continue;
      if (values.length !== c.columns.length) {
        throw new InvalidMessage(
          `${at}: ${values.length} ${side} for ${c.columns.length} columns`,
        );
      }
      values.forEach((v) => wireValue(at, v));
    }
    for (const side of ["old_rowid", "new_rowid"] as const) {
      const r = c[side];
      if (r === undefined || r === null) continue;
      if (typeof decodeValue(wireValue(at, r)) !== "bigint") {
        throw new InvalidMessage(`${at}: "${side}" must be an integer`);
      }
    }
  });
  return cs;
}

function checkHlc(at: string, hlc: unknown, max: number): void {
  if (typeof hlc !== "number" || !Number.isSafeInteger(hlc) || hlc <= 0) {
    throw new InvalidMessage(`${at}: hlc ${JSON.stringify(hlc)} is not a positive safe integer`);
  }
  if (hlc > max) {
    throw new InvalidMessage(
      `${at}: hlc ${hlc} is ${Math.round((hlc - max) / 1000)} ms further ahead of the local ` +
        "clock than --max-clock-skew allows",
    );
  }
}

function strings(xs: unknown): xs is string[] {
  return Array.isArray(xs) && xs.every((x) => typeof x === "string");
}

function wireValue<T>(at: string, v: T): T {
  // JSON's null, strings and numbers always decode: only objects need the full check (which
  // would allocate a BigInt per integer, for every row of every changeset).
  if (v === null || typeof v === "string" || typeof v === "number") return v;
  try {
    decodeValue(v as never);
  } catch (e) {
    throw new InvalidMessage(`${at}: ${(e as Error).message}`);
  }
  return v;
}
