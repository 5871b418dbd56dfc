/**
 * Errors of ha's SQL functions, deferred. node:sqlite (Deno 2.9.6) never returns from
 * `StatementSync.all()` when a JavaScript function throws inside the statement, and its
 * `iterate()` ends silently on any SQLite error. So ha's functions never throw: they record the
 * error here and return a value SQLite rejects (e.g. text for an INTEGER PRIMARY KEY), and the
 * connection throws the recorded error in place of SQLite's, or after a statement that went
 * through anyway (its transaction is then rolled back like any failed statement's).
 *
 * @example
 * ```ts
 * db.function("_ha_x", () => {
 *   if (broken) return deferFunctionError(new HaError("unavailable", "no x yet"));
 *   return 1;
 * });
 * ```
 * @module
 */

/** What a deferring function returns: text, which no integer key accepts. */
export const DEFERRED_ERROR_VALUE = "ha: function failed";

let pending: Error | null = null;

/** Records `e` for the running statement; returns {@link DEFERRED_ERROR_VALUE}. */
export function deferFunctionError(e: Error): string {
  pending ??= e;
  return DEFERRED_ERROR_VALUE;
}

/** The error a function of the statement that just ran recorded, cleared; null if none. */
export function takeFunctionError(): Error | null {
  const e = pending;
  pending = null;
  return e;
}
