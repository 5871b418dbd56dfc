/**
 * Turning a resolved {@link DatabaseSource} back into a DSN, so that a database restored into
 * another file (memory databases at start) opens with the same id, parameters and PRAGMAs.
 *
 * @module
 */
import type { DatabaseSource } from "../engine/mod.ts";

/**
 * A `file:` DSN that `parseDsn(dsn, source.memory)` resolves to `source` with `path` replaced.
 * The base name of `path` must equal `source.id` for the id to stay the same.
 *
 * @example
 * ```ts
 * sourceToDsn(parseDsn("file:app.db?_journal=WAL", false), "/tmp/r/app.db");
 * // "file:%2Ftmp%2Fr%2Fapp.db?_pragma=journal_mode(WAL)&_pragma=busy_timeout(5000)&..."
 * ```
 */
export function sourceToDsn(source: DatabaseSource, path = source.path): string {
  const query = [
    ...(source.uriParams ? [source.uriParams] : []),
    ...source.pragmas.map(([k, v]) => `_pragma=${encodeURIComponent(`${k}(${v})`)}`),
  ];
  return `file:${encodeURIComponent(path)}${query.length ? `?${query.join("&")}` : ""}`;
}
