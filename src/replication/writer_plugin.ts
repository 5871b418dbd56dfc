/**
 * The replication writer plugin: runs inside each database's writer worker (see
 * `engine/plugin.ts`), next to the only write connection.
 *
 * - Capture: TEMP triggers on every user table append to a TEMP log table, so a rolled-back
 *   statement or transaction removes its captured rows by itself. Values are packed exactly by a
 *   user function registered with `useBigIntArguments`. DDL text is captured (made idempotent)
 *   after it ran; triggers are dropped before ALTER/DROP TABLE and re-created after DDL.
 * - `beforeCommit`: stamps the transaction with the hybrid logical clock, records per-row
 *   versions (deletes as tombstones), writes the changeset to the outbox in the same transaction
 *   and hands `{id, data}` to the main thread.
 * - `invoke("apply", …)`: applies changesets from the stream in one transaction with capture
 *   suppressed, last-writer-wins by (hlc, node) per row, and records the stream sequence.
 *
 * @module
 */
import type { DatabaseSync, StatementSync } from "node:sqlite";
import { Action } from "../engine/authorizer.ts";
import type { AuthAction, PluginFactory, StatementInfo, WriterPlugin } from "../engine/plugin.ts";
import {
  alreadyApplied,
  type CdcValue,
  type Change,
  type ChangeSet,
  compareVersion,
  decodeChangeSet,
  decodeValue,
  encodeChangeSet,
  encodeValue,
  Hlc,
  idempotentDdl,
  type WireValue,
} from "../cdc/mod.ts";
import type { RowIdentify } from "../config/mod.ts";

/** Options the main thread gives the plugin (structured-cloned). */
export interface ReplicationPluginOptions {
  /** This node's name. */
  node: string;
  /** Random per process start: own changesets of an earlier run are applied on memory databases. */
  incarnation: string;
  rowIdentify: RowIdentify;
  /** Do not capture DDL (`--disable-ddl-sync`). */
  disableDdlSync: boolean;
  /** The database lives in memory (own changesets of earlier runs must be replayed). */
  memory: boolean;
  /**
   * Directory of a durable outbox file for memory databases in async mode
   * (`--async-replication-store-dir`); null keeps the outbox in the database itself.
   */
  outboxDir: string | null;
}

/** What `beforeCommit` hands to commit listeners. */
export interface CommitPayload {
  kind: "changeset";
  /** Outbox row id (ordering, deletion after publication). */
  outboxId: number;
  /** The changeset id (`Nats-Msg-Id`). */
  id: string;
  /** Encoded changeset. */
  data: string;
}

/** One stream message given to `invoke("apply")`. */
export interface ApplyMessage {
  seq: number;
  subject: string;
  data: string;
}

/** Result of `invoke("apply")`. */
export interface ApplyResult {
  /** Highest sequence committed (applied or skipped); 0 when none. */
  through: number;
  applied: number;
  skipped: number;
  /** The first message that failed (nothing after it was applied). */
  error: { seq: number; message: string } | null;
}

/** Outbox rows for the publisher. */
export interface OutboxRow {
  outboxId: number;
  id: string;
  data: string;
}

interface TableMeta {
  name: string;
  columns: string[];
  pk: string[];
  withoutRowid: boolean;
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

/** Quotes an SQL identifier. */
export function q(id: string): string {
  return `"${id.replaceAll('"', '""')}"`;
}

function lit(s: string): string {
  return `'${s.replaceAll("'", "''")}'`;
}

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
  private readonly clock = new Hlc();
  private readonly tables = new Map<string, TableMeta>();
  /** Installed trigger name → its SQL. */
  private readonly installed = new Map<string, string>();
  private readonly stmts = new Map<string, StatementSync>();
  private capturing = true;
  private ddlInTx = false;
  private readonly outbox: string;

  constructor(
    private readonly db: DatabaseSync,
    private readonly databaseId: string,
    private readonly o: ReplicationPluginOptions,
  ) {
    this.outbox = o.outboxDir ? "ha_outbox._ha_outbox" : "main._ha_outbox";
    db.function("_ha_on", { deterministic: false }, () => this.capturing ? 1 : 0);
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
      CREATE TABLE IF NOT EXISTS main._ha_versions(
        tbl TEXT NOT NULL, key TEXT NOT NULL, hlc INTEGER NOT NULL, node TEXT NOT NULL,
        deleted INTEGER NOT NULL, PRIMARY KEY(tbl, key)) WITHOUT ROWID;
      CREATE TABLE IF NOT EXISTS main._ha_progress(
        subject TEXT PRIMARY KEY, seq INTEGER NOT NULL) WITHOUT ROWID;
      CREATE TABLE IF NOT EXISTS ${this.outbox}(
        id INTEGER PRIMARY KEY AUTOINCREMENT, csid TEXT NOT NULL, data TEXT NOT NULL);
      CREATE TEMP TABLE IF NOT EXISTS _ha_log(
        seq INTEGER PRIMARY KEY, tbl TEXT, op TEXT NOT NULL, old_rowid, new_rowid,
        old_v TEXT, new_v TEXT, cmd TEXT);
    `);
    const maxHlc = this.stmt("SELECT max(hlc) AS h FROM main._ha_versions").get() as {
      h: bigint | null;
    };
    if (maxHlc.h !== null) this.clock.observe(Number(maxHlc.h));
    this.resync();
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
    const rows = this.db.prepare(
      "SELECT name, sql FROM main.sqlite_schema WHERE type = 'table'",
    ).all() as { name: string; sql: string | null }[];
    const desired = new Map<string, string>();
    for (const r of rows) {
      if (INTERNAL.test(r.name) || /^\s*CREATE\s+VIRTUAL/i.test(r.sql ?? "")) continue;
      const meta = this.tableMeta(r.name);
      if (!meta) continue;
      this.tables.set(r.name, meta);
      for (const [name, sql] of triggerSql(meta)) desired.set(name, sql);
    }
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

  private tableMeta(name: string): TableMeta | null {
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
    };
  }

  private dropTriggersOf(table: string): void {
    for (const name of triggerNames(table)) {
      this.db.exec(`DROP TRIGGER IF EXISTS temp.${q(name)}`);
      this.installed.delete(name);
    }
  }

  beforeStatement(info: StatementInfo): void {
    const ddl = ddlActions(info.actions);
    if (ddl.length === 0) return;
    for (const t of touchedTables(ddl)) this.dropTriggersOf(t);
  }

  afterStatement(info: StatementInfo): void {
    const ddl = ddlActions(info.actions);
    if (ddl.length === 0) return;
    this.ddlInTx = true;
    if (!this.o.disableDdlSync) {
      this.stmt("INSERT INTO temp._ha_log(op, cmd) VALUES ('SQL', ?)").run(idempotentDdl(info.sql));
    }
    this.resync();
  }

  afterRollback(): void {
    this.stmt("DELETE FROM temp._ha_log").run();
    if (this.ddlInTx) {
      this.ddlInTx = false;
      this.installed.clear();
      this.resync();
    }
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
    if (rows.length === 0) return undefined;
    this.stmt("DELETE FROM temp._ha_log").run();
    const hlc = this.clock.next();
    const changes: Change[] = [];
    for (const r of rows) {
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
      changes.push(c);
      this.recordLocal(c, hlc);
    }
    const cs: ChangeSet = {
      id: `${this.databaseId}:${this.o.node}:${hlc}`,
      node: this.o.node,
      incarnation: this.o.incarnation,
      db: this.databaseId,
      hlc,
      timestamp_ns: Date.now() * 1e6,
      changes,
    };
    const data = encodeChangeSet(cs);
    const res = this.stmt(`INSERT INTO ${this.outbox}(csid, data) VALUES (?, ?)`).run(cs.id, data);
    return { kind: "changeset", outboxId: Number(res.lastInsertRowid), id: cs.id, data };
  }

  /** Local writes always win locally: stamp their row versions. */
  private recordLocal(c: Change, hlc: number): void {
    const node = this.o.node;
    if (c.operation === "INSERT") {
      this.setVersion(c.table, this.keyOf(c, "new"), hlc, node, false);
    } else if (c.operation === "DELETE") {
      this.setVersion(c.table, this.keyOf(c, "old"), hlc, node, true);
    } else {
      const ok = this.keyOf(c, "old");
      const nk = this.keyOf(c, "new");
      if (ok !== nk) this.setVersion(c.table, ok, hlc, node, true);
      this.setVersion(c.table, nk, hlc, node, false);
    }
  }

  // -- versions --------------------------------------------------------------------------------

  /** The row key per `--row-identify`, from the old or new image. */
  private keyOf(c: Change, side: "old" | "new"): string {
    const values = (side === "old" ? c.old_values : c.new_values) ?? [];
    const rowid = side === "old" ? c.old_rowid : c.new_rowid;
    const mode = this.o.rowIdentify;
    if (mode === "full") return JSON.stringify(values);
    const byRowid = rowid !== null && rowid !== undefined &&
      (mode === "rowid" || c.pk_columns.length === 0);
    if (byRowid) return `#${JSON.stringify(rowid)}`;
    return JSON.stringify(c.pk_columns.map((p) => values[c.columns.indexOf(p)] ?? null));
  }

  private setVersion(tbl: string, key: string, hlc: number, node: string, deleted: boolean) {
    this.stmt(
      `INSERT INTO main._ha_versions(tbl, key, hlc, node, deleted) VALUES (?, ?, ?, ?, ?)
       ON CONFLICT(tbl, key) DO UPDATE SET hlc = excluded.hlc, node = excluded.node,
         deleted = excluded.deleted`,
    ).run(tbl, key, BigInt(hlc), node, deleted ? 1n : 0n);
  }

  /** Whether (hlc, node) is newer than the stored version of the row. */
  private newer(tbl: string, key: string, hlc: number, node: string): boolean {
    const v = this.stmt("SELECT hlc, node FROM main._ha_versions WHERE tbl = ? AND key = ?")
      .get(tbl, key) as { hlc: bigint; node: string } | undefined;
    return !v || compareVersion(hlc, node, Number(v.hlc), v.node) > 0;
  }

  // -- apply -----------------------------------------------------------------------------------

  invoke(method: string, args: unknown): unknown {
    switch (method) {
      case "apply":
        return this.applyBatch(args as ApplyMessage[]);
      case "progress": {
        const r = this.stmt("SELECT seq FROM main._ha_progress WHERE subject = ?")
          .get(args as string) as { seq: bigint } | undefined;
        return r ? Number(r.seq) : 0;
      }
      case "skip":
        return this.skip(args as { subject: string; seq: number });
      case "outboxPending": {
        const a = args as { after: number; limit: number };
        const rows = this.stmt(
          `SELECT id, csid, data FROM ${this.outbox} WHERE id > ? ORDER BY id LIMIT ?`,
        ).all(BigInt(a.after), BigInt(a.limit)) as { id: bigint; csid: string; data: string }[];
        return rows.map((r): OutboxRow => ({ outboxId: Number(r.id), id: r.csid, data: r.data }));
      }
      case "outboxDelete":
        this.stmt(`DELETE FROM ${this.outbox} WHERE id <= ?`).run(BigInt(args as number));
        return null;
      default:
        throw new Error(`replication plugin: unknown method ${method}`);
    }
  }

  private skip(a: { subject: string; seq: number }): null {
    this.stmt(
      `INSERT INTO main._ha_progress(subject, seq) VALUES (?, ?)
       ON CONFLICT(subject) DO UPDATE SET seq = max(seq, excluded.seq)`,
    ).run(a.subject, BigInt(a.seq));
    return null;
  }

  private applyBatch(batch: ApplyMessage[]): ApplyResult {
    const result: ApplyResult = { through: 0, applied: 0, skipped: 0, error: null };
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
        this.db.exec("SAVEPOINT ha_apply");
        try {
          const cs = decodeChangeSet(m.data);
          const own = cs.node === this.o.node &&
            (!this.o.memory || cs.incarnation === this.o.incarnation);
          if (own) result.skipped++;
          else {
            if (this.applyChangeSet(cs)) ddl = true;
            result.applied++;
          }
          this.db.exec("RELEASE ha_apply");
        } catch (e) {
          this.db.exec("ROLLBACK TO ha_apply");
          this.db.exec("RELEASE ha_apply");
          result.error = { seq: m.seq, message: (e as Error).message };
          break;
        }
        done = m.seq;
        result.through = m.seq;
      }
      if (result.through > 0) {
        this.stmt(
          `INSERT INTO main._ha_progress(subject, seq) VALUES (?, ?)
           ON CONFLICT(subject) DO UPDATE SET seq = excluded.seq`,
        ).run(subject, BigInt(result.through));
      }
      this.stmt("DELETE FROM temp._ha_log").run();
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

  /** Applies one changeset; returns whether it contained DDL. */
  private applyChangeSet(cs: ChangeSet): boolean {
    let ddl = false;
    for (const c of cs.changes) {
      const hlc = typeof c.hlc === "number" ? c.hlc : cs.hlc;
      this.clock.observe(hlc);
      if (c.operation === "SQL") {
        ddl = true;
        this.applyDdl(c.command ?? "");
        continue;
      }
      if (INTERNAL.test(c.table)) continue;
      const node = cs.node;
      if (c.operation === "INSERT") {
        const k = this.keyOf(c, "new");
        if (!this.newer(c.table, k, hlc, node)) continue;
        this.upsert(c);
        this.setVersion(c.table, k, hlc, node, false);
      } else if (c.operation === "DELETE") {
        const k = this.keyOf(c, "old");
        if (!this.newer(c.table, k, hlc, node)) continue;
        this.deleteRow(c);
        this.setVersion(c.table, k, hlc, node, true);
      } else {
        const ok = this.keyOf(c, "old");
        const nk = this.keyOf(c, "new");
        if (ok !== nk && this.newer(c.table, ok, hlc, node)) {
          this.deleteRow(c);
          this.setVersion(c.table, ok, hlc, node, true);
        }
        if (!this.newer(c.table, nk, hlc, node)) continue;
        this.upsert(c);
        this.setVersion(c.table, nk, hlc, node, false);
      }
    }
    return ddl;
  }

  private applyDdl(sql: string): void {
    const meta = /^\s*ALTER\s+TABLE\s+(?:main\s*\.\s*)?("(?:[^"]|"")+"|`[^`]+`|\[[^\]]+\]|\S+)/i
      .exec(sql);
    if (meta) this.dropTriggersOf(unquote(meta[1]));
    if (/^\s*DROP\s+TABLE/i.test(sql)) this.installed.clear();
    try {
      this.db.exec(sql);
    } catch (e) {
      if (!alreadyApplied(sql, (e as Error).message)) throw e;
    }
  }

  /** WHERE clause identifying the row by the old (or new) image. */
  private where(c: Change, side: "old" | "new"): { sql: string; args: CdcValue[] } {
    const values = ((side === "old" ? c.old_values : c.new_values) ?? []).map(decodeValue);
    const rowid = side === "old" ? c.old_rowid : c.new_rowid;
    const mode = this.o.rowIdentify;
    const t = q(c.table);
    if (mode === "full") {
      const cond = c.columns.map((col) => `${q(col)} IS ?`).join(" AND ");
      if (this.tables.get(c.table)?.withoutRowid) return { sql: cond, args: values };
      return {
        sql: `rowid = (SELECT rowid FROM main.${t} WHERE ${cond} LIMIT 1)`,
        args: values,
      };
    }
    const byRowid = rowid !== null && rowid !== undefined &&
      (mode === "rowid" || c.pk_columns.length === 0);
    if (byRowid) return { sql: "rowid = ?", args: [decodeValue(rowid)] };
    return {
      sql: c.pk_columns.map((p) => `${q(p)} IS ?`).join(" AND "),
      args: c.pk_columns.map((p) => values[c.columns.indexOf(p)] ?? null),
    };
  }

  private deleteRow(c: Change): void {
    const w = this.where(c, "old");
    this.stmt(`DELETE FROM main.${q(c.table)} WHERE ${w.sql}`).run(...w.args);
  }

  /** Writes the new image: UPDATE the row identified by the new key, else INSERT it. */
  private upsert(c: Change): void {
    const values = (c.new_values ?? []).map(decodeValue);
    const t = q(c.table);
    const sets = c.columns.map((col) => `${q(col)} = ?`).join(", ");
    const useRowid = c.new_rowid !== null && c.new_rowid !== undefined &&
      (this.o.rowIdentify === "rowid" || c.pk_columns.length === 0);
    if (this.o.rowIdentify !== "full") {
      const w = this.where(c, "new");
      const r = this.stmt(`UPDATE main.${t} SET ${sets} WHERE ${w.sql}`).run(...values, ...w.args);
      if (Number(r.changes) > 0) return;
    } else if (c.operation === "UPDATE") {
      const w = this.where(c, "old");
      const r = this.stmt(`UPDATE main.${t} SET ${sets} WHERE ${w.sql}`).run(...values, ...w.args);
      if (Number(r.changes) > 0) return;
    }
    const cols = c.columns.map(q);
    const args: CdcValue[] = [...values];
    if (useRowid) {
      cols.push("rowid");
      args.push(decodeValue(c.new_rowid as WireValue));
    }
    const marks = args.map(() => "?").join(", ");
    if (this.o.rowIdentify === "full") {
      const cond = c.columns.map((col) => `${q(col)} IS ?`).join(" AND ");
      this.stmt(
        `INSERT INTO main.${t}(${cols.join(", ")}) SELECT ${marks}
         WHERE NOT EXISTS (SELECT 1 FROM main.${t} WHERE ${cond})`,
      ).run(...args, ...values);
      return;
    }
    this.stmt(`INSERT INTO main.${t}(${cols.join(", ")}) VALUES (${marks})`).run(...args);
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

function triggerNames(table: string): string[] {
  return ["i", "u", "d"].map((k) => `_ha_${k}_${table}`);
}

/** The three capture triggers of a table: name → SQL. */
function triggerSql(t: TableMeta): [string, string][] {
  const [ni, nu, nd] = triggerNames(t.name);
  const on = `main.${q(t.name)}`;
  const pack = (p: "NEW" | "OLD") => `_ha_pack(${t.columns.map((c) => `${p}.${q(c)}`).join(", ")})`;
  const rid = (p: "NEW" | "OLD") => t.withoutRowid ? "NULL" : `${p}.rowid`;
  const ins = "INSERT INTO temp._ha_log(tbl, op, old_rowid, new_rowid, old_v, new_v)";
  const tbl = lit(t.name);
  return [
    [
      ni,
      `CREATE TEMP TRIGGER ${q(ni)} AFTER INSERT ON ${on} WHEN _ha_on() BEGIN ${ins} ` +
      `VALUES (${tbl}, 'INSERT', NULL, ${rid("NEW")}, NULL, ${pack("NEW")}); END`,
    ],
    [
      nu,
      `CREATE TEMP TRIGGER ${q(nu)} AFTER UPDATE ON ${on} WHEN _ha_on() BEGIN ${ins} ` +
      `VALUES (${tbl}, 'UPDATE', ${rid("OLD")}, ${rid("NEW")}, ${pack("OLD")}, ${
        pack("NEW")
      }); END`,
    ],
    [
      nd,
      `CREATE TEMP TRIGGER ${q(nd)} AFTER DELETE ON ${on} WHEN _ha_on() BEGIN ${ins} ` +
      `VALUES (${tbl}, 'DELETE', ${rid("OLD")}, NULL, ${pack("OLD")}, NULL); END`,
    ],
  ];
}

const factory: PluginFactory = ({ db, databaseId, options }) =>
  new ReplicationPlugin(db, databaseId, options as ReplicationPluginOptions);
export default factory;
