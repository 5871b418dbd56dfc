/**
 * The original ha's example interceptor: when applying a replicated changeset fails and the
 * changeset carries an `ALTER TABLE` statement, ignore the error (the changeset counts as done),
 * e.g. when a column another node adds already exists here.
 *
 * Run: `ha --interceptor interceptors/ignore_alter_table_errors.ts`
 * @module
 */
import type { AfterApply } from "./mod.ts";

/** Swallows apply errors of changesets that contain an `ALTER TABLE` command. */
export const afterApply: AfterApply = (cs, error, ctx) => {
  if (error === null) return undefined;
  const alter = cs.changes.find((c) => /^\s*ALTER\s+TABLE\b/i.test(c.command ?? ""));
  if (!alter) return undefined;
  ctx.log("ignoring error of a replicated ALTER TABLE", {
    command: alter.command,
    error: error.message,
    origin: cs.node,
  });
  return { error: null };
};
