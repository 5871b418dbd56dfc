/**
 * ha's own tables, triggers and temp tables are named `_ha_*` (progress, outbox, change capture).
 * A client that wrote them could forge or lose replicated changes, so statements from clients
 * may read them but not change them. Decided from the authorizer actions recorded at prepare.
 *
 * @example
 * ```ts
 * import { Action } from "./authorizer.ts";
 * internalWrite([{ code: Action.DELETE, arg1: "_ha_progress", arg2: null, db: "main", trigger: null }]);
 * // "_ha_progress"
 * ```
 * @module
 */
import { Action } from "./authorizer.ts";
import type { AuthAction } from "./plugin.ts";

const INTERNAL = /^_ha_/i;

/** Actions whose first argument (and second, when given) names an object being changed. */
const CHANGES = new Set<number>([
  Action.INSERT,
  Action.UPDATE,
  Action.DELETE,
  Action.CREATE_TABLE,
  Action.CREATE_TEMP_TABLE,
  Action.DROP_TABLE,
  Action.DROP_TEMP_TABLE,
  Action.CREATE_INDEX,
  Action.CREATE_TEMP_INDEX,
  Action.DROP_INDEX,
  Action.DROP_TEMP_INDEX,
  Action.CREATE_VIEW,
  Action.CREATE_TEMP_VIEW,
  Action.DROP_VIEW,
  Action.DROP_TEMP_VIEW,
  Action.CREATE_VTABLE,
  Action.DROP_VTABLE,
]);
/** Index actions carry the table as second argument. */
const INDEXES = new Set<number>([
  Action.CREATE_INDEX,
  Action.CREATE_TEMP_INDEX,
  Action.DROP_INDEX,
  Action.DROP_TEMP_INDEX,
]);
const TRIGGERS = new Set<number>([
  Action.CREATE_TRIGGER,
  Action.CREATE_TEMP_TRIGGER,
  Action.DROP_TRIGGER,
  Action.DROP_TEMP_TRIGGER,
]);

/**
 * The `_ha_*` object a client statement would change, or null. ha's capture triggers (named
 * `_ha_*`) may write its temp tables; dropping a table drops its capture triggers with it.
 */
export function internalWrite(actions: readonly AuthAction[]): string | null {
  const dropped = new Set(
    actions.filter((a) => a.code === Action.DROP_TABLE && a.arg1).map((a) => a.arg1!.toLowerCase()),
  );
  for (const a of actions) {
    if (a.trigger !== null && INTERNAL.test(a.trigger)) continue;
    if (CHANGES.has(a.code)) {
      for (const name of [a.arg1, INDEXES.has(a.code) ? a.arg2 : null]) {
        if (name && INTERNAL.test(name)) return name;
      }
    } else if (TRIGGERS.has(a.code)) {
      const [name, table] = [a.arg1 ?? "", a.arg2 ?? ""];
      if (INTERNAL.test(table)) return table;
      if (INTERNAL.test(name) && !dropped.has(table.toLowerCase())) return name;
    } else if (a.code === Action.ALTER_TABLE && a.arg2 && INTERNAL.test(a.arg2)) {
      return a.arg2;
    }
  }
  return null;
}
