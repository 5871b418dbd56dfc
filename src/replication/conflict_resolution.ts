/**
 * Row conflicts shown to an interceptor's `resolveConflict` hook, and their resolutions: a remote
 * change conflicts when the local row is not what the change started from. The resolved change
 * is applied as the hook decided, and the conflict is recorded (`conflicts.ts`).
 *
 * @module
 */
import { type Change, type ChangeSet, compareVersion, encodeValue } from "../cdc/mod.ts";
import type { Applier } from "./apply.ts";
import type { TableMeta } from "./capture.ts";
import { INTERNAL } from "./capture_schema.ts";
import type { ConflictLog } from "./conflicts.ts";
import type { WireConflict, WireResolution } from "./plugin_api.ts";
import type { Versions } from "./versions.ts";

/** A row's values in the wire format, or null for no row. */
type RowImage = NonNullable<Change["new_values"]> | null;

/** Finds row conflicts and applies resolutions; one instance per writer plugin. */
export class ConflictResolver {
  /** `node`: this node's name (the local side of a row without a version). */
  constructor(
    private readonly tables: ReadonlyMap<string, TableMeta>,
    private readonly versions: Versions,
    private readonly applier: Applier,
    private readonly conflictLog: ConflictLog,
    private readonly node: string,
  ) {}

  /**
   * The row a change works on, as `table\0key` ids: `at`, where the change finds it (the new
   * image's key for an INSERT, else the old image's), and `next`, where the changeset's later
   * changes of the same row find it (the new image's key, or `at` after a DELETE).
   */
  rowOf(c: Change): { at: string; next: string } {
    const v = this.versions;
    const at = `${c.table}\u0000${v.keyOf(c, c.operation === "INSERT" ? "new" : "old")}`;
    const next = c.operation === "UPDATE" ? `${c.table}\u0000${v.keyOf(c, "new")}` : at;
    return { at, next };
  }

  /**
   * The conflicting rows of one remote changeset (none when it is already applied or own): the
   * local row differs from the change's old image (UPDATE, DELETE), was deleted here (UPDATE),
   * or exists with other values (INSERT). A row the changeset changes several times (one
   * transaction, or requests a group commit joined) is reported once, at its first change, with
   * the changeset's net effect on it: the first change's old image, the last change's new image
   * (null when the changeset leaves it deleted), and the operation that takes one to the other.
   * Its resolution then decides the row for the whole changeset (see `BatchApply`).
   */
  detect(cs: ChangeSet): WireConflict[] {
    const out: WireConflict[] = [];
    /** Rows seen so far, by where the next change of each finds it; their conflict, if any. */
    const rows = new Map<string, WireConflict | null>();
    cs.changes.forEach((c, i) => {
      if (c.operation === "SQL" || INTERNAL.test(c.table) || !this.tables.has(c.table)) return;
      const { at, next } = this.rowOf(c);
      if (rows.has(at)) {
        const w = rows.get(at)!;
        rows.delete(at);
        rows.set(next, w);
        if (w) {
          w.remote.values = c.new_values ?? null;
          w.remote.operation = w.remote.values === null
            ? "DELETE"
            : w.remote.old_values === null
            ? "INSERT"
            : "UPDATE";
        }
        return;
      }
      const w = this.conflictAt(cs, c, i);
      rows.set(next, w);
      if (w) out.push(w);
    });
    return out;
  }

  /** The conflict of the first change `c` (index `i`) of a row in `cs`, or null. */
  private conflictAt(cs: ChangeSet, c: Change, i: number): WireConflict | null {
    const side = c.operation === "INSERT" ? "new" : "old";
    const row = this.applier.current(c, side);
    const local = row ? c.columns.map((col) => encodeValue(row[col] ?? null)) : null;
    const expected = (side === "new" ? c.new_values : c.old_values) ?? null;
    if (local === null && c.operation !== "UPDATE") return null;
    if (local !== null && JSON.stringify(local) === JSON.stringify(expected)) return null;
    const v = this.versions.get(c.table, this.versions.keyOf(c, side));
    return {
      change_index: i,
      table: c.table,
      columns: c.columns,
      pk_columns: c.pk_columns,
      local: { values: local, hlc: v?.hlc ?? null, node: v?.node ?? null },
      remote: {
        operation: c.operation as WireConflict["remote"]["operation"],
        values: c.new_values ?? null,
        old_values: c.old_values ?? null,
        hlc: typeof c.hlc === "number" ? c.hlc : cs.hlc,
        node: cs.node,
      },
    };
  }

  /**
   * The changeset's net new image of the row whose first change is `cs.changes[i]`: its last
   * change's new values (null when the changeset leaves it deleted), as `detect` showed them.
   */
  netValues(cs: ChangeSet, i: number): RowImage {
    let c = cs.changes[i];
    let values = c.new_values ?? null;
    let next = this.rowOf(c).next;
    for (let j = i + 1; j < cs.changes.length; j++) {
      c = cs.changes[j];
      if (c.operation === "SQL" || c.table !== cs.changes[i].table) continue;
      const row = this.rowOf(c);
      if (row.at !== next) continue;
      values = c.new_values ?? null;
      next = row.next;
    }
    return values;
  }

  /**
   * Applies a change as a resolver decided: `local` keeps the row, `remote` applies the change
   * regardless of versions, `values` writes the merged row. The row's version becomes the larger
   * of both sides, so every node of the conflict ends with the same version. `remoteValues`:
   * the remote side recorded, when not this change's (a kept row: the changeset's net image,
   * see `netValues`).
   */
  apply(
    c: Change,
    r: WireResolution,
    hlc: number,
    node: string,
    touched: Set<string>,
    remoteValues?: RowImage,
  ): void {
    const v = this.versions;
    const side = c.operation === "INSERT" ? "new" : "old";
    const key = v.keyOf(c, side);
    const before = v.get(c.table, key);
    this.noteResolved(c, r, key, before, hlc, node, remoteValues);
    const force = (ch: Change) => {
      for (const s of ["old", "new"] as const) {
        if ((s === "old" ? ch.old_values : ch.new_values) != null) {
          touched.add(`${ch.table}\u0000${v.keyOf(ch, s)}`);
        }
      }
    };
    let deleted: boolean;
    if (r === "local") {
      deleted = !this.applier.current(c, side);
    } else if (r === "remote") {
      force(c);
      this.applier.apply(c, hlc, node, touched);
      deleted = c.operation === "DELETE";
    } else {
      const row = this.applier.current(c, side);
      const rowid = side === "old" ? c.old_rowid : c.new_rowid;
      const m: Change = {
        database: c.database,
        table: c.table,
        columns: c.columns,
        pk_columns: c.pk_columns,
        operation: row ? "UPDATE" : "INSERT",
        new_rowid: rowid ?? null,
        new_values: r.values,
        updated_columns: c.columns,
        hlc,
      };
      if (row) {
        m.old_rowid = rowid ?? null;
        m.old_values = c.columns.map((col) => encodeValue(row[col] ?? null));
      }
      force(m);
      this.applier.apply(m, hlc, node, touched);
      deleted = false;
    }
    const newer = before && compareVersion(before.hlc, before.node, hlc, node) > 0;
    const [h, n] = newer ? [before.hlc, before.node] : [hlc, node];
    v.set(c.table, key, h, n, deleted);
    touched.add(`${c.table}\u0000${key}`);
  }

  /** Records a conflict an interceptor resolved (the loser: the side it did not keep). */
  private noteResolved(
    c: Change,
    r: WireResolution,
    key: string,
    before: { hlc: number; node: string } | undefined,
    hlc: number,
    node: string,
    remoteValues: RowImage | undefined,
  ): void {
    const row = this.applier.current(c, c.operation === "INSERT" ? "new" : "old");
    const local = {
      node: before?.node ?? this.node,
      hlc: before?.hlc ?? 0,
      values: row ? c.columns.map((col) => encodeValue(row[col] ?? null)) : null,
    };
    const own = c.operation === "DELETE" ? null : c.new_values ?? null;
    const remote = { node, hlc, values: remoteValues === undefined ? own : remoteValues };
    const [winner, loser] = r === "local" ? [local, remote] : [remote, local];
    const how = r === "local" || r === "remote" ? r : "merged";
    this.conflictLog.record({
      table: c.table,
      key,
      winner: { node: winner.node, hlc: winner.hlc },
      loser,
      resolution: `interceptor:${how}`,
    });
  }
}
