/**
 * PostgreSQL's `statement_timeout` setting: values as PostgreSQL reads them (`5000`, `'5s'`,
 * `'1.5min'`; a bare number is milliseconds; units us, ms, s, min, h, d) and shows them (`5s`).
 * The session passes it to the engine, where it can lower the node's `--statement-timeout` but
 * not raise it (0 means the node's).
 *
 * @example
 * ```ts
 * formatTimeout(parseTimeout("5000")); // "5s"
 * ```
 * @module
 */
import { PgError } from "./errors.ts";

/** The setting's name. */
export const STATEMENT_TIMEOUT = "statement_timeout";

const UNITS: Record<string, number> = {
  us: 0.001,
  ms: 1,
  s: 1000,
  min: 60_000,
  h: 3_600_000,
  d: 86_400_000,
};
const MAX_MS = 2_147_483_647;

/** Milliseconds of a `statement_timeout` value; PgError 22023 when it is not one. */
export function parseTimeout(value: string): number {
  const m = /^\s*(\d+(?:\.\d*)?|\.\d+)\s*([a-z]*)\s*$/.exec(value);
  const unit = m ? (m[2] === "" ? 1 : UNITS[m[2]]) : undefined;
  if (!m || unit === undefined) {
    throw new PgError("22023", `invalid value for parameter "statement_timeout": "${value}"`, {
      hint: 'Valid units for this parameter are "us", "ms", "s", "min", "h", and "d".',
    });
  }
  const ms = Math.round(Number(m[1]) * unit);
  if (ms > MAX_MS) {
    throw new PgError(
      "22023",
      `${ms} ms is outside the valid range for parameter "statement_timeout" (0 .. ${MAX_MS})`,
    );
  }
  return ms;
}

/** Shows milliseconds as PostgreSQL does: the largest unit that divides them (`0` for none). */
export function formatTimeout(ms: number): string {
  if (ms === 0) return "0";
  for (const [unit, size] of [["d", 86_400_000], ["h", 3_600_000], ["min", 60_000], ["s", 1000]]) {
    if (ms % (size as number) === 0) return `${ms / (size as number)}${unit}`;
  }
  return `${ms}ms`;
}

/** The last value {@link sessionTimeoutMs} parsed (read per query; settings change rarely). */
let lastValue: string | undefined;
let lastMs = 0;

/** A session's `statement_timeout` in ms (0 = the node's `--statement-timeout`). */
export function sessionTimeoutMs(settings: { get(name: string): string | undefined }): number {
  const value = settings.get(STATEMENT_TIMEOUT) ?? "0";
  if (value !== lastValue) {
    lastMs = parseTimeout(value); // throws before the cache changes
    lastValue = value;
  }
  return lastMs;
}

/**
 * The timeout of a statement ha runs itself (a catalog query): the session's value lowers the
 * node's `--statement-timeout` (0 = the node's), as the engine does for the statements it runs.
 */
export function effectiveTimeoutMs(nodeMs: number, sessionMs: number): number {
  if (nodeMs === 0) return sessionMs;
  return sessionMs === 0 ? nodeMs : Math.min(sessionMs, nodeMs);
}
