/**
 * How far each stream subject was applied (`main._ha_progress`), recorded in the transaction that
 * applied it: the subscriber resumes right after it (the consumer is recreated from it), so a
 * message is applied exactly once per database.
 *
 * @module
 */
import type { DatabaseSync, StatementSync } from "node:sqlite";

/** The progress table of one database, on its writer connection. */
export class Progress {
  constructor(db: DatabaseSync, private readonly stmt: (sql: string) => StatementSync) {
    db.exec(`
      CREATE TABLE IF NOT EXISTS main._ha_progress(
        subject TEXT PRIMARY KEY, seq INTEGER NOT NULL) WITHOUT ROWID;
    `);
  }

  /** The last sequence recorded for `subject`, or null when nothing is recorded yet. */
  get(subject: string): number | null {
    const r = this.stmt("SELECT seq FROM main._ha_progress WHERE subject = ?").get(subject) as
      | { seq: bigint }
      | undefined;
    return r ? Number(r.seq) : null;
  }

  /** Records `seq` for `subject` (the caller's transaction applied everything up to it). */
  set(subject: string, seq: number): void {
    this.stmt(
      `INSERT INTO main._ha_progress(subject, seq) VALUES (?, ?)
       ON CONFLICT(subject) DO UPDATE SET seq = excluded.seq`,
    ).run(subject, BigInt(seq));
  }

  /** Moves `subject` forward to `seq` (never back) without applying anything. */
  skip(subject: string, seq: number): void {
    this.stmt(
      `INSERT INTO main._ha_progress(subject, seq) VALUES (?, ?)
       ON CONFLICT(subject) DO UPDATE SET seq = max(seq, excluded.seq)`,
    ).run(subject, BigInt(seq));
  }
}
