/**
 * Names of NATS objects used by replication: one stream for every database, one subject per
 * database, one named consumer per (database, node) — ack-none and in memory, recreated from the
 * progress recorded in SQLite (`subscriber.ts`), not a durable one.
 *
 * @example
 * ```ts
 * subjectOf("ha_replication", "my db.db"); // "ha_replication.my_db_db"
 * consumerOf("ha.db", "node1");            // "ha_db_node1"
 * ```
 * @module
 */

/** Replaces `.`, `/`, whitespace, `*` and `>` with `_` (never truncates: no collisions). */
export function normaliseName(s: string): string {
  return s.replace(/[./\s*>]/g, "_");
}

/** The subject of a database's changesets: `<stream>.<normalised id>`. */
export function subjectOf(stream: string, databaseId: string): string {
  return `${stream}.${normaliseName(databaseId)}`;
}

/** The consumer of a database on a node: `<db>_<node>`, normalised. */
export function consumerOf(databaseId: string, node: string): string {
  return normaliseName(`${databaseId}_${node}`);
}
