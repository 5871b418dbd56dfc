/**
 * `--replication-policy` and `--row-identify` values.
 *
 * @example
 * ```ts
 * import { parseReplicationPolicy } from "./policy.ts";
 * parseReplicationPolicy("by_start_sequence=42"); // { kind: "by_start_sequence", seq: 42 }
 * ```
 * @module
 */

import type { IdScheme, ReplicationPolicy, RowIdentify } from "./types.ts";
import { ValueError } from "./values.ts";

/** Accepted values of `--row-identify`, default first. */
export const ROW_IDENTIFY_STRATEGIES: readonly RowIdentify[] = ["pk", "rowid", "full"];

/**
 * Parses `--row-identify` (any case).
 *
 * @example
 * ```ts
 * import { parseRowIdentify } from "./policy.ts";
 * parseRowIdentify("ROWID"); // "rowid"
 * ```
 */
export function parseRowIdentify(text: string): RowIdentify {
  const t = text.trim().toLowerCase();
  const found = ROW_IDENTIFY_STRATEGIES.find((s) => s === t);
  if (!found) throw new ValueError(`one of ${ROW_IDENTIFY_STRATEGIES.join(", ")}`);
  return found;
}

/** Accepted values of `--id-scheme`, default first. */
export const ID_SCHEMES: readonly IdScheme[] = ["cluster", "js-safe", "sqlite"];

/**
 * Parses `--id-scheme` (any case).
 *
 * @example
 * ```ts
 * import { parseIdScheme } from "./policy.ts";
 * parseIdScheme("JS-SAFE"); // "js-safe"
 * ```
 */
export function parseIdScheme(text: string): IdScheme {
  const t = text.trim().toLowerCase();
  const found = ID_SCHEMES.find((s) => s === t);
  if (!found) throw new ValueError(`one of ${ID_SCHEMES.join(", ")}`);
  return found;
}

const TIME_FORMATS = 'an RFC 3339 time or "YYYY-MM-DD HH:MM:SS" (UTC)';
const POLICY_EXPECTED = "one of all, last, new, by_start_sequence=N (N >= 1), " +
  `by_start_time=TIME (${TIME_FORMATS})`;

/**
 * Parses `all`, `last`, `new`, `by_start_sequence=N` (N >= 1) or `by_start_time=TIME`
 * (see {@link parseTimestamp}). Keywords are case-insensitive; empty means `all`.
 *
 * @example
 * ```ts
 * import { parseReplicationPolicy } from "./policy.ts";
 * parseReplicationPolicy("by_start_time=2024-05-01 12:00:00").kind; // "by_start_time"
 * ```
 */
export function parseReplicationPolicy(text: string): ReplicationPolicy {
  const t = text.trim();
  const eq = t.indexOf("=");
  const keyword = (eq < 0 ? t : t.slice(0, eq)).trim().toLowerCase();
  const arg = eq < 0 ? null : t.slice(eq + 1).trim();
  if (arg === null) {
    if (keyword === "" || keyword === "all") return { kind: "all" };
    if (keyword === "last") return { kind: "last" };
    if (keyword === "new") return { kind: "new" };
  } else if (keyword === "by_start_sequence") {
    if (/^\d+$/.test(arg)) {
      const seq = Number(arg);
      if (Number.isSafeInteger(seq) && seq >= 1) return { kind: "by_start_sequence", seq };
    }
    throw new ValueError("by_start_sequence=N with N an integer >= 1");
  } else if (keyword === "by_start_time") {
    try {
      return { kind: "by_start_time", time: parseTimestamp(arg) };
    } catch {
      throw new ValueError(`by_start_time=TIME with TIME ${TIME_FORMATS}`);
    }
  }
  throw new ValueError(POLICY_EXPECTED);
}

/**
 * Formats a policy the way {@link parseReplicationPolicy} reads it (times in RFC 3339).
 *
 * @example
 * ```ts
 * import { formatReplicationPolicy } from "./policy.ts";
 * formatReplicationPolicy({ kind: "by_start_sequence", seq: 7 }); // "by_start_sequence=7"
 * ```
 */
export function formatReplicationPolicy(policy: ReplicationPolicy): string {
  switch (policy.kind) {
    case "by_start_sequence":
      return `by_start_sequence=${policy.seq}`;
    case "by_start_time":
      return `by_start_time=${policy.time.toISOString()}`;
    default:
      return policy.kind;
  }
}

const TIMESTAMP =
  /^(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?([Zz]|[+-]\d{2}:\d{2})?$/;

/**
 * Parses an RFC 3339 timestamp (`2024-05-01T12:00:00Z`, `2024-05-01T14:00:00.5+02:00`) or
 * `YYYY-MM-DD HH:MM:SS` without zone, read as UTC. Fields are range-checked; sub-millisecond
 * digits are truncated. Throws {@link ValueError}.
 *
 * @example
 * ```ts
 * import { parseTimestamp } from "./policy.ts";
 * parseTimestamp("2024-05-01 12:00:00").toISOString(); // "2024-05-01T12:00:00.000Z"
 * ```
 */
export function parseTimestamp(text: string): Date {
  const m = TIMESTAMP.exec(text.trim());
  if (!m) throw new ValueError(TIME_FORMATS);
  const [year, month, day, hour, minute, second] = m.slice(1, 7).map(Number);
  const millis = m[7] ? Number(m[7].slice(0, 3).padEnd(3, "0")) : 0;
  if (month < 1 || month > 12 || day < 1 || hour > 23 || minute > 59 || second > 59) {
    throw new ValueError(TIME_FORMATS);
  }
  let offsetMin = 0;
  const zone = m[8];
  if (zone && zone !== "Z" && zone !== "z") {
    const oh = Number(zone.slice(1, 3));
    const om = Number(zone.slice(4, 6));
    if (oh > 23 || om > 59) throw new ValueError(TIME_FORMATS);
    offsetMin = (zone[0] === "-" ? -1 : 1) * (oh * 60 + om);
  }
  // Built in a leap year, then moved to `year` (Date.UTC maps years 0..99 to 19xx).
  const date = new Date(Date.UTC(2000, month - 1, day, hour, minute, second, millis));
  date.setUTCFullYear(year);
  // Reject days beyond the month's end (2023-02-30 would roll over to March).
  if (date.getUTCDate() !== day) throw new ValueError(TIME_FORMATS);
  return new Date(date.getTime() - offsetMin * 60_000);
}
