/**
 * `ha --help` and `ha --version` texts, generated from {@link FLAGS}.
 *
 * @example
 * ```ts
 * import { helpText } from "./help.ts";
 * console.info(helpText());
 * ```
 * @module
 */

import { FLAGS } from "./schema.ts";
import { VERSION } from "./version.ts";

/**
 * The help text: usage, then an aligned table of every flag (short and long name, value,
 * environment variable, default; the description on the next line), then value formats and
 * the config file format.
 *
 * @example
 * ```ts
 * import { helpText } from "./help.ts";
 * helpText().includes("HA_REPLICATION_POLICY"); // true
 * ```
 */
export function helpText(): string {
  const rows: { cells: string[]; help: string }[] = [];
  for (const f of FLAGS) {
    const short = f.short ? `-${f.short}, ` : "    ";
    const value = f.metavar ? ` ${f.metavar}` : "";
    const env = f.env ?? "";
    const def = f.defaultText === "" ? "" : `default: ${f.defaultText}`;
    rows.push({ cells: [`${short}--${f.long}${value}`, env, def], help: f.help });
    for (const alias of f.aliases) {
      rows.push({ cells: [`    --${alias}${value}`, env, def], help: `Same as --${f.long}` });
    }
  }
  const widths = [0, 1].map((i) => Math.max(...rows.map((r) => r.cells[i].length)));
  const table = rows.flatMap(({ cells, help }) => [
    `  ${cells[0].padEnd(widths[0])}  ${cells[1].padEnd(widths[1])}  ${cells[2]}`.trimEnd(),
    `        ${help}`,
  ]);
  return [
    `ha ${VERSION} - leaderless SQLite cluster`,
    "",
    "Usage: ha [flags] [DSN ...]",
    "  DSN: a file (my.db), a glob (*.db) or a SQLite URI (file:my.db?_journal=WAL);",
    "  without DSN the database is ha.db. Precedence: flag > env > config file > default.",
    "",
    "Flags (each: flag, environment variable, default; then its description):",
    ...table,
    "",
    "Values:",
    "  booleans   --flag, --flag=true|false; env and file: true/false, 1/0, yes/no",
    "  durations  500ms, 15s, 5m, 24h, 1h30m, 7d, 0",
    "  sizes      1024, 10KB (10000), 10KiB (10240), 64MB, 1GiB",
    "  policy     all, last, new, by_start_sequence=N,",
    '             by_start_time=2024-05-01T12:00:00Z or "2024-05-01 12:00:00" (UTC)',
    "  lists      comma-separated (--extensions, --replication-url)",
    "",
    "Config file (-c FILE): one 'flag value' or 'flag=value' per line, leading dashes",
    "  optional, # comments, a bare flag means true. Empty env variables count as unset.",
  ].join("\n");
}

/**
 * The `--version` text.
 *
 * @example
 * ```ts
 * import { versionText } from "./help.ts";
 * versionText(); // "ha 0.1.0 (deno 2.x)"
 * ```
 */
export function versionText(): string {
  return `ha ${VERSION} (deno ${Deno.version.deno})`;
}
