/**
 * The dead-letter store: stream messages that can never be applied (see `validate.ts`), kept in
 * `main._ha_dead_letters` (bounded: the newest {@link MAX_DEAD_LETTERS}, payloads cut at
 * {@link MAX_KEPT_PAYLOAD} characters) in the same transaction that records the stream position
 * past them, so replication goes on and an operator can still read what was refused and why.
 *
 * @example
 * ```ts
 * const letters = new DeadLetters((sql) => db.exec(sql), (sql) => db.prepare(sql));
 * letters.add({ seq: 7, subject: "ha_replication.ha_db", reason: "bad signature", payload: "…" });
 * ```
 * @module
 */
import type { StatementSync } from "node:sqlite";

/** Dead letters kept per database (older ones are dropped). */
export const MAX_DEAD_LETTERS = 1000;
/** Characters of a refused payload kept. */
export const MAX_KEPT_PAYLOAD = 256 * 1024;

/** One refused message. */
export interface DeadLetter {
  seq: number;
  subject: string;
  reason: string;
  payload: string;
}

/** The `_ha_dead_letters` table of one database. */
export class DeadLetters {
  constructor(exec: (sql: string) => void, private readonly stmt: (sql: string) => StatementSync) {
    exec(`CREATE TABLE IF NOT EXISTS main._ha_dead_letters(
      id INTEGER PRIMARY KEY AUTOINCREMENT, seq INTEGER NOT NULL, subject TEXT NOT NULL,
      reason TEXT NOT NULL, payload TEXT NOT NULL, truncated INTEGER NOT NULL,
      at TEXT NOT NULL, parked INTEGER NOT NULL DEFAULT 0)`);
  }

  /**
   * Records `d` (inside the caller's transaction) and drops the oldest beyond the bound. A
   * `parked` letter is applied again by {@link DeadLetters.parked} callers after later DDL.
   */
  add(d: DeadLetter, parked = false): void {
    const truncated = d.payload.length > MAX_KEPT_PAYLOAD;
    const r = this.stmt(
      `INSERT INTO main._ha_dead_letters(seq, subject, reason, payload, truncated, at, parked)
       VALUES (?, ?, ?, ?, ?, ?, ?)`,
    ).run(
      BigInt(d.seq),
      d.subject,
      d.reason,
      truncated ? d.payload.slice(0, MAX_KEPT_PAYLOAD) : d.payload,
      truncated ? 1n : 0n,
      new Date().toISOString(),
      parked && !truncated ? 1n : 0n,
    );
    const id = BigInt(r.lastInsertRowid);
    if (id > BigInt(MAX_DEAD_LETTERS)) {
      this.stmt("DELETE FROM main._ha_dead_letters WHERE id <= ?")
        .run(id - BigInt(MAX_DEAD_LETTERS));
    }
  }

  /** Parked letters of `subject`, in stream order. */
  parked(subject: string): { id: bigint; seq: number; payload: string }[] {
    return (this.stmt(
      `SELECT id, seq, payload FROM main._ha_dead_letters WHERE parked = 1 AND subject = ?
       ORDER BY seq`,
    ).all(subject) as { id: bigint; seq: bigint; payload: string }[])
      .map((r) => ({ id: r.id, seq: Number(r.seq), payload: r.payload }));
  }

  /** Removes a letter that finally applied. */
  remove(id: bigint): void {
    this.stmt("DELETE FROM main._ha_dead_letters WHERE id = ?").run(id);
  }
}
