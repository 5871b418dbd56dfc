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
      at TEXT NOT NULL)`);
  }

  /** Records `d` (inside the caller's transaction) and drops the oldest beyond the bound. */
  add(d: DeadLetter): void {
    const truncated = d.payload.length > MAX_KEPT_PAYLOAD;
    const r = this.stmt(
      `INSERT INTO main._ha_dead_letters(seq, subject, reason, payload, truncated, at)
       VALUES (?, ?, ?, ?, ?, ?)`,
    ).run(
      BigInt(d.seq),
      d.subject,
      d.reason,
      truncated ? d.payload.slice(0, MAX_KEPT_PAYLOAD) : d.payload,
      truncated ? 1n : 0n,
      new Date().toISOString(),
    );
    const id = BigInt(r.lastInsertRowid);
    if (id > BigInt(MAX_DEAD_LETTERS)) {
      this.stmt("DELETE FROM main._ha_dead_letters WHERE id <= ?")
        .run(id - BigInt(MAX_DEAD_LETTERS));
    }
  }
}
