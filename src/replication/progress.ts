/**
 * How far each stream subject was applied (`main._ha_progress`), recorded in the transaction that
 * applied it: the subscriber resumes right after it (the consumer is recreated from it), so a
 * message is applied exactly once per database.
 *
 * @module
 */
import type { DatabaseSync, StatementSync } from "node:sqlite";

/**
 * The progress table of one database, on its writer connection. Only this connection writes it,
 * so what it read or committed is kept in memory (one statement less per apply batch): a value
 * {@link set} inside a transaction counts once {@link committed}, and is dropped on
 * {@link rolledBack}.
 */
export class Progress {
  /** Committed progress by subject (null: none recorded). */
  private readonly known = new Map<string, number | null>();
  /** Set in the open transaction, not committed yet. */
  private readonly pending = new Map<string, number>();

  constructor(db: DatabaseSync, private readonly stmt: (sql: string) => StatementSync) {
    db.exec(`
      CREATE TABLE IF NOT EXISTS main._ha_progress(
        subject TEXT PRIMARY KEY, seq INTEGER NOT NULL) WITHOUT ROWID;
    `);
  }

  /** The last sequence recorded for `subject`, or null when nothing is recorded yet. */
  get(subject: string): number | null {
    const p = this.pending.get(subject);
    if (p !== undefined) return p;
    const k = this.known.get(subject);
    if (k !== undefined) return k;
    const r = this.stmt("SELECT seq FROM main._ha_progress WHERE subject = ?").get(subject) as
      | { seq: bigint }
      | undefined;
    const seq = r ? Number(r.seq) : null;
    this.known.set(subject, seq);
    return seq;
  }

  /**
   * Records `seq` for `subject` (the caller's transaction applied everything up to it); the
   * caller reports the transaction's end ({@link committed} or {@link rolledBack}).
   */
  set(subject: string, seq: number): void {
    this.stmt(
      `INSERT INTO main._ha_progress(subject, seq) VALUES (?, ?)
       ON CONFLICT(subject) DO UPDATE SET seq = excluded.seq`,
    ).run(subject, BigInt(seq));
    this.pending.set(subject, seq);
  }

  /** The transaction of the last {@link set}s committed. */
  committed(): void {
    for (const [subject, seq] of this.pending) this.known.set(subject, seq);
    this.pending.clear();
  }

  /** The transaction of the last {@link set}s rolled back (or may have). */
  rolledBack(): void {
    for (const subject of this.pending.keys()) this.known.delete(subject);
    this.pending.clear();
  }

  /** Moves `subject` forward to `seq` (never back) without applying anything. */
  skip(subject: string, seq: number): void {
    this.known.delete(subject);
    this.stmt(
      `INSERT INTO main._ha_progress(subject, seq) VALUES (?, ?)
       ON CONFLICT(subject) DO UPDATE SET seq = max(seq, excluded.seq)`,
    ).run(subject, BigInt(seq));
  }
}
