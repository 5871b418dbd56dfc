/**
 * The replication writer plugin: runs inside each database's writer worker (see
 * `engine/plugin.ts`), next to the only write connection, and wires its parts together:
 *
 * - capture (`capture_hooks.ts`, `capture_schema.ts`, `capture.ts`): TEMP triggers log the rows
 *   each statement changes directly, and the DDL it ran;
 * - `beforeCommit`: the changeset of the transaction (`changeset_builder.ts`), stamped with the
 *   hybrid logical clock and its row versions, written to the outbox (`outbox.ts`) in the same
 *   transaction and handed as `{id, data}` to the main thread;
 * - the commands of `plugin_api.ts`: batches from the stream applied in one transaction each
 *   (`apply_batch.ts`, `apply.ts`, `conflict_resolution.ts`), progress (`progress.ts`), outbox
 *   reads and deletes for the publisher, tombstone purges.
 *
 * @module
 */
import type { DatabaseSync, StatementSync } from "node:sqlite";
import type {
  CommandHandlers,
  PluginFactory,
  StatementInfo,
  WriterPlugin,
} from "../engine/plugin.ts";
import { Hlc } from "../cdc/mod.ts";
import { Logger } from "../log/mod.ts";
import { Applier } from "./apply.ts";
import { BatchApply } from "./apply_batch.ts";
import { loadVerifier } from "./validate.ts";
import { Capture } from "./capture_hooks.ts";
import { CaptureSchema } from "./capture_schema.ts";
import { ChangeSetBuilder } from "./changeset_builder.ts";
import { ConflictResolver } from "./conflict_resolution.ts";
import { ConflictLog } from "./conflicts.ts";
import { DeadLetters } from "./dead_letters.ts";
import { Outbox } from "./outbox.ts";
import { HeldInserts } from "./held_inserts.ts";
import { unpack } from "./packed.ts";
import type { CommitPayload, ReplicationCommands, ReplicationPluginOptions } from "./plugin_api.ts";
import { Progress } from "./progress.ts";
import { Versions } from "./versions.ts";

/** Prepared statements kept per writer connection (the cache is dropped when full). */
const STATEMENT_CACHE_SIZE = 512;

class ReplicationPlugin implements WriterPlugin {
  private readonly stmts = new Map<string, StatementSync>();
  private readonly schema: CaptureSchema;
  private readonly capture: Capture;
  private readonly builder: ChangeSetBuilder;
  private readonly outbox: Outbox;
  private readonly progress: Progress;
  private readonly versions: Versions;
  private readonly batches: BatchApply;

  constructor(
    private readonly db: DatabaseSync,
    databaseId: string,
    private readonly o: ReplicationPluginOptions,
  ) {
    const offset = o.clockOffsetMs ?? 0;
    const clock = new Hlc(offset === 0 ? Date.now : () => Date.now() + offset);
    const stmt = (sql: string) => this.stmt(sql);
    const exec = (sql: string) => db.exec(sql);
    this.schema = new CaptureSchema(db, o.rowIdentify, () => {
      this.stmts.clear();
      this.capture.forgetScopes();
      this.batches?.forgetColumns();
    });
    this.outbox = new Outbox(db, databaseId, o.outboxDir, stmt);
    this.progress = new Progress(db, stmt);
    clock.observe(Versions.init(exec, stmt));
    this.versions = new Versions(stmt, o.rowIdentify);
    ConflictLog.init(exec);
    const conflictLog = new ConflictLog(
      stmt,
      new Logger(o.logLevel ?? "info", { node: o.node, db: databaseId, component: "replication" }),
    );
    const tables = this.schema.tables;
    const applier = new Applier(stmt, this.versions, tables, o.rowIdentify, conflictLog);
    const held = applier.held = new HeldInserts(
      db,
      stmt,
      (c, hlc, node, touched) => applier.apply(c, hlc, node, touched),
    );
    this.schema.beforeAlter = (table) => held.dropViewsOf(table);
    this.capture = new Capture(db, stmt, this.schema, this.versions, applier, o.disableDdlSync);
    this.builder = new ChangeSetBuilder(databaseId, o, clock, tables, this.versions);
    this.batches = new BatchApply({
      db,
      stmt,
      options: o,
      clock,
      schema: this.schema,
      capture: this.capture,
      applier,
      held,
      resolver: new ConflictResolver(tables, this.versions, applier, conflictLog, o.node),
      deadLetters: new DeadLetters(exec, stmt),
      progress: this.progress,
    });
    this.schema.resync();
  }

  private stmt(sql: string): StatementSync {
    let s = this.stmts.get(sql);
    if (!s) {
      s = this.db.prepare(sql);
      s.setReadBigInts(true);
      if (this.stmts.size > STATEMENT_CACHE_SIZE) this.stmts.clear();
      this.stmts.set(sql, s);
    }
    return s;
  }

  readonly commands: CommandHandlers<ReplicationCommands> = {
    apply: (msgs) => this.batches.run(msgs),
    applyPacked: (packed) => this.batches.run(unpack(packed), undefined, packed.after),
    applyIntercepted: (batch) => this.batches.run(batch.msgs, batch),
    // null: nothing recorded yet (the replication policy decides where to start).
    progress: (subject) => this.progress.get(subject),
    skip: (a) => {
      this.progress.skip(a.subject, a.seq);
      return null;
    },
    outboxPending: (a) => this.outbox.pending(a.after, a.limit),
    outboxDelete: (upTo) => {
      this.outbox.deleteUpTo(upTo);
      return null;
    },
    setMaxPayload: (bytes) => {
      // Known once NATS is reached (a node may start while it is down).
      this.o.maxPayload = bytes;
      return null;
    },
    purgeTombstones: (cutoff) => this.versions.purgeTombstones(cutoff),
  };

  beforeStatement(info: StatementInfo): void {
    this.capture.beforeStatement(info);
  }

  afterStatement(info: StatementInfo): void {
    this.capture.afterStatement(info);
  }

  afterRollback(): void {
    this.capture.afterRollback();
  }

  beforeCommit(): CommitPayload | undefined {
    const cs = this.builder.build(this.capture.takeLog());
    if (!cs) return undefined;
    return { kind: "changeset", outboxId: this.outbox.append(cs.id, cs.data), ...cs };
  }

  close(): void {
    this.outbox.close();
  }
}

const factory: PluginFactory = async ({ db, databaseId, options }) => {
  const o = options as ReplicationPluginOptions;
  if (o.clusterKey) await loadVerifier();
  return new ReplicationPlugin(db, databaseId, o);
};
export default factory;
