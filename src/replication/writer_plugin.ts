/**
 * The replication writer plugin: runs inside each database's writer worker (see
 * `engine/plugin.ts`), next to the only write connection.
 *
 * - Capture (`capture.ts`): TEMP triggers on every user table append the rows a statement
 *   changes directly to a TEMP log table, so a rolled-back statement or transaction removes its
 *   captured rows by itself. Values are packed exactly by a user function registered with
 *   `useBigIntArguments`. Per statement, a marker row in the log carries what replicas need to
 *   apply its changes the same way (the columns its UPDATEs set, REPLACE conflict resolution).
 *   Rows deleted by REPLACE conflict resolution fire no delete trigger: they are noted by BEFORE
 *   triggers and logged as deletes after the statement when they are gone. `recursive_triggers`
 *   stays as the user configured it (off by default), so user triggers behave as in plain SQLite.
 *   DDL text is captured (made idempotent) after it ran; triggers are dropped before ALTER/DROP
 *   TABLE and re-created after DDL.
 * - `beforeCommit`: stamps the transaction with the hybrid logical clock, records per-row
 *   versions (deletes as tombstones), refuses a changeset larger than the NATS max payload,
 *   writes it to the outbox in the same transaction and hands `{id, data}` to the main thread.
 * - the `apply` command (`plugin_api.ts`): applies changesets from the stream in one transaction with capture
 *   suppressed (`apply.ts`), last-writer-wins by (hlc, node) per row, and records the stream
 *   sequence. User triggers fire on the replica and make their side effects there.
 *
 * @module
 */
import type { DatabaseSync, StatementSync } from "node:sqlite";
import { Action } from "../engine/authorizer.ts";
import type {
  AuthAction,
  CommandHandlers,
  PluginFactory,
  StatementInfo,
  WriterPlugin,
} from "../engine/plugin.ts";
import type {
  ApplyMessage,
  ApplyResult,
  CommitPayload,
  InterceptedBatch,
  OutboxRow,
  ReplicationCommands,
  ReplicationPluginOptions,
  WireConflict,
  WireResolution,
} from "./plugin_api.ts";
import {
  alreadyApplied,
  type CdcValue,
  type Change,
  type ChangeSet,
  compareVersion,
  ddlRefusal,
  decodeChangeSet,
  encodeChangeSet,
  encodeValue,
  Hlc,
  idempotentDdl,
} from "../cdc/mod.ts";
import { HaError } from "../errors/mod.ts";
import { Applier } from "./apply.ts";
import { ConflictLog } from "./conflicts.ts";
import { Logger } from "../log/mod.ts";
import {
  lit,
  q,
  type StatementScope,
  statementScope,
  type TableMeta,
  triggerNames,
  triggerSql,
  type UniqueKey,
} from "./capture.ts";
import { headerBytes, utf8Length } from "./headers.ts";
import { Versions } from "./versions.ts";
import { DeadLetters } from "./dead_letters.ts";
import { checkMessage, InvalidMessage, SchemaMisfit } from "./validate.ts";
import { tokenize } from "../engine/lexer.ts";

/** What a statement marker in the log says about the changes after it. */
interface Marker {
  replace?: boolean;
  updated?: Record<string, string[]>;
}

const INTERNAL = /^(sqlite_|_ha_)/i;
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

class ReplicationPlugin implements WriterPlugin {
  private readonly clock: Hlc;
  private readonly tables = new Map<string, TableMeta>();
  /** INSTEAD OF trigger name → its view. */
  private readonly triggerView = new Map<string, string>();
  /** Installed trigger name → its SQL. */
  private readonly installed = new Map<string, string>();
  private readonly stmts = new Map<string, StatementSync>();
  /** Per statement (its authorizer actions): its scope and the tables it may REPLACE rows of. */
  private scopes = new WeakMap<AuthAction[], { scope: StatementScope; replacing: Set<string> }>();
  private capturing = true;
  /** Tables the running statement writes directly (captured). */
  private direct: ReadonlySet<string> = NO_TABLES;
  /** Tables whose rows the running statement may delete by REPLACE. */
  private replacing: ReadonlySet<string> = NO_TABLES;
  /** The last marker logged in this transaction says something. */
  private marked = false;
  /** A statement of this transaction may have noted rows in `temp._ha_cand`. */
  private noted = false;
  private ddlInTx = false;
  private readonly outbox: string;
  private readonly versions: Versions;
  private readonly applier: Applier;
  /**
   * Per subject, own changesets of earlier runs to apply (`after < seq <= through`): this file
   * was restored from a snapshot that may not reflect them (`snapshot/sqlite_file.ts`).
   */
  private readonly replayOwn = new Map<string, { after: number; through: number }>();
  private readonly deadLetters: DeadLetters;
  /** Columns of the tables remote changes touched in this apply batch (null: no such table). */
  private readonly knownColumns = new Map<string, Set<string> | null>();
  private readonly conflictLog: ConflictLog;

  constructor(
    private readonly db: DatabaseSync,
    private readonly databaseId: string,
    private readonly o: ReplicationPluginOptions,
  ) {
    const offset = o.clockOffsetMs ?? 0;
    this.clock = new Hlc(offset === 0 ? Date.now : () => Date.now() + offset);
    this.outbox = o.outboxDir ? "ha_outbox._ha_outbox" : "main._ha_outbox";
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
    if (o.outboxDir) {
      const file = `${o.outboxDir}/${databaseId.replace(/[^A-Za-z0-9_.-]/g, "_")}_outbox.db`;
      // A URI with an explicit VFS: ATTACH would otherwise use the memory database's memdb VFS.
      const vfs = Deno.build.os === "windows" ? "win32" : "unix";
      db.exec(`ATTACH DATABASE ${lit(`file:${encodeURI(file)}?vfs=${vfs}`)} AS ha_outbox`);
      db.exec("PRAGMA ha_outbox.journal_mode = WAL");
    }
    db.exec(`
      CREATE TABLE IF NOT EXISTS main._ha_progress(
        subject TEXT PRIMARY KEY, seq INTEGER NOT NULL) WITHOUT ROWID;
      CREATE TABLE IF NOT EXISTS ${this.outbox}(
        id INTEGER PRIMARY KEY AUTOINCREMENT, csid TEXT NOT NULL, data TEXT NOT NULL);
      CREATE TEMP TABLE IF NOT EXISTS _ha_log(
        seq INTEGER PRIMARY KEY, tbl TEXT, op TEXT NOT NULL, old_rowid, new_rowid,
        old_v TEXT, new_v TEXT, cmd TEXT);
      CREATE TEMP TABLE IF NOT EXISTS _ha_cand(tbl TEXT NOT NULL, old_rowid, old_v TEXT NOT NULL);
    `);
    const stmt = (sql: string) => this.stmt(sql);
    this.clock.observe(Versions.init((sql) => db.exec(sql), stmt));
    this.versions = new Versions(stmt, o.rowIdentify);
    ConflictLog.init((sql) => db.exec(sql));
    this.conflictLog = new ConflictLog(
      stmt,
      new Logger(o.logLevel ?? "info", { node: o.node, db: databaseId, component: "replication" }),
    );
    this.applier = new Applier(stmt, this.versions, this.tables, o.rowIdentify, this.conflictLog);
    this.readReplayOwn();
    this.deadLetters = new DeadLetters((sql) => db.exec(sql), stmt);
    this.resync();
  }

  private readReplayOwn(): void {
    const t = this.db.prepare(
      "SELECT 1 FROM main.sqlite_schema WHERE type = 'table' AND name = '_ha_restored'",
    ).get();
    if (!t) return;
    const rows = this.db.prepare("SELECT subject, after, through FROM main._ha_restored").all() as {
      subject: string;
      after: number;
      through: number;
    }[];
    for (const r of rows) {
      this.replayOwn.set(r.subject, { after: Number(r.after), through: Number(r.through) });
    }
  }

  /** Whether a changeset is this node's own and already in the database (not applied). */
  private isOwn(cs: ChangeSet, subject: string, seq: number): boolean {
    if (cs.node !== this.o.node) return false;
    if (this.o.memory) return cs.incarnation === this.o.incarnation;
    const r = this.replayOwn.get(subject);
    return !(r && seq > r.after && seq <= r.through && cs.incarnation !== this.o.incarnation);
  }

  private stmt(sql: string): StatementSync {
    let s = this.stmts.get(sql);
    if (!s) {
      s = this.db.prepare(sql);
      s.setReadBigInts(true);
      if (this.stmts.size > 512) this.stmts.clear();
      this.stmts.set(sql, s);
    }
    return s;
  }

  // -- capture ---------------------------------------------------------------------------------

  /** Reads the schema and (re)installs capture triggers where they differ. */
  private resync(): void {
    this.stmts.clear();
    this.tables.clear();
    this.triggerView.clear();
    this.scopes = new WeakMap();
    const rows = this.db.prepare(
      "SELECT name, sql FROM main.sqlite_schema WHERE type = 'table'",
    ).all() as { name: string; sql: string | null }[];
    const desired = new Map<string, string>();
    for (const r of rows) {
      if (INTERNAL.test(r.name) || /^\s*CREATE\s+VIRTUAL/i.test(r.sql ?? "")) continue;
      const meta = this.tableMeta(r.name, r.sql ?? "");
      if (!meta) continue;
      this.tables.set(r.name, meta);
      for (const [name, sql] of triggerSql(meta)) desired.set(name, sql);
    }
    const views = this.db.prepare(
      `SELECT t.name AS name, t.tbl_name AS view FROM main.sqlite_schema t
       JOIN main.sqlite_schema v ON v.type = 'view' AND v.name = t.tbl_name
       WHERE t.type = 'trigger'`,
    ).all() as { name: string; view: string }[];
    for (const v of views) this.triggerView.set(v.name, v.view);
    const present = new Set(
      (this.db.prepare(
        "SELECT name FROM temp.sqlite_schema WHERE type = 'trigger' AND name LIKE '\\_ha\\_%' ESCAPE '\\'",
      ).all() as { name: string }[]).map((r) => r.name),
    );
    for (const name of present) {
      if (desired.get(name) !== this.installed.get(name)) {
        this.db.exec(`DROP TRIGGER IF EXISTS temp.${q(name)}`);
        present.delete(name);
        this.installed.delete(name);
      }
    }
    for (const [name, sql] of desired) {
      if (present.has(name)) continue;
      this.db.exec(sql);
      this.installed.set(name, sql);
    }
  }

  private tableMeta(name: string, sql: string): TableMeta | null {
    const cols = this.db.prepare(`SELECT name, pk FROM main.pragma_table_info(${lit(name)})`)
      .all() as { name: string; pk: bigint | number }[];
    if (cols.length === 0) return null;
    const list = this.db.prepare(
      `SELECT wr FROM main.pragma_table_list(${lit(name)}) WHERE schema = 'main'`,
    ).get() as { wr: number | bigint } | undefined;
    const pk = cols.filter((c) => Number(c.pk) > 0).sort((a, b) => Number(a.pk) - Number(b.pk))
      .map((c) => c.name);
    return {
      name,
      columns: cols.map((c) => c.name),
      pk,
      withoutRowid: Number(list?.wr ?? 0) === 1,
      uniques: this.uniqueKeys(name),
      replaceConstraint: /\bON\s+CONFLICT\s+REPLACE\b/i.test(sql),
    };
  }

  /**
   * Unique indexes whose conflicts may delete a row under another key. With `--row-identify pk`
   * the primary key is left out: a row replaced under the same key is overwritten, not deleted.
   */
  private uniqueKeys(table: string): UniqueKey[] {
    const indexes = this.db.prepare(
      `SELECT name, origin FROM main.pragma_index_list(${lit(table)}) WHERE "unique" = 1`,
    ).all() as { name: string; origin: string }[];
    const out: UniqueKey[] = [];
    for (const ix of indexes) {
      if (ix.origin === "pk" && this.o.rowIdentify === "pk") continue;
      const cols = this.db.prepare(
        `SELECT cid, name, coll FROM main.pragma_index_xinfo(${lit(ix.name)}) WHERE key = 1
         ORDER BY seqno`,
      ).all() as { cid: number | bigint; name: string | null; coll: string }[];
      if (cols.some((c) => Number(c.cid) < 0 || c.name === null)) continue;
      out.push({ columns: cols.map((c) => ({ name: c.name!, collation: c.coll })) });
    }
    return out;
  }

  private dropTriggersOf(table: string): void {
    for (const name of triggerNames(table)) {
      this.db.exec(`DROP TRIGGER IF EXISTS temp.${q(name)}`);
      this.installed.delete(name);
    }
  }

  beforeStatement(info: StatementInfo): void {
    const ddl = ddlActions(info.actions);
    if (ddl.length > 0) {
      for (const t of touchedTables(ddl)) this.dropTriggersOf(t);
      return;
    }
    let cached = this.scopes.get(info.actions);
    if (!cached) {
      const scope = statementScope(info.actions, this.triggerView, info.sql);
      const replacing = new Set(
        [...scope.tables].filter((t) => scope.replace || this.tables.get(t)?.replaceConstraint),
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
    if (!this.o.disableDdlSync) {
      const cmd = idempotentDdl(info.sql);
      // Replicas refuse anything but one schema statement: do not publish what they would refuse.
      const why = ddlRefusal(cmd);
      if (why !== null) throw new HaError("bad_request", `this DDL cannot be replicated: ${why}`);
      this.stmt("INSERT INTO temp._ha_log(op, cmd) VALUES ('SQL', ?)").run(cmd);
    }
    this.resync();
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
      const meta = this.tables.get(r.tbl);
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
      this.installed.clear();
      this.resync();
    }
  }

  private endTransaction(): void {
    this.stmt("DELETE FROM temp._ha_log").run();
    if (this.noted) this.stmt("DELETE FROM temp._ha_cand").run();
    this.direct = NO_TABLES;
    this.replacing = NO_TABLES;
    this.marked = false;
    this.noted = false;
  }

  beforeCommit(): CommitPayload | undefined {
    this.ddlInTx = false;
    const rows = this.stmt(
      "SELECT tbl, op, old_rowid, new_rowid, old_v, new_v, cmd FROM temp._ha_log ORDER BY seq",
    ).all() as {
      tbl: string | null;
      op: string;
      old_rowid: bigint | null;
      new_rowid: bigint | null;
      old_v: string | null;
      new_v: string | null;
      cmd: string | null;
    }[];
    this.endTransaction();
    if (!rows.some((r) => r.op !== "STMT")) return undefined;
    const hlc = this.clock.next();
    const changes: Change[] = [];
    let marker: Marker = {};
    /** Rows whose first change after the marker was seen (they get `updated_columns`). */
    const seen = new Set<string>();
    for (const r of rows) {
      if (r.op === "STMT") {
        marker = JSON.parse(r.cmd ?? "{}");
        seen.clear();
        continue;
      }
      if (r.op === "SQL") {
        changes.push({
          database: "main",
          table: "",
          columns: [],
          pk_columns: [],
          operation: "SQL",
          command: r.cmd ?? "",
          hlc,
        });
        continue;
      }
      const meta = this.tables.get(r.tbl ?? "");
      if (!meta) continue;
      const c: Change = {
        database: "main",
        table: meta.name,
        columns: meta.columns,
        pk_columns: meta.pk,
        operation: r.op as Change["operation"],
        hlc,
      };
      if (r.old_v !== null) {
        c.old_rowid = r.old_rowid === null ? null : encodeValue(r.old_rowid);
        c.old_values = JSON.parse(r.old_v);
      }
      if (r.new_v !== null) {
        c.new_rowid = r.new_rowid === null ? null : encodeValue(r.new_rowid);
        c.new_values = JSON.parse(r.new_v);
      }
      const set = marker.updated?.[meta.name];
      if (c.operation === "UPDATE" && set) {
        const row = `${meta.name}\u0000${this.versions.keyOf(c, "old")}`;
        if (!seen.has(row)) c.updated_columns = set;
        seen.add(row);
      }
      if (marker.replace && c.operation !== "DELETE") c.on_conflict = "REPLACE";
      changes.push(c);
      this.recordLocal(c, hlc);
    }
    const cs: ChangeSet = {
      // The incarnation makes the id (JetStream's Nats-Msg-Id) unique: a memory node restarted
      // with a clock that went back reuses HLCs of its previous run, and within the duplicate
      // window JetStream would drop such a changeset while acknowledging it.
      id: `${this.databaseId}:${this.o.node}:${this.o.incarnation}:${hlc}`,
      node: this.o.node,
      incarnation: this.o.incarnation,
      db: this.databaseId,
      hlc,
      timestamp_ns: Date.now() * 1e6,
      changes,
    };
    const data = encodeChangeSet(cs);
    this.checkSize(cs.id, data);
    const res = this.stmt(`INSERT INTO ${this.outbox}(csid, data) VALUES (?, ?)`).run(cs.id, data);
    return { kind: "changeset", outboxId: Number(res.lastInsertRowid), id: cs.id, data };
  }

  /** Refuses (before COMMIT) a changeset whose message NATS would reject as too large. */
  private checkSize(id: string, data: string): void {
    const max = this.o.maxPayload;
    if (max <= 0) return;
    const headers = headerBytes(id, this.o.node, this.o.incarnation, !!this.o.clusterKey);
    if (headers + data.length * 3 <= max) return;
    const bytes = headers + utf8Length(data);
    if (bytes <= max) return;
    throw new HaError(
      "too_large",
      `transaction too large to replicate: its changeset message is ${bytes} bytes, over the ` +
        `NATS max_payload of ${max} bytes; it was rolled back (split it into smaller ` +
        `transactions, or raise max_payload in the nats-server configuration)`,
      { bytes, maxPayload: max },
    );
  }

  /** Local writes always win locally: stamp their row versions. */
  private recordLocal(c: Change, hlc: number): void {
    const node = this.o.node;
    const v = this.versions;
    if (c.operation === "INSERT") {
      v.set(c.table, v.keyOf(c, "new"), hlc, node, false);
    } else if (c.operation === "DELETE") {
      v.set(c.table, v.keyOf(c, "old"), hlc, node, true);
    } else {
      const ok = v.keyOf(c, "old");
      const nk = v.keyOf(c, "new");
      if (ok !== nk) v.set(c.table, ok, hlc, node, true);
      v.set(c.table, nk, hlc, node, false);
    }
  }

  // -- apply -----------------------------------------------------------------------------------

  readonly commands: CommandHandlers<ReplicationCommands> = {
    apply: (msgs) => this.applyBatch(msgs),
    applyIntercepted: (batch) => this.applyBatch(batch.msgs, batch),
    progress: (subject) => {
      const r = this.stmt("SELECT seq FROM main._ha_progress WHERE subject = ?")
        .get(subject) as { seq: bigint } | undefined;
      // null: nothing recorded yet (the replication policy decides where to start).
      return r ? Number(r.seq) : null;
    },
    skip: (a) => this.skip(a),
    outboxPending: (a) => {
      const rows = this.stmt(
        `SELECT id, csid, data FROM ${this.outbox} WHERE id > ? ORDER BY id LIMIT ?`,
      ).all(BigInt(a.after), BigInt(a.limit)) as { id: bigint; csid: string; data: string }[];
      return rows.map((r): OutboxRow => ({ outboxId: Number(r.id), id: r.csid, data: r.data }));
    },
    outboxDelete: (upTo) => {
      this.stmt(`DELETE FROM ${this.outbox} WHERE id <= ?`).run(BigInt(upTo));
      return null;
    },
    setMaxPayload: (bytes) => {
      // Known once NATS is reached (a node may start while it is down).
      this.o.maxPayload = bytes;
      return null;
    },
    purgeTombstones: (cutoff) => this.versions.purgeTombstones(cutoff),
  };

  private skip(a: { subject: string; seq: number }): null {
    this.stmt(
      `INSERT INTO main._ha_progress(subject, seq) VALUES (?, ?)
       ON CONFLICT(subject) DO UPDATE SET seq = max(seq, excluded.seq)`,
    ).run(a.subject, BigInt(a.seq));
    return null;
  }

  /**
   * The conflicting rows of one remote changeset (none when it is already applied or own): the
   * local row differs from the change's old image (UPDATE, DELETE), was deleted here (UPDATE),
   * or exists with other values (INSERT). Rows changed twice by the changeset are reported once.
   */
  private conflicts(cs: ChangeSet): WireConflict[] {
    const out: WireConflict[] = [];
    const seen = new Set<string>();
    cs.changes.forEach((c, i) => {
      if (c.operation === "SQL" || INTERNAL.test(c.table) || !this.tables.has(c.table)) return;
      const side = c.operation === "INSERT" ? "new" : "old";
      const key = this.versions.keyOf(c, side);
      const id = `${c.table}\u0000${key}`;
      if (seen.has(id)) return;
      seen.add(id);
      if (c.operation === "UPDATE") seen.add(`${c.table}\u0000${this.versions.keyOf(c, "new")}`);
      const row = this.applier.current(c, side);
      const local = row ? c.columns.map((col) => encodeValue(row[col] ?? null)) : null;
      const expected = (side === "new" ? c.new_values : c.old_values) ?? null;
      if (local === null && c.operation !== "UPDATE") return;
      if (local !== null && JSON.stringify(local) === JSON.stringify(expected)) return;
      const v = this.versions.get(c.table, key);
      out.push({
        change_index: i,
        table: c.table,
        columns: c.columns,
        pk_columns: c.pk_columns,
        local: { values: local, hlc: v?.hlc ?? null, node: v?.node ?? null },
        remote: {
          operation: c.operation,
          values: c.new_values ?? null,
          old_values: c.old_values ?? null,
          hlc: typeof c.hlc === "number" ? c.hlc : cs.hlc,
          node: cs.node,
        },
      });
    });
    return out;
  }

  /**
   * Applies a change as a resolver decided: `local` keeps the row, `remote` applies the change
   * regardless of versions, `values` writes the merged row. The row's version becomes the larger
   * of both sides, so every node of the conflict ends with the same version.
   */
  private applyResolution(
    c: Change,
    r: WireResolution,
    hlc: number,
    node: string,
    touched: Set<string>,
  ): void {
    const v = this.versions;
    const side = c.operation === "INSERT" ? "new" : "old";
    const key = v.keyOf(c, side);
    const before = v.get(c.table, key);
    this.noteResolved(c, r, key, before, hlc, node);
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
  ): void {
    const row = this.applier.current(c, c.operation === "INSERT" ? "new" : "old");
    const local = {
      node: before?.node ?? this.o.node,
      hlc: before?.hlc ?? 0,
      values: row ? c.columns.map((col) => encodeValue(row[col] ?? null)) : null,
    };
    const remote = { node, hlc, values: c.operation === "DELETE" ? null : c.new_values ?? null };
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

  private applyBatch(batch: ApplyMessage[], opts?: InterceptedBatch): ApplyResult {
    const result: ApplyResult = {
      through: 0,
      applied: 0,
      skipped: 0,
      error: null,
      deadLetters: [],
    };
    if (opts) result.appliedSeqs = [];
    this.knownColumns.clear();
    const resolutions = new Map(opts?.resolutions ?? []);
    if (batch.length === 0) return result;
    const subject = batch[0].subject;
    let done = Number(
      (this.stmt("SELECT seq FROM main._ha_progress WHERE subject = ?").get(subject) as
        | { seq: bigint }
        | undefined)?.seq ?? 0n,
    );
    let ddl = false;
    this.capturing = false;
    this.db.exec("BEGIN IMMEDIATE");
    try {
      for (const m of batch) {
        if (m.seq <= done) {
          result.skipped++;
          continue;
        }
        if (m.skip) {
          result.skipped++;
          done = m.seq;
          result.through = m.seq;
          continue;
        }
        this.db.exec("SAVEPOINT ha_apply");
        try {
          const cs = checkMessage(m, {
            clusterKey: this.o.clusterKey ?? null,
            maxClockSkewMs: this.o.maxClockSkewMs ?? 60_000,
          });
          if (this.isOwn(cs, subject, m.seq)) result.skipped++;
          else {
            const resolved = opts?.resolvedSeq === m.seq;
            if (opts?.detect && !resolved) {
              const list = this.conflicts(cs);
              if (list.length > 0) {
                this.db.exec("RELEASE ha_apply");
                result.conflicts = { seq: m.seq, list };
                break;
              }
            }
            if (this.applyChangeSet(cs, resolved ? resolutions : undefined)) ddl = true;
            result.applied++;
            result.appliedSeqs?.push(m.seq);
          }
          this.db.exec("RELEASE ha_apply");
        } catch (e) {
          this.db.exec("ROLLBACK TO ha_apply");
          this.db.exec("RELEASE ha_apply");
          ddl = true; // its DDL, if any, was rolled back: read the schema again
          if (!(e instanceof InvalidMessage)) {
            result.error = { seq: m.seq, message: (e as Error).message };
            break;
          }
          this.knownColumns.clear();
          const park = e instanceof SchemaMisfit;
          const reason = park ? `parked until its schema arrives: ${e.message}` : e.message;
          this.deadLetters.add({ seq: m.seq, subject, reason, payload: m.data }, park);
          result.deadLetters!.push({ seq: m.seq, reason });
        }
        done = m.seq;
        result.through = m.seq;
      }
      if (ddl) result.applied += this.applyParked(subject);
      if (result.through > 0) {
        this.stmt(
          `INSERT INTO main._ha_progress(subject, seq) VALUES (?, ?)
           ON CONFLICT(subject) DO UPDATE SET seq = excluded.seq`,
        ).run(subject, BigInt(result.through));
      }
      this.endTransaction();
      this.db.exec("COMMIT");
    } catch (e) {
      if (this.db.isTransaction) this.db.exec("ROLLBACK");
      this.installed.clear();
      this.resync();
      throw e;
    } finally {
      this.capturing = true;
    }
    if (ddl) this.resync();
    return result;
  }

  /**
   * Applies the parked changesets of `subject` whose schema now exists (inside the batch's
   * transaction, after its DDL); returns how many applied. Their signature and shape were checked
   * when they were parked.
   */
  private applyParked(subject: string): number {
    let applied = 0;
    for (const p of this.deadLetters.parked(subject)) {
      this.knownColumns.clear();
      this.db.exec("SAVEPOINT ha_parked");
      try {
        const cs = decodeChangeSet(p.payload);
        if (!this.isOwn(cs, subject, p.seq)) this.applyChangeSet(cs);
        this.deadLetters.remove(p.id);
        this.db.exec("RELEASE ha_parked");
        applied++;
      } catch {
        // Still does not fit (or fails): stays parked until the next DDL.
        this.db.exec("ROLLBACK TO ha_parked");
        this.db.exec("RELEASE ha_parked");
      }
    }
    this.knownColumns.clear();
    return applied;
  }

  /** Applies one changeset; returns whether it contained DDL. */
  private applyChangeSet(cs: ChangeSet, resolutions?: Map<number, WireResolution>): boolean {
    let ddl = false;
    const touched = new Set<string>();
    for (const [i, c] of cs.changes.entries()) {
      const hlc = typeof c.hlc === "number" ? c.hlc : cs.hlc;
      this.clock.observe(hlc);
      if (c.operation === "SQL") {
        ddl = true;
        this.applyDdl(c.command ?? "");
        // Later changes of this changeset may use what the DDL created (a WITHOUT ROWID table).
        this.reloadTables();
        continue;
      }
      if (INTERNAL.test(c.table)) continue;
      this.checkSchema(c, i);
      const r = resolutions?.get(i);
      if (r !== undefined) this.applyResolution(c, r, hlc, cs.node, touched);
      else this.applier.apply(c, hlc, cs.node, touched);
    }
    return ddl;
  }

  /** Reads the metadata of every user table again (capture triggers: `resync` after apply). */
  private reloadTables(): void {
    const rows = this.db.prepare(
      "SELECT name, sql FROM main.sqlite_schema WHERE type = 'table'",
    ).all() as { name: string; sql: string | null }[];
    this.tables.clear();
    for (const r of rows) {
      if (INTERNAL.test(r.name) || /^\s*CREATE\s+VIRTUAL/i.test(r.sql ?? "")) continue;
      const meta = this.tableMeta(r.name, r.sql ?? "");
      if (meta) this.tables.set(r.name, meta);
    }
  }

  /**
   * A row change must name a table and columns that exist here. With DDL replication on, the
   * stream carries every schema change before the rows that use it, so a change that does not fit
   * the schema at its position can never apply: it is invalid (dead-lettered, payload kept).
   * With `--disable-ddl-sync` the schema is created by hand and may come later: such a change
   * fails (retried, shown in status, skippable) until it does.
   */
  private checkSchema(c: Change, i: number): void {
    let cols = this.knownColumns.get(c.table);
    if (cols === undefined) {
      const rows = this.stmt("SELECT name FROM main.pragma_table_xinfo(?)").all(c.table) as {
        name: string;
      }[];
      cols = rows.length === 0 ? null : new Set(rows.map((r) => r.name));
      this.knownColumns.set(c.table, cols);
    }
    const missing = cols === null
      ? `no table ${JSON.stringify(c.table)}`
      : c.columns.filter((x) => !cols.has(x)).map((x) => `no column ${JSON.stringify(x)}`)
        .join(", ") || null;
    if (missing === null) return;
    const why = `change ${i}: ${missing} in table ${JSON.stringify(c.table)}`;
    if (this.o.disableDdlSync) throw new Error(why);
    throw new SchemaMisfit(why);
  }

  private applyDdl(sql: string): void {
    this.knownColumns.clear();
    const meta = /^\s*ALTER\s+TABLE\s+(?:main\s*\.\s*)?("(?:[^"]|"")+"|`[^`]+`|\[[^\]]+\]|\S+)/i
      .exec(sql);
    if (meta) this.dropTriggersOf(unquote(meta[1]));
    if (/^\s*DROP\s+TABLE/i.test(sql)) this.installed.clear();
    try {
      // prepare() compiles the first statement only: nothing after it can run, whatever the
      // validation's splitter thought of the text.
      const stmt = this.db.prepare(sql);
      const at = sql.indexOf(stmt.sourceSQL);
      if (at < 0 || tokenize(sql.slice(at + stmt.sourceSQL.length)).length > 0) {
        throw new InvalidMessage(`DDL change must be one statement: ${JSON.stringify(sql)}`);
      }
      stmt.run();
    } catch (e) {
      if (e instanceof InvalidMessage || !alreadyApplied(sql, (e as Error).message)) throw e;
    }
  }

  close(): void {
    if (this.o.outboxDir) {
      try {
        this.db.exec("DETACH DATABASE ha_outbox");
      } catch { /* closing anyway */ }
    }
  }
}

function unquote(id: string): string {
  if (id.startsWith('"')) return id.slice(1, -1).replaceAll('""', '"');
  if (id.startsWith("`") || id.startsWith("[")) return id.slice(1, -1);
  return id;
}

const factory: PluginFactory = ({ db, databaseId, options }) =>
  new ReplicationPlugin(db, databaseId, options as ReplicationPluginOptions);
export default factory;
