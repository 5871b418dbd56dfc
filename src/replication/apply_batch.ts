/**
 * Applies batches of stream messages on the writer connection: one transaction per batch with
 * capture suppressed, a savepoint per changeset only when one fails (see {@link BatchApply.run}),
 * last-writer-wins by (hlc, node) per row (`apply.ts`), and the subject's progress recorded in the
 * same transaction. User triggers fire on the replica and make their side effects there. Invalid
 * messages are dead-lettered; a change that arrives before the DDL it needs is parked and applied
 * after later DDL.
 *
 * @module
 */
import type { DatabaseSync, StatementSync } from "node:sqlite";
import {
  alreadyApplied,
  type Change,
  type ChangeSet,
  decodeChangeSet,
  type Hlc,
} from "../cdc/mod.ts";
import { tokenize } from "../engine/lexer.ts";
import type { Applier } from "./apply.ts";
import type { Capture } from "./capture_hooks.ts";
import { type CaptureSchema, INTERNAL } from "./capture_schema.ts";
import type { ConflictResolver } from "./conflict_resolution.ts";
import type { DeadLetters } from "./dead_letters.ts";
import type { HeldInserts } from "./held_inserts.ts";
import {
  type ApplyMessage,
  type ApplyResult,
  DEFAULT_MAX_CLOCK_SKEW_MS,
  type InterceptedBatch,
  type ReplicationPluginOptions,
  type WireResolution,
} from "./plugin_api.ts";
import type { Progress } from "./progress.ts";
import { checkMessage, InvalidMessage, SchemaMisfit } from "./validate.ts";

/** What a {@link BatchApply} works with (the writer plugin's parts). */
export interface BatchApplyParts {
  db: DatabaseSync;
  stmt: (sql: string) => StatementSync;
  options: ReplicationPluginOptions;
  clock: Hlc;
  schema: CaptureSchema;
  capture: Capture;
  applier: Applier;
  held: HeldInserts;
  resolver: ConflictResolver;
  deadLetters: DeadLetters;
  progress: Progress;
}

/** Applies stream batches; one instance per writer plugin. */
export class BatchApply {
  /**
   * Per subject, own changesets of earlier runs to apply (`after < seq <= through`): this file
   * was restored from a snapshot that may not reflect them (`snapshot/sqlite_file.ts`).
   */
  private readonly replayOwn = new Map<string, { after: number; through: number }>();
  /**
   * Columns of the tables remote changes touched (null: no such table), kept across batches until
   * the schema may have changed: {@link forgetColumns} on every capture-schema resync (local or
   * applied DDL, a rollback that may have undone DDL), and on any failed change.
   */
  private readonly knownColumns = new Map<string, Set<string> | null>();
  /** Whether the current attempt ran a DDL change (to undo its schema state on a redo). */
  private ranDdl = false;

  constructor(private readonly p: BatchApplyParts) {
    this.readReplayOwn();
  }

  private readReplayOwn(): void {
    const t = this.p.db.prepare(
      "SELECT 1 FROM main.sqlite_schema WHERE type = 'table' AND name = '_ha_restored'",
    ).get();
    if (!t) return;
    const rows = this.p.db.prepare("SELECT subject, after, through FROM main._ha_restored")
      .all() as { subject: string; after: number; through: number }[];
    for (const r of rows) {
      this.replayOwn.set(r.subject, { after: Number(r.after), through: Number(r.through) });
    }
  }

  /** The schema may have changed: table columns are read again. */
  forgetColumns(): void {
    this.knownColumns.clear();
  }

  /** Whether a changeset is this node's own and already in the database (not applied). */
  private isOwn(cs: ChangeSet, subject: string, seq: number): boolean {
    const o = this.p.options;
    if (cs.node !== o.node) return false;
    if (o.memory) return cs.incarnation === o.incarnation;
    const r = this.replayOwn.get(subject);
    return !(r && seq > r.after && seq <= r.through && cs.incarnation !== o.incarnation);
  }

  /**
   * Applies `batch` (messages of one subject, in order) in one transaction. `opts` (an
   * interceptor's batch): conflict detection and resolutions, see {@link InterceptedBatch}.
   * `after`: only if the subject's progress reached it (the batch before was sent without
   * waiting for its answer), else nothing is done and the result is `stale`.
   */
  run(batch: ApplyMessage[], opts?: InterceptedBatch, after?: number): ApplyResult {
    // The progress read once (the writer is this thread's: nothing changes it before BEGIN).
    const progress = batch.length > 0 ? this.p.progress.get(batch[0].subject) ?? 0 : 0;
    if (after !== undefined && batch.length > 0 && progress < after) {
      return { through: 0, applied: 0, skipped: 0, error: null, stale: true };
    }
    // Optimistic first: no savepoint per changeset (they cost as much as decoding one). If one
    // fails, the whole attempt is rolled back and the batch redone with a savepoint each, so
    // the failing changeset is dead-lettered, parked or reported alone, exactly as before.
    // Interceptor batches (conflict detection, resolutions) always take the savepoint path.
    if (!opts) {
      const r = this.attempt(batch, undefined, false, progress);
      if (r) return r;
    }
    return this.attempt(batch, opts, true)!;
  }

  /**
   * One attempt at {@link run}; with `savepoints` false, null when a changeset failed (nothing
   * of the batch was kept).
   */
  private attempt(
    batch: ApplyMessage[],
    opts: InterceptedBatch | undefined,
    savepoints: boolean,
    progress?: number,
  ): ApplyResult | null {
    const { db, options: o, capture, schema } = this.p;
    // `deadLetters` only when there are some: the answer is cloned to the main thread per batch.
    const result: ApplyResult = { through: 0, applied: 0, skipped: 0, error: null };
    if (opts) result.appliedSeqs = [];
    this.ranDdl = false;
    const resolutions = new Map(opts?.resolutions ?? []);
    if (batch.length === 0) return result;
    const subject = batch[0].subject;
    let done = progress ?? this.p.progress.get(subject) ?? 0;
    let ddl = false;
    const remote: [string, number][] = [];
    const rules = {
      clusterKey: o.clusterKey ?? null,
      maxClockSkewMs: o.maxClockSkewMs ?? DEFAULT_MAX_CLOCK_SKEW_MS,
    };
    const held = this.p.held;
    held.reset(false);
    capture.set(false);
    // Prepared once (the statement cache), not parsed and authorized per batch like exec().
    this.p.stmt("BEGIN IMMEDIATE").run();
    // Row INSERTs of rows with no version are held and written several to a statement
    // (`held_inserts.ts`), only here: a failing changeset makes this attempt redo the batch.
    held.enabled = !savepoints && !opts;
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
        // Prepared once (the statement cache), not parsed per changeset like exec().
        if (savepoints) this.p.stmt("SAVEPOINT ha_apply").run();
        try {
          const cs = checkMessage(m, rules);
          if (this.isOwn(cs, subject, m.seq)) result.skipped++;
          else {
            const resolved = opts?.resolvedSeq === m.seq;
            if (opts?.detect && !resolved) {
              const list = this.p.resolver.detect(cs);
              if (list.length > 0) {
                this.p.stmt("RELEASE ha_apply").run();
                result.conflicts = { seq: m.seq, list };
                break;
              }
            }
            if (this.applyChangeSet(cs, resolved ? resolutions : undefined)) ddl = true;
            result.applied++;
            if (cs.node !== o.node) remote.push([cs.node, cs.hlc]);
            result.appliedSeqs?.push(m.seq);
          }
          if (savepoints) this.p.stmt("RELEASE ha_apply").run();
        } catch (e) {
          if (!savepoints) throw REDO;
          db.exec("ROLLBACK TO ha_apply");
          db.exec("RELEASE ha_apply");
          ddl = true; // its DDL, if any, was rolled back: read the schema again
          if (!(e instanceof InvalidMessage)) {
            result.error = { seq: m.seq, message: (e as Error).message };
            break;
          }
          this.knownColumns.clear();
          const park = e instanceof SchemaMisfit;
          const reason = park ? `parked until its schema arrives: ${e.message}` : e.message;
          this.p.deadLetters.add({ seq: m.seq, subject, reason, payload: m.data }, park);
          (result.deadLetters ??= []).push({ seq: m.seq, reason });
        }
        done = m.seq;
        result.through = m.seq;
      }
      if (held.enabled) {
        // What is still held belongs to this optimistic attempt: a failure redoes the batch.
        try {
          held.flush();
        } catch {
          throw REDO;
        }
        held.enabled = false;
      }
      if (ddl) result.applied += this.applyParked(subject);
      if (result.through > 0) this.p.progress.set(subject, result.through);
      capture.endTransaction();
      this.p.stmt("COMMIT").run();
      this.p.progress.committed();
      const now = result.committedAt = Date.now();
      result.lags = remote.map(([node, hlc]) => [node, Math.max(0, now * 1000 - hlc) / 1e6]);
    } catch (e) {
      this.knownColumns.clear();
      this.p.progress.rolledBack();
      held.enabled = false;
      held.reset(true);
      if (db.isTransaction) db.exec("ROLLBACK");
      if (e === REDO) {
        // DDL the attempt ran (and the trigger state it changed) was rolled back with it.
        if (this.ranDdl) schema.reinstall();
        return null;
      }
      schema.reinstall();
      throw e;
    } finally {
      held.enabled = false;
      capture.set(true);
    }
    if (ddl) schema.resync();
    return result;
  }

  /**
   * Applies the parked changesets of `subject` whose schema now exists (inside the batch's
   * transaction, after its DDL); returns how many applied. Their signature and shape were checked
   * when they were parked.
   */
  private applyParked(subject: string): number {
    const { db, deadLetters } = this.p;
    let applied = 0;
    for (const p of deadLetters.parked(subject)) {
      this.knownColumns.clear();
      db.exec("SAVEPOINT ha_parked");
      try {
        const cs = decodeChangeSet(p.payload);
        if (!this.isOwn(cs, subject, p.seq)) this.applyChangeSet(cs);
        deadLetters.remove(p.id);
        db.exec("RELEASE ha_parked");
        applied++;
      } catch {
        // Still does not fit (or fails): stays parked until the next DDL.
        db.exec("ROLLBACK TO ha_parked");
        db.exec("RELEASE ha_parked");
      }
    }
    this.knownColumns.clear();
    return applied;
  }

  /** Applies one changeset; returns whether it contained DDL. */
  private applyChangeSet(cs: ChangeSet, resolutions?: Map<number, WireResolution>): boolean {
    let ddl = false;
    const touched = new Set<string>();
    /**
     * Rows an interceptor kept (`local`) or merged at their first change in this changeset: its
     * later changes of them are not applied (the resolution saw the changeset's net effect on
     * the row, see `ConflictResolver.detect`). By where their next change would find them.
     */
    const decided = new Set<string>();
    for (let i = 0; i < cs.changes.length; i++) {
      const c = cs.changes[i];
      const hlc = typeof c.hlc === "number" ? c.hlc : cs.hlc;
      this.p.clock.observe(hlc);
      if (c.operation === "SQL") {
        this.p.held.flush();
        ddl = this.ranDdl = true;
        this.applyDdl(c.command ?? "");
        // Later changes of this changeset may use what the DDL created (a WITHOUT ROWID table).
        this.p.schema.reloadTables();
        continue;
      }
      if (INTERNAL.test(c.table)) continue;
      this.checkSchema(c, i);
      const r = resolutions?.get(i);
      if (decided.size > 0 || (r !== undefined && r !== "remote")) {
        const row = this.p.resolver.rowOf(c);
        if (decided.delete(row.at)) {
          decided.add(row.next);
          continue;
        }
        if (r !== undefined && r !== "remote") decided.add(row.next);
      }
      if (r !== undefined) {
        // A kept row's record shows what the changeset would have made of it.
        const values = r === "local" ? this.p.resolver.netValues(cs, i) : undefined;
        this.p.resolver.apply(c, r, hlc, cs.node, touched, values);
      } else this.p.applier.apply(c, hlc, cs.node, touched);
    }
    return ddl;
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
      const rows = this.p.stmt("SELECT name FROM main.pragma_table_xinfo(?)").all(c.table) as {
        name: string;
      }[];
      cols = rows.length === 0 ? null : new Set(rows.map((r) => r.name));
      this.knownColumns.set(c.table, cols);
    }
    if (cols !== null && hasAll(cols, c.columns)) return;
    const missing = cols === null
      ? `no table ${JSON.stringify(c.table)}`
      : c.columns.filter((x) => !cols.has(x)).map((x) => `no column ${JSON.stringify(x)}`)
        .join(", ") || null;
    if (missing === null) return;
    const why = `change ${i}: ${missing} in table ${JSON.stringify(c.table)}`;
    if (this.p.options.disableDdlSync) throw new Error(why);
    throw new SchemaMisfit(why);
  }

  private applyDdl(sql: string): void {
    this.knownColumns.clear();
    const meta = /^\s*ALTER\s+TABLE\s+(?:main\s*\.\s*)?("(?:[^"]|"")+"|`[^`]+`|\[[^\]]+\]|\S+)/i
      .exec(sql);
    if (meta) this.p.schema.dropTriggersOf(unquote(meta[1]));
    if (/^\s*DROP\s+TABLE/i.test(sql)) this.p.schema.forgetInstalled();
    try {
      // prepare() compiles the first statement only: nothing after it can run, whatever the
      // validation's splitter thought of the text.
      const stmt = this.p.db.prepare(sql);
      const at = sql.indexOf(stmt.sourceSQL);
      if (at < 0 || tokenize(sql.slice(at + stmt.sourceSQL.length)).length > 0) {
        throw new InvalidMessage(`DDL change must be one statement: ${JSON.stringify(sql)}`);
      }
      stmt.run();
    } catch (e) {
      if (e instanceof InvalidMessage || !alreadyApplied(sql, (e as Error).message)) throw e;
    }
  }
}

/** Thrown out of an optimistic attempt when a changeset failed: redo with savepoints. */
const REDO = new Error("redo the batch with a savepoint per changeset");

/** Whether every name of `names` is in `cols` (no allocation: checked per applied change). */
function hasAll(cols: Set<string>, names: string[]): boolean {
  for (let i = 0; i < names.length; i++) if (!cols.has(names[i])) return false;
  return true;
}

function unquote(id: string): string {
  if (id.startsWith('"')) return id.slice(1, -1).replaceAll('""', '"');
  if (id.startsWith("`") || id.startsWith("[")) return id.slice(1, -1);
  return id;
}
