/**
 * The outbox: every committed changeset is written to it in its own transaction and deleted once
 * JetStream acknowledged it, so a crash between COMMIT and publication loses nothing (the
 * publisher reads the pending rows again at start). Memory databases in async mode keep it in a
 * file of `--async-replication-store-dir`, attached to the writer connection.
 *
 * @module
 */
import type { DatabaseSync, StatementSync } from "node:sqlite";
import { lit } from "./capture.ts";
import type { OutboxRow } from "./plugin_api.ts";

/** The outbox table of one database, on its writer connection. */
export class Outbox {
  /** The table, in `main` or in the attached outbox file. */
  private readonly table: string;

  /** `dir`: directory of a separate outbox file (memory databases), or null for `main`. */
  constructor(
    private readonly db: DatabaseSync,
    databaseId: string,
    private readonly dir: string | null,
    private readonly stmt: (sql: string) => StatementSync,
  ) {
    this.table = dir ? "ha_outbox._ha_outbox" : "main._ha_outbox";
    if (dir) {
      const file = `${dir}/${databaseId.replace(/[^A-Za-z0-9_.-]/g, "_")}_outbox.db`;
      // A URI with an explicit VFS: ATTACH would otherwise use the memory database's memdb VFS.
      const vfs = Deno.build.os === "windows" ? "win32" : "unix";
      db.exec(`ATTACH DATABASE ${lit(`file:${encodeURI(file)}?vfs=${vfs}`)} AS ha_outbox`);
      db.exec("PRAGMA ha_outbox.journal_mode = WAL");
    }
    // Appends go through a TEMP view's trigger: an insert made by a trigger leaves
    // `last_insert_rowid()` as the user's statements left it, so the engine need not restore it
    // after every commit. AUTOINCREMENT: the id just inserted is the table's sqlite_sequence.
    db.exec(`
      CREATE TABLE IF NOT EXISTS ${this.table}(
        id INTEGER PRIMARY KEY AUTOINCREMENT, csid TEXT NOT NULL, data TEXT NOT NULL);
      CREATE TEMP VIEW IF NOT EXISTS _ha_outbox_add(csid, data) AS SELECT NULL, NULL WHERE 0;
      CREATE TEMP TRIGGER IF NOT EXISTS _ha_outbox_add INSTEAD OF INSERT ON _ha_outbox_add BEGIN
        INSERT INTO ${this.table}(csid, data) VALUES (NEW.csid, NEW.data); END;
    `);
    this.lastId = `SELECT seq FROM ${dir ? "ha_outbox" : "main"}.sqlite_sequence ` +
      "WHERE name = '_ha_outbox'";
  }

  /** The outbox's sqlite_sequence read. */
  private readonly lastId: string;

  /** Appends a changeset (inside the committing transaction); returns its outbox id. */
  append(csid: string, data: string): number {
    this.stmt("INSERT INTO temp._ha_outbox_add(csid, data) VALUES (?, ?)").run(csid, data);
    return Number((this.stmt(this.lastId).get() as { seq: bigint }).seq);
  }

  /** Rows after `after`, in order, at most `limit`. */
  pending(after: number, limit: number): OutboxRow[] {
    const rows = this.stmt(
      `SELECT id, csid, data FROM ${this.table} WHERE id > ? ORDER BY id LIMIT ?`,
    ).all(BigInt(after), BigInt(limit)) as { id: bigint; csid: string; data: string }[];
    return rows.map((r): OutboxRow => ({ outboxId: Number(r.id), id: r.csid, data: r.data }));
  }

  /** Deletes the rows up to and including `upTo` (published). */
  deleteUpTo(upTo: number): void {
    this.stmt(`DELETE FROM ${this.table} WHERE id <= ?`).run(BigInt(upTo));
  }

  /** Detaches the outbox file, if any. */
  close(): void {
    if (!this.dir) return;
    try {
      this.db.exec("DETACH DATABASE ha_outbox");
    } catch { /* closing anyway */ }
  }
}
