/**
 * Parsers and formatters for flag values: booleans, integers, ports, durations,
 * sizes and comma lists. Parsers throw {@link ValueError}, which says what was
 * expected; the flag parser turns it into a one-line config error naming the flag.
 *
 * @example
 * ```ts
 * import { parseDuration, parseSize } from "./values.ts";
 * parseDuration("1h30m"); // 5_400_000 (ms)
 * parseSize("10KiB"); // 10_240 (bytes)
 * ```
 * @module
 */

/**
 * A value that does not parse. `expected` describes the accepted values;
 * `value`, when set, is the offending part (one element of a list).
 *
 * @example
 * ```ts
 * import { ValueError } from "./values.ts";
 * const e = new ValueError("a TCP port 1..65535");
 * e.message; // "expected a TCP port 1..65535"
 * ```
 */
export class ValueError extends Error {
  constructor(readonly expected: string, readonly value?: string) {
    super(`expected ${expected}`);
    this.name = "ValueError";
  }
}

const TRUE = new Set(["true", "1", "yes", "on"]);
const FALSE = new Set(["false", "0", "no", "off"]);

/**
 * Parses `true/false/1/0/yes/no/on/off` (any case).
 *
 * @example
 * ```ts
 * import { parseBoolean } from "./values.ts";
 * parseBoolean("YES"); // true
 * ```
 */
export function parseBoolean(text: string): boolean {
  const t = text.trim().toLowerCase();
  if (TRUE.has(t)) return true;
  if (FALSE.has(t)) return false;
  throw new ValueError("true or false (also 1/0, yes/no)");
}

/**
 * Parses a decimal integer within `[min, max]`.
 *
 * @example
 * ```ts
 * import { parseInteger } from "./values.ts";
 * parseInteger("3", 1, 5, "an integer 1..5"); // 3
 * ```
 */
export function parseInteger(text: string, min: number, max: number, expected: string): number {
  const t = text.trim();
  if (!/^\d+$/.test(t)) throw new ValueError(expected);
  const n = Number(t);
  if (!Number.isSafeInteger(n) || n < min || n > max) throw new ValueError(expected);
  return n;
}

/**
 * Parses a TCP port; `min` is 0 when 0 means "disabled", else 1.
 *
 * @example
 * ```ts
 * import { parsePort } from "./values.ts";
 * parsePort("5432", 0); // 5432
 * ```
 */
export function parsePort(text: string, min: 0 | 1): number {
  const expected = min === 0 ? "a TCP port 0..65535 (0 disables)" : "a TCP port 1..65535";
  return parseInteger(text, min, 65535, expected);
}

const DURATION_UNITS: Record<string, number> = {
  ms: 1,
  s: 1000,
  m: 60_000,
  h: 3_600_000,
  d: 86_400_000,
};

/**
 * Largest duration accepted for timer-based flags: 24 days, below the 2^31-1 ms limit of
 * JavaScript timers (longer delays fire at once).
 */
export const MAX_TIMER_MS = 24 * 86_400_000;

/** Options of {@link parseDuration}. */
export interface DurationLimits {
  /** Whether 0 is accepted (default true). */
  readonly allowZero?: boolean;
  /** Largest accepted value in ms (default: no limit). */
  readonly maxMs?: number;
  /** What 0 means, for the error message (e.g. "disables"). */
  readonly zeroMeans?: string;
}

/**
 * Parses a duration such as `500ms`, `15s`, `5m`, `24h`, `1h30m`, `1.5h`, `7d` or
 * `0` into milliseconds (rounded). A number without unit is only accepted for 0.
 *
 * @example
 * ```ts
 * import { parseDuration } from "./values.ts";
 * parseDuration("1h30m"); // 5_400_000
 * parseDuration("0"); // 0
 * ```
 */
export function parseDuration(text: string, limits: DurationLimits = {}): number {
  const { allowZero = true, maxMs, zeroMeans } = limits;
  const notes: string[] = [];
  if (allowZero && zeroMeans) notes.push(`0 ${zeroMeans}`);
  if (maxMs !== undefined) {
    const day = DURATION_UNITS.d;
    notes.push(`at most ${maxMs % day === 0 ? `${maxMs / day}d` : formatDuration(maxMs)}`);
  }
  const kind = allowZero ? "a duration" : "a positive duration";
  const expected = `${kind} like 500ms, 15s, 5m, 24h or 1h30m` +
    (notes.length > 0 ? ` (${notes.join(", ")})` : "");

  const t = text.trim();
  if (t.length === 0) throw new ValueError(expected);
  let ms: number;
  if (/^0+$/.test(t)) {
    ms = 0;
  } else {
    const re = /(\d+(?:\.\d+)?|\.\d+)(ms|s|m|h|d)/y;
    let pos = 0;
    let total = 0;
    while (pos < t.length) {
      re.lastIndex = pos;
      const m = re.exec(t);
      if (!m) throw new ValueError(expected);
      total += Number(m[1]) * DURATION_UNITS[m[2]];
      pos = re.lastIndex;
    }
    ms = Math.round(total);
  }
  if (!Number.isSafeInteger(ms)) throw new ValueError(expected);
  if (ms === 0 && !allowZero) throw new ValueError(expected);
  if (maxMs !== undefined && ms > maxMs) throw new ValueError(expected);
  return ms;
}

/**
 * Formats milliseconds the way {@link parseDuration} reads them, largest units first.
 *
 * @example
 * ```ts
 * import { formatDuration } from "./values.ts";
 * formatDuration(5_400_000); // "1h30m"
 * formatDuration(0); // "0s"
 * ```
 */
export function formatDuration(ms: number): string {
  if (ms === 0) return "0s";
  let rest = Math.round(ms);
  let out = "";
  for (const unit of ["h", "m", "s", "ms"] as const) {
    const size = DURATION_UNITS[unit];
    const n = Math.floor(rest / size);
    if (n > 0) out += `${n}${unit}`;
    rest -= n * size;
  }
  return out;
}

const SIZE_UNITS: Record<string, number> = {
  "": 1,
  b: 1,
  kb: 1e3,
  mb: 1e6,
  gb: 1e9,
  tb: 1e12,
  k: 2 ** 10,
  m: 2 ** 20,
  g: 2 ** 30,
  t: 2 ** 40,
  kib: 2 ** 10,
  mib: 2 ** 20,
  gib: 2 ** 30,
  tib: 2 ** 40,
};

/**
 * Parses a positive size in bytes: `1024`, `10KB` (10 000), `10KiB` (10 240),
 * `64MB`, `1GiB`; units are case-insensitive and `K`/`M`/`G`/`T` are binary.
 *
 * @example
 * ```ts
 * import { parseSize } from "./values.ts";
 * parseSize("32MiB"); // 33_554_432
 * ```
 */
export function parseSize(text: string): number {
  const expected = "a size like 1024, 10KB, 10KiB, 64MB or 1GiB";
  const m = /^(\d+(?:\.\d+)?|\.\d+)\s*([a-z]*)$/i.exec(text.trim());
  if (!m) throw new ValueError(expected);
  const unit = SIZE_UNITS[m[2].toLowerCase()];
  if (unit === undefined) throw new ValueError(expected);
  const bytes = Math.floor(Number(m[1]) * unit);
  if (!Number.isSafeInteger(bytes) || bytes < 1) throw new ValueError(expected);
  return bytes;
}

const BINARY_UNITS = [["TiB", 2 ** 40], ["GiB", 2 ** 30], ["MiB", 2 ** 20], [
  "KiB",
  2 ** 10,
]] as const;

/**
 * Formats bytes with the largest exact binary unit (`32MiB`), else as a number.
 *
 * @example
 * ```ts
 * import { formatSize } from "./values.ts";
 * formatSize(33_554_432); // "32MiB"
 * ```
 */
export function formatSize(bytes: number): string {
  for (const [unit, size] of BINARY_UNITS) {
    if (bytes >= size && bytes % size === 0) return `${bytes / size}${unit}`;
  }
  return String(bytes);
}

/**
 * Splits a comma-separated list, trimming items and dropping empty ones.
 *
 * @example
 * ```ts
 * import { parseList } from "./values.ts";
 * parseList(" a.so, b.so ,"); // ["a.so", "b.so"]
 * ```
 */
export function parseList(text: string): string[] {
  return text.split(",").map((s) => s.trim()).filter((s) => s.length > 0);
}
