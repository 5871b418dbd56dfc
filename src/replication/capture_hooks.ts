/**
 * Change capture on the writer connection, statement by statement: TEMP triggers (installed by
 * {@link CaptureSchema}) append the rows a statement changes directly to the TEMP log
 * `temp._ha_log`, so a rolled-back statement or transaction removes its captured rows by itself.
 * Values are packed exactly by `_ha_pack`, registered with `useBigIntArguments`. Per statement, a
 * marker row in the log carries what replicas need to apply its changes the same way (the columns
 * its UPDATEs set, REPLACE conflict resolution). Rows deleted by REPLACE conflict resolution fire
 * no delete trigger: BEFORE triggers note them in `temp._ha_cand` and they are logged as deletes
 * after the statement when they are gone. `recursive_triggers` stays as the user configured it
 * (off by default), so user triggers behave as in plain SQLite. DDL text is captured (made
 * idempotent) after it ran; triggers are dropped before ALTER/DROP TABLE and re-created after DDL.
 *
 * @module
 */
import type { DatabaseSync, StatementSync } from "node:sqlite";
import { Action } from "../engine/authorizer.ts";
import type { AuthAction, StatementInfo } from "../engine/plugin.ts";
import { type CdcValue, type Change, ddlRefusal, encodeValue, idempotentDdl } from "../cdc/mod.ts";
import { HaError } from "../errors/mod.ts";
import type { Applier } from "./apply.ts";
import { type StatementScope, statementScope } from "./capture.ts";
import type { CaptureSchema } from "./capture_schema.ts";
import type { Versions } from "./versions.ts";

/** What a statement marker in the log says about the changes after it. */
export interface Marker {
  replace?: boolean;
  updated?: Record<string, string[]>;
}

/** One row of `temp._ha_log`: a captured change, a statement marker (`STMT`) or DDL (`SQL`). */
export type LogRow = {
  tbl: string | null;
  op: string;
  old_rowid: bigint | null;
  new_rowid: bigint | null;
  old_v: string | null;
  new_v: string | null;
  cmd: string | null;
};

const DDL_ACTIONS = new Set<number>([
  Action.CREATE_INDEX,
  Action.CREATE_TABLE,
  Action.CREATE_TRIGGER,
  Action.CREATE_VIEW,
  Action.DROP_INDEX,
  Action.DROP_TABLE,
  Action.DROP_TRIGGER,
  Action.DROP_VIEW,
  Action.ALTER_TABLE,
  Action.CREATE_VTABLE,
  Action.DROP_VTABLE,
]);
const NO_TABLES: ReadonlySet<string> = new Set();

/** The DDL actions of a statement on `main` (not temp, not from triggers). */
function ddlActions(actions: AuthAction[]): AuthAction[] {
  return actions.filter((a) =>
    a.trigger === null && DDL_ACTIONS.has(a.code) &&
    (a.code === Action.ALTER_TABLE ? a.arg1 === "main" : a.db === "main")
  );
}

/** Tables an ALTER/DROP TABLE touches (their capture triggers must go first). */
function touchedTables(actions: AuthAction[]): string[] {
  const out: string[] = [];
  for (const a of actions) {
    if (a.code === Action.ALTER_TABLE && a.arg2) out.push(a.arg2);
    if (a.code === Action.DROP_TABLE && a.arg1) out.push(a.arg1);
  }
  return out;
}

/** The capture state of the writer's transaction and its statement hooks. */
export class Capture {
  /** Off while replication applies remote changes (they are not captured again): {@link set}. */
  private capturing = true;
  /** What {@link set} last asked of the extension's switch, and whether that was done. */
  private switchOn = true;
  private switchSet = true;
  /** What the extension's switch was last set to (it starts on). */
  private switchIs = true;
  /** Per statement (its authorizer actions): its scope and the tables it may REPLACE rows of. */
  private scopes = new WeakMap<AuthAction[], { scope: StatementScope; replacing: Set<string> }>();
  /** Tables the running statement writes directly (captured). */
  private direct: ReadonlySet<string> = NO_TABLES;
  /** Tables whose rows the running statement may delete by REPLACE. */
  private replacing: ReadonlySet<string> = NO_TABLES;
  /** The last marker logged in this transaction says something. */
  private marked = false;
  /** A statement of this transaction may have noted rows in `temp._ha_cand`. */
  private noted = false;
  private ddlInTx = false;
  /**
   * A local statement began since the log was last cleared: only those log (the capture
   * triggers need `beforeStatement`'s tables), so an apply's transaction ends without a DELETE.
   */
  private mayHaveLogged = true;

  constructor(
    db: DatabaseSync,
    private readonly stmt: (sql: string) => StatementSync,
    private readonly schema: CaptureSchema,
    private readonly versions: Versions,
    private readonly applier: Applier,
    private readonly disableDdlSync: boolean,
  ) {
    db.function("_ha_on", (t: unknown) => this.capturing && this.direct.has(t as string) ? 1 : 0);
    db.function(
      "_ha_rep",
      (t: unknown) => this.capturing && this.replacing.has(t as string) ? 1 : 0,
    );
    db.function(
      "_ha_pack",
      { deterministic: true, varargs: true, useBigIntArguments: true },
      (...args: unknown[]) => JSON.stringify(args.map((a) => encodeValue(a as CdcValue))),
    );
    db.exec(`
      CREATE TEMP TABLE IF NOT EXISTS _ha_log(
        seq INTEGER PRIMARY KEY, tbl TEXT, op TEXT NOT NULL, old_rowid, new_rowid,
        old_v TEXT, new_v TEXT, cmd TEXT);
      CREATE TEMP TABLE IF NOT EXISTS _ha_cand(tbl TEXT NOT NULL, old_rowid, old_v TEXT NOT NULL);
    `);
  }

  /**
   * Switches capture on or off (off while replication applies remote changes, which are not
   * captured again). With the extension's switch (`CaptureSchema.gated`) SQLite tests it in the
   * triggers' WHEN before any JavaScript call; `_ha_on`/`_ha_rep` say the same either way.
   */
  set(on: boolean): void {
    this.capturing = on;
    if (!this.schema.gated) return;
    this.switchOn = on;
    this.switchSet = this.switchIs === on;
    // Off at once (an apply follows). On when the next local statement begins
    // (`beforeStatement`, the way every write of a client reaches the writer's connection): a
    // replica applying batch after batch leaves it off between them, one statement less per
    // batch each way (issue 13). Should switching on fail, that statement fails rather than
    // write without capture.
    if (!on) this.ensureSwitch();
  }

  /** The extension's switch may not be as {@link set} last asked (on is set lazily). */
  private ensureSwitch(): void {
    if (this.switchSet) return;
    this.stmt("SELECT ha_capture(?)").get(this.switchOn ? 1 : 0);
    this.switchIs = this.switchOn;
    this.switchSet = true;
  }

  /** Forgets the statement scopes (the schema changed). */
  forgetScopes(): void {
    this.scopes = new WeakMap();
  }

  beforeStatement(info: StatementInfo): void {
    this.mayHaveLogged = true;
    if (!this.switchSet) this.ensureSwitch();
    const ddl = ddlActions(info.actions);
    if (ddl.length > 0) {
      for (const t of touchedTables(ddl)) this.schema.dropTriggersOf(t);
      return;
    }
    let cached = this.scopes.get(info.actions);
    if (!cached) {
      const scope = statementScope(info.actions, this.schema.triggerView, info.sql);
      const replacing = new Set(
        [...scope.tables].filter((t) =>
          scope.replace || this.schema.tables.get(t)?.replaceConstraint
        ),
      );
      cached = { scope, replacing };
      this.scopes.set(info.actions, cached);
    }
    this.direct = cached.scope.tables;
    this.replacing = cached.replacing;
    if (this.replacing.size > 0) this.noted = true;
    this.logMarker(cached.scope);
  }

  /**
   * Logs a statement marker when the statement sets columns or replaces rows, or to end the
   * previous marker's effect. Changes after a marker belong to its statement.
   */
  private logMarker(scope: StatementScope): void {
    const says = scope.replace || scope.updated.size > 0;
    if (!says && !this.marked) return;
    const m: Marker = {};
    if (scope.replace) m.replace = true;
    if (scope.updated.size > 0) m.updated = Object.fromEntries(scope.updated);
    this.stmt("INSERT INTO temp._ha_log(op, cmd) VALUES ('STMT', ?)").run(JSON.stringify(m));
    this.marked = says;
  }

  afterStatement(info: StatementInfo): void {
    if (this.replacing.size > 0) this.logReplaced();
    this.direct = NO_TABLES;
    this.replacing = NO_TABLES;
    const ddl = ddlActions(info.actions);
    if (ddl.length === 0) return;
    this.ddlInTx = true;
    if (!this.disableDdlSync) {
      const cmd = idempotentDdl(info.sql);
      // Replicas refuse anything but one schema statement: do not publish what they would refuse.
      const why = ddlRefusal(cmd);
      if (why !== null) throw new HaError("bad_request", `this DDL cannot be replicated: ${why}`);
      this.stmt("INSERT INTO temp._ha_log(op, cmd) VALUES ('SQL', ?)").run(cmd);
    }
    this.schema.resync();
  }

  /** Logs, as deletes, the rows the statement removed by REPLACE conflict resolution. */
  private logReplaced(): void {
    const cands = this.stmt("SELECT tbl, old_rowid, old_v FROM temp._ha_cand").all() as {
      tbl: string;
      old_rowid: bigint | null;
      old_v: string;
    }[];
    if (cands.length === 0) return;
    this.stmt("DELETE FROM temp._ha_cand").run();
    const seen = new Set<string>();
    for (const r of cands) {
      const meta = this.schema.tables.get(r.tbl);
      if (!meta) continue;
      const c: Change = {
        database: "main",
        table: meta.name,
        columns: meta.columns,
        pk_columns: meta.pk,
        operation: "DELETE",
        old_rowid: r.old_rowid === null ? null : encodeValue(r.old_rowid),
        old_values: JSON.parse(r.old_v),
        hlc: 0,
      };
      const key = `${r.tbl}\u0000${this.versions.keyOf(c, "old")}`;
      if (seen.has(key)) continue;
      seen.add(key);
      if (this.applier.current(c, "old")) continue;
      this.stmt(
        "INSERT INTO temp._ha_log(tbl, op, old_rowid, old_v) VALUES (?, 'DELETE', ?, ?)",
      ).run(r.tbl, r.old_rowid, r.old_v);
    }
  }

  afterRollback(): void {
    this.endTransaction();
    if (this.ddlInTx) {
      this.ddlInTx = false;
      this.schema.reinstall();
    }
  }

  /** Clears the log and the per-transaction state (the transaction ends). */
  endTransaction(): void {
    if (this.mayHaveLogged) this.stmt("DELETE FROM temp._ha_log").run();
    this.mayHaveLogged = false;
    if (this.noted) this.stmt("DELETE FROM temp._ha_cand").run();
    this.direct = NO_TABLES;
    this.replacing = NO_TABLES;
    this.marked = false;
    this.noted = false;
  }

  /** The committing transaction's log, in order; the transaction's capture state ends. */
  takeLog(): LogRow[] {
    this.ddlInTx = false;
    const rows = this.stmt(
      "SELECT tbl, op, old_rowid, new_rowid, old_v, new_v, cmd FROM temp._ha_log ORDER BY seq",
    ).all() as LogRow[];
    this.endTransaction();
    return rows;
  }
}
