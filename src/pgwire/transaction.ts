/**
 * The transaction state the wire protocol keeps on top of the engine session:
 * whether the block failed (ReadyForQuery 'E', statements refused until it
 * ends) and whether it is an implicit transaction of an extended-protocol
 * batch (opened by us, ended at Sync), plus BEGIN/COMMIT/ROLLBACK/SAVEPOINT
 * with PostgreSQL's answers (warnings, ROLLBACK for a failed COMMIT).
 *
 * Whether a block is open at all is the session's own `inTransaction` (SQLite
 * may end a transaction by itself), so it is read from there, not copied.
 *
 * @example
 * ```ts
 * const tx = new TxControl(wire, () => session);
 * tx.fail();          // an error inside the block
 * tx.status();        // "E"
 * await tx.control(classify("ROLLBACK") as TxStatement); // "ROLLBACK", status "I"
 * ```
 */
import type { Session } from "../engine/mod.ts";
import type { Classified } from "./catalog.ts";
import type { Wire } from "./contracts.ts";
import { PgError, toPgError } from "./errors.ts";

/**
 * What the wire adds to the session's transaction:
 * - `clean`: nothing; ReadyForQuery says 'T' while the session has a block open, else 'I'.
 * - `implicit`: a transaction we opened for an extended-protocol batch; Sync commits it.
 * - `failed`: an error aborted the block ('E'); only COMMIT/ROLLBACK [TO SAVEPOINT] run.
 * - `implicit_failed`: an error inside the implicit transaction; Sync rolls it back.
 *
 * Skipping messages up to Sync after an error is the extended protocol's own recovery
 * (it happens outside transactions too), kept there.
 */
export type TxState = "clean" | "implicit" | "failed" | "implicit_failed";

/** A transaction control statement. */
export type TxStatement = Extract<Classified, { kind: "tx" }>;

/** The transaction state of one connection and the statements that change it. */
export class TxControl {
  private state: TxState = "clean";

  constructor(private readonly wire: Wire, private readonly session: () => Session | null) {}

  /** Whether the session has a transaction open (explicit, implicit or failed). */
  get inBlock(): boolean {
    return this.session()?.inTransaction ?? false;
  }

  /** Whether an error aborted the transaction. */
  get failed(): boolean {
    return this.state === "failed" || this.state === "implicit_failed";
  }

  private get implicit(): boolean {
    return this.state === "implicit" || this.state === "implicit_failed";
  }

  /** The ReadyForQuery status. */
  status(): "I" | "T" | "E" {
    if (this.failed) return "E";
    return this.inBlock ? "T" : "I";
  }

  /** An error inside the transaction aborts it. */
  fail(): void {
    this.state = this.implicit ? "implicit_failed" : "failed";
  }

  /** The failure is over (ROLLBACK, ROLLBACK TO SAVEPOINT, another database). */
  recover(): void {
    this.state = this.implicit ? "implicit" : "clean";
  }

  /** The implicit transaction became an explicit one (or ended). */
  private leaveImplicit(): void {
    this.state = this.failed ? "failed" : "clean";
  }

  /** Runs transaction SQL in the session. */
  async exec(sql: string): Promise<void> {
    const session = this.session();
    if (!session) throw new PgError("08003", "no session");
    await session.execute({ sql });
  }

  /** Runs BEGIN/COMMIT/ROLLBACK/SAVEPOINT/RELEASE as PostgreSQL answers them; returns the tag. */
  async control(c: TxStatement): Promise<string> {
    const inTx = this.inBlock;
    if (c.op !== "begin") this.leaveImplicit();
    switch (c.op) {
      case "begin":
        if (this.implicit) {
          // PostgreSQL: BEGIN inside an implicit transaction block turns it into a real one.
          this.leaveImplicit();
          return c.tag;
        }
        if (inTx) {
          this.warn("25001", "there is already a transaction in progress");
          return c.tag;
        }
        await this.exec(c.sql);
        return c.tag;
      case "commit":
        if (this.failed) {
          this.recover();
          if (inTx) await this.exec("ROLLBACK");
          return "ROLLBACK";
        }
        if (!inTx) {
          this.warn("25P01", "there is no transaction in progress");
          return c.tag;
        }
        await this.exec(c.sql);
        return c.tag;
      case "rollback": {
        // A failed block may be gone already (SQLite rolls back an interrupted write's transaction).
        const failed = this.failed;
        this.recover();
        if (!inTx) {
          if (!failed) this.warn("25P01", "there is no transaction in progress");
          return c.tag;
        }
        await this.exec(c.sql);
        return c.tag;
      }
      case "rollback_to":
      case "savepoint":
      case "release":
        if (!inTx) {
          throw new PgError(
            "25P01",
            `${
              c.op === "rollback_to" ? "ROLLBACK TO SAVEPOINT" : c.tag
            } can only be used in transaction blocks`,
          );
        }
        await this.exec(c.sql);
        if (c.op === "rollback_to") this.recover();
        return c.tag;
    }
  }

  /**
   * PostgreSQL runs the messages up to Sync as one implicit transaction. A write that is not
   * directly followed by Sync opens it (a lone write autocommits: the same thing, one round trip
   * less); reads before the first write need no transaction.
   */
  async beginImplicit(c: Classified): Promise<void> {
    if (!this.opensImplicit(c)) return;
    await this.exec("BEGIN");
    this.state = "implicit";
  }

  /**
   * Whether {@link TxControl.beginImplicit} would open a transaction for `c` (callers skip the
   * call, and its promise, for the reads that need none).
   */
  opensImplicit(c: Classified): boolean {
    if (c.kind !== "sql" || this.implicit || this.status() !== "I") return false;
    return c.shape !== "query" && !this.wire.reader.nextIsSync();
  }

  /** Whether an implicit transaction is open (Sync has something to end). */
  get inImplicit(): boolean {
    return this.implicit;
  }

  /** At Sync: commits the implicit transaction, or rolls it back if anything failed or was skipped. */
  async endImplicit(skipped: boolean): Promise<void> {
    if (!this.implicit) return;
    const failed = this.failed || skipped;
    this.state = "clean";
    try {
      await this.exec(failed ? "ROLLBACK" : "COMMIT");
    } catch (e) {
      this.wire.out.error(toPgError(e).fields());
    }
  }

  private warn(code: string, message: string): void {
    this.wire.out.notice({ severity: "WARNING", code, message });
  }
}
