/**
 * One database on the main thread: a writer worker (the one write connection,
 * with writer plugins) and a small pool of reader workers. Reads never wait
 * for a long write on file databases (WAL); writes are serialised by a mutex
 * so a session transaction (BEGIN … COMMIT) holds the writer exclusively.
 */
import type { SqlPolicy } from "./sql_policy.ts";
import { setImmediate } from "node:timers";
import { HaError } from "../errors/mod.ts";
import type { Logger } from "../log/mod.ts";
import type { StatementKind } from "./connection.ts";
import type { DatabaseSource } from "./dsn.ts";
import type { CommandCall, PluginClient, PluginCommands, PluginSpec } from "./plugin.ts";
import type {
  CheckpointReply,
  DescribeReply,
  ExecReply,
  GroupReply,
  TxExecReply,
} from "./protocol.ts";
import { Checkpointer, offloadable } from "./checkpointer.ts";
import { countParameters, leadingCommand, transactionControl } from "./split.ts";
import { readOnlyRefusal } from "./read_only.ts";
import { Mutex, type Semaphore } from "./sync.ts";
import type { ColumnInfo, ExecuteOptions, Session, Statement, StatementResult } from "./types.ts";
import { WorkerClient } from "./worker_client.ts";
import type { OpenSpec } from "./connection.ts";
import { InterruptLib, stoppedError } from "./native/interrupt.ts";
import { createMemoryDir, removeMemoryDir } from "./memory_dir.ts";
import { InlineReader } from "./inline_reader.ts";
import { ReaderPool } from "./reader_pool.ts";

/** Called with the plugin payloads of every committed write transaction. */
export type CommitListener = (payloads: unknown[]) => Promise<void> | void;

/** What a statement looks like before it runs (PostgreSQL Describe). */
export interface Description {
  columns: ColumnInfo[];
  paramCount: number;
  command: string;
  kind: StatementKind;
}

/** Options to open a {@link Database}. */
export interface DatabaseOptions {
  source: DatabaseSource;
  /** Bounds concurrent statements across the node (`--concurrent-queries`). */
  limiter: Semaphore;
  /** Maximum reader workers (spawned on demand). */
  readers: number;
  plugins: PluginSpec[];
  extensions: string[];
  /** Statements may change `_ha_*` tables (see `EngineOptions`). */
  allowInternalWrites?: boolean;
  /** What client statements may do (ATTACH, PRAGMA...); absent = the defaults. */
  policy?: SqlPolicy;
  /**
   * A read-only follower (`--read-only`): every client statement that would write is refused,
   * also inside a session transaction; plugin calls (`invoke`, replicated apply) still write.
   */
  readOnly?: boolean;
  /** Path of `ha_interrupt.so`: statements can be timed out and cancelled; null = they cannot. */
  interrupt?: string | null;
  /** `--statement-timeout` in ms for client statements (0 = none). */
  statementTimeoutMs?: number;
  logger: Logger;
}

const KIND_CACHE_SIZE = 1024;
/** Most write requests one group commit takes (see `writeGroup` in worker.ts). */
const MAX_GROUP = 64;

/** A write request waiting for the writer. */
interface QueuedWrite {
  stmts: Statement[];
  /** Its statement timeout (0 = none). */
  timeoutMs: number;
  signal?: AbortSignal;
  resolve: (r: StatementResult[]) => void;
  reject: (e: unknown) => void;
}

/** A database: route statements to readers or the writer, sessions, backup. */
export class Database {
  readonly id: string;
  readonly source: DatabaseSource;
  private readonly writer: WorkerClient;
  private readonly readers: ReaderPool;
  private readonly writeLock = new Mutex();
  private readonly kinds = new Map<string, StatementKind>();
  private readonly listeners: CommitListener[] = [];
  private readonly spec: OpenSpec;
  private readonly native: InterruptLib | null;
  /**
   * Reads run on the main thread first, short statements of unknown kind too (only with the
   * extension: they must stop); see inline_reader.ts.
   */
  private readonly inline: InlineReader | null;
  /** Checkpoints the WAL off the writer (file databases in WAL mode), else null. */
  private readonly checkpointer: Checkpointer | null = null;
  private readonly writeQueue: QueuedWrite[] = [];
  private draining = false;
  /** Calls of {@link execute} in progress (queued, running, or awaiting their commit listeners). */
  private active = 0;
  private closed = false;
  /** Set at shutdown: client statements are refused (ha's own work goes on until close). */
  private refusing = false;

  /** @param memDir for a memory database: the RAM-backed directory holding its file. */
  private constructor(
    private readonly opts: DatabaseOptions,
    private readonly memDir: string | null,
  ) {
    this.id = opts.source.id;
    this.source = opts.source;
    const s = opts.source;
    this.spec = {
      path: memDir ? `${memDir}/${s.id}` : s.path,
      memory: s.memory,
      uriParams: s.uriParams,
      pragmas: s.pragmas,
      readOnly: false,
      extensions: opts.extensions,
      allowInternalWrites: opts.allowInternalWrites ?? false,
      policy: opts.policy,
      ...(opts.interrupt ? { interrupt: opts.interrupt } : {}),
    };
    this.native = opts.interrupt ? InterruptLib.open(opts.interrupt) : null;
    this.writer = new WorkerClient(`writer:${this.id}`, {
      native: this.native,
      // Whatever the writer answers may have committed: later reads must see it.
      onReply: () => this.inline?.endSnapshot(),
    });
    this.readers = new ReaderPool(this.id, this.spec, this.native, opts.readers);
    this.inline = this.native
      ? new InlineReader({ ...this.spec, readOnly: true }, this.native)
      : null;
    if (offloadable(this.spec)) {
      const onWriter = () =>
        this.withWriter((w) => w.request<CheckpointReply>({ t: "checkpoint" }), false);
      this.checkpointer = new Checkpointer(this.id, this.spec, onWriter, opts.logger);
    }
  }

  /** Opens the writer (creating or loading the database). */
  static async open(opts: DatabaseOptions): Promise<Database> {
    const db = new Database(opts, opts.source.memory ? createMemoryDir() : null);
    const loadFrom = opts.source.memory ? opts.source.path : undefined;
    try {
      // With a checkpointer, SQLite's automatic checkpoint (inside a COMMIT) is off.
      const pragmas: [string, string][] = db.checkpointer
        ? [...db.spec.pragmas, ["wal_autocheckpoint", "0"]]
        : db.spec.pragmas;
      await db.writer.open({
        t: "open",
        databaseId: db.id,
        spec: { ...db.spec, pragmas, loadFrom },
        plugins: opts.plugins,
      });
    } catch (e) {
      db.writer.terminate();
      if (db.memDir) removeMemoryDir(db.memDir);
      throw e;
    }
    return db;
  }

  /** Registers a listener awaited after every committed write that produced payloads. */
  onCommit(listener: CommitListener): void {
    this.listeners.push(listener);
  }

  /**
   * Executes statements: one statement autocommits; several run in ONE
   * transaction (all or nothing). Transaction-control statements are refused.
   * Results: one per statement (for a multi-statement `sql`, its last one's).
   */
  async execute(stmts: Statement[], opts: ExecuteOptions = {}): Promise<StatementResult[]> {
    if (stmts.length === 0) throw new HaError("bad_request", "no statements to execute");
    this.active++;
    let release: (() => void) | undefined;
    try {
      release = this.opts.limiter.tryAcquire() ?? await this.opts.limiter.acquire();
      this.checkAccepting();
      let timeoutMs = this.timeoutOf(opts);
      if (opts.spentMs && timeoutMs > 0) timeoutMs = Math.max(1, timeoutMs - opts.spentMs);
      const route = this.routeOf(stmts);
      let r: ExecReply | null = null;
      if (route !== "write" && this.inline?.accepts(stmts, route === "read")) {
        if (opts.signal?.aborted) throw cancelled();
        r = this.inline.run(stmts, timeoutMs, route === "read");
        // Stopped by the main thread's budget: a worker runs it again in the time left.
        if (r === null && timeoutMs > 0) {
          timeoutMs = Math.max(1, timeoutMs - Math.ceil(performance.now() - this.inline.started));
        }
      }
      if (r === null && (route === "read" || route === "unknown")) {
        r = await this.onReader<ExecReply>({ t: "exec", stmts, timeoutMs }, opts.signal)
          .catch((e) => Promise.reject(timedOutAfter(e, this.timeoutOf(opts))));
      }
      if (r !== null) {
        this.remember(r.kinds);
        if (!r.needsWriter) return r.results;
      }
      if (this.opts.readOnly) {
        const writing = stmts.find((s) => this.kinds.get(s.sql) !== "read") ?? stmts[0];
        throw readOnlyRefusal(leadingCommand(writing.sql));
      }
      if (opts.readOnly) throw readOnlyError();
      return await this.write(stmts, timeoutMs, opts.signal);
    } catch (e) {
      this.noteStopped(e);
      throw e;
    } finally {
      release?.();
      this.active--;
    }
  }

  /**
   * {@link execute} of one known read, when it completes on the main thread now: its result,
   * with no promise. Otherwise a number: the milliseconds it ran here before the budget stopped
   * it (0: it did not run), for `execute` (with them as `spentMs`) to go on.
   */
  executeNow(stmt: Statement, opts: ExecuteOptions = {}): StatementResult | number {
    const stmts = [stmt];
    if (this.inline === null || this.routeOf(stmts) !== "read") return 0;
    if (!this.inline.accepts(stmts, true)) return 0;
    const release = this.opts.limiter.tryAcquire();
    if (release === null) return 0;
    try {
      this.checkAccepting();
      const r = this.inline.run(stmts, this.timeoutOf(opts), true);
      if (r === null) return Math.ceil(performance.now() - this.inline.started);
      this.remember(r.kinds);
      return r.needsWriter ? 0 : r.results[0];
    } catch (e) {
      this.noteStopped(e);
      throw e;
    } finally {
      release();
    }
  }

  /** Prepares `sql` without running it: result columns, parameter count, kind. */
  async describe(sql: string): Promise<Description> {
    this.checkAccepting();
    const r = await this.onReader<DescribeReply>({ t: "describe", sql });
    this.kinds.set(sql, r.kind);
    return { ...r, paramCount: countParameters(sql) };
  }

  /** A stateful session (BEGIN … COMMIT allowed). Close it to release the writer. */
  session(): Session {
    return new DatabaseSession(this);
  }

  /**
   * The typed client of writer plugin `name` (its `PluginSpec.name`); `C` is the command map
   * the plugin's package declares.
   *
   * @example
   * ```ts
   * const rep = db.plugin<ReplicationCommands>("replication");
   * await rep.locked(async (call) => call("apply", await batchAfter(await call("progress", s))));
   * ```
   */
  plugin<C extends PluginCommands>(name: string): PluginClient<C> {
    if (!this.opts.plugins.some((p) => p.name === name)) {
      throw new HaError("internal", `database ${this.id} has no writer plugin ${name}`);
    }
    const send = (w: WorkerClient, transfer?: ArrayBuffer[]): CommandCall<C> => (method, args) =>
      w.request<C[typeof method]["result"]>(
        { t: "command", plugin: name, method, args },
        undefined,
        transfer,
      );
    return {
      call: (method, args) => this.withWriter((w) => send(w)(method, args)),
      locked: (f) => this.withWriter((w) => f(send(w))),
      sendNext: (method, args, transfer) =>
        this.sendToWriter((w) => {
          const a = args();
          return send(w, transfer?.(a))(method, a);
        }),
    };
  }

  /** Writes a consistent copy of the database to `path` (which must not exist). */
  async backupTo(path: string): Promise<void> {
    this.checkOpen();
    await this.onReader<null>({ t: "backup", path });
  }

  /**
   * Shutdown: refuses client statements from now on and stops those running (their requests
   * fail with `unavailable`); replication and backups go on until {@link close}.
   */
  stopClients(): void {
    this.refusing = true;
    this.writer.interrupt("shutdown");
    for (const r of this.readers.all) r.interrupt("shutdown");
  }

  /** Stops accepting work, waits for the writer, closes every connection. Idempotent. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.checkpointer?.close();
    const release = await this.writeLock.lock();
    try {
      await this.readers.close();
      await this.writer.request({ t: "close" }).catch(() => {});
    } finally {
      this.inline?.close();
      this.writer.terminate(new HaError("unavailable", `database ${this.id} is closed`));
      if (this.memDir) removeMemoryDir(this.memDir);
      release();
    }
  }

  // -- internals used by sessions ------------------------------------------------------------

  /** @internal Runs `f` with the writer held; `write`: it may write (a checkpoint follows). */
  async withWriter<T>(f: (w: WorkerClient) => Promise<T>, write = true): Promise<T> {
    const release = await this.writeLock.lock();
    try {
      this.checkOpen();
      return await f(this.writer);
    } finally {
      if (write) this.checkpointer?.touch();
      release();
    }
  }

  /**
   * Posts one request (`send`: exactly one, synchronously) with the writer held, freed once sent:
   * the writer runs requests in order, so the next (group commit, apply) waits there, not here.
   */
  private async sendToWriter<T>(send: (w: WorkerClient) => Promise<T>): Promise<T> {
    const release = await this.writeLock.lock();
    try {
      this.checkOpen();
      return send(this.writer);
    } finally {
      this.checkpointer?.touch();
      release();
    }
  }

  /** @internal Takes the writer for a session transaction. */
  async lockWriter(): Promise<() => void> {
    const release = await this.writeLock.lock();
    return () => {
      this.checkpointer?.touch();
      release();
    };
  }

  /** @internal */
  get writerClient(): WorkerClient {
    return this.writer;
  }

  /** @internal */
  get limiter(): Semaphore {
    return this.opts.limiter;
  }

  /** True for a read-only follower's database (client writes refused). */
  get readOnly(): boolean {
    return this.opts.readOnly ?? false;
  }

  /**
   * @internal The statement timeout of a client call: `opts.timeoutMs` may lower the node's
   * `--statement-timeout` (0 or absent = the node's); with no node limit it applies as given.
   */
  timeoutOf(opts: ExecuteOptions): number {
    const node = this.opts.statementTimeoutMs ?? 0;
    const own = opts.timeoutMs ?? 0;
    if (node === 0) return own;
    return own === 0 ? node : Math.min(own, node);
  }

  /** @internal Logs a statement the extension stopped (timeout, cancel, shutdown). */
  noteStopped(e: unknown): void {
    const stopped = e instanceof HaError ? e.details.stopped : undefined;
    if (stopped !== undefined) this.opts.logger.info("statement stopped", { reason: stopped });
  }

  /** @internal Throws when client statements are refused (closed, or shutting down). */
  checkAccepting(): void {
    this.checkOpen();
    if (this.refusing) {
      throw new HaError("unavailable", `database ${this.id}: the node is shutting down`);
    }
  }

  /** @internal Awaits commit listeners for a committed transaction's payloads. */
  async committed(payloads: unknown[]): Promise<void> {
    if (payloads.length === 0) return;
    for (const l of this.listeners) await l(payloads);
  }

  /**
   * Queues a write. Requests that arrive while the writer is busy go to it together as one
   * group (group commit: one transaction, one COMMIT and one changeset for the DML among them);
   * each resolves once its own transaction's commit listeners are done (synchronous
   * replication: JetStream stored the changeset), and fails alone. Each keeps its own statement
   * timeout, and aborting its `signal` stops only its statement.
   */
  private write(
    stmts: Statement[],
    timeoutMs: number,
    signal?: AbortSignal,
  ): Promise<StatementResult[]> {
    if (signal?.aborted) return Promise.reject(cancelled());
    return new Promise((resolve, reject) => {
      this.writeQueue.push({ stmts, timeoutMs, signal, resolve, reject });
      if (!this.draining) void this.drain();
    });
  }

  private async drain(): Promise<void> {
    this.draining = true;
    try {
      // No group in flight. When other statements are in progress (other clients are active),
      // the first group leaves once the I/O of this event-loop turn has run, so that requests
      // read in the same wake-up join it instead of forming the next group (fewer, larger
      // groups: docs/perf.md §9). A lone client does not wait.
      if (this.active > this.writeQueue.length) await new Promise<void>((r) => setImmediate(r));
      while (this.writeQueue.length > 0) {
        const queued = this.writeQueue.splice(0, MAX_GROUP);
        const batch = queued.filter((b) => {
          if (b.signal?.aborted) b.reject(cancelled()); // gone before it started
          return !b.signal?.aborted;
        });
        if (batch.length === 0) continue;
        let reply: GroupReply;
        try {
          reply = await this.sendToWriter((w) => {
            this.checkAccepting();
            return w.requestGroup<GroupReply>(batch);
          });
        } catch (e) {
          for (const b of batch) b.reject(e);
          continue;
        }
        // Listeners are called in commit order (the publisher keeps that order), not awaited
        // here: the next group commits while this one's changeset is being stored.
        const done = reply.commits.map((payloads) => this.committed(payloads));
        for (const d of done) d.catch(() => {}); // each waiting request gets the rejection
        for (const [i, item] of reply.items.entries()) {
          const b = batch[i];
          if (!item.ok) {
            b.reject(new HaError(item.error.code, item.error.message, item.error.details));
            continue;
          }
          this.remember(item.kinds);
          done[item.commit].then(() => b.resolve(item.results), b.reject);
        }
      }
    } finally {
      this.draining = false;
    }
  }

  private routeOf(stmts: Statement[]): "read" | "write" | "unknown" {
    let unknown = false;
    for (const s of stmts) {
      const k = this.kinds.get(s?.sql);
      if (k === undefined) unknown = true;
      else if (k !== "read") return "write";
    }
    return unknown ? "unknown" : "read";
  }

  private remember(kinds: Record<string, StatementKind>): void {
    for (const sql in kinds) {
      const k = kinds[sql];
      if (this.kinds.get(sql) === k) continue; // known already (every point select after its first)
      if (this.kinds.size >= KIND_CACHE_SIZE) this.kinds.delete(this.kinds.keys().next().value!);
      this.kinds.set(sql, k);
    }
  }

  private async onReader<T>(
    body: Parameters<WorkerClient["request"]>[0],
    signal?: AbortSignal,
  ): Promise<T> {
    for (;;) {
      if (signal?.aborted) throw cancelled();
      const reader = await this.readers.pick();
      try {
        return await reader.request<T>(body, signal);
      } catch (e) {
        // Without the interrupt extension a cancel kills the reader, and with it the other
        // reads queued there: reads have no side effects, so those run again on another reader.
        if (e instanceof HaError && e.code === "cancelled" && !signal?.aborted && !this.closed) {
          continue;
        }
        throw e;
      }
    }
  }

  private checkOpen(): void {
    if (this.closed) throw new HaError("unavailable", `database ${this.id} is closed`);
  }
}

function readOnlyError(): HaError {
  return new HaError("bad_request", "only read-only statements are allowed here");
}

/** A timeout of a re-run read names the statement's whole timeout, not the part left of it. */
function timedOutAfter(e: unknown, timeoutMs: number): unknown {
  const timedOut = e instanceof HaError && e.details.stopped === "timeout";
  return timedOut ? stoppedError(e, "timeout", timeoutMs) : e;
}

function cancelled(): HaError {
  return new HaError("cancelled", "canceling statement due to user request");
}

function syntheticResult(command: string): StatementResult {
  return { columns: [], rows: [], rowsAffected: 0, lastInsertId: 0n, command };
}

/**
 * A session: autocommit statements go through the database (readers or the writer); BEGIN takes
 * the writer, and every statement until COMMIT/ROLLBACK runs and is classified on it.
 */
class DatabaseSession implements Session {
  private release: (() => void) | null = null;
  private closing = false;

  constructor(private readonly db: Database) {}

  get inTransaction(): boolean {
    return this.release !== null;
  }

  async execute(stmt: Statement, opts: ExecuteOptions = {}): Promise<StatementResult> {
    if (this.closing) throw new HaError("unavailable", "session is closed");
    this.db.checkAccepting();
    if (!this.release) {
      switch (transactionControl(stmt.sql)) {
        case "begin":
          return await this.begin(stmt.sql);
        case "commit":
          // PostgreSQL answers with a warning only; so do we.
          return syntheticResult("COMMIT");
        case "rollback":
          return syntheticResult("ROLLBACK");
        case "savepoint":
          throw new HaError("bad_request", "SAVEPOINT can only be used in transaction blocks");
        default:
          return (await this.db.execute([stmt], opts))[0];
      }
    }
    const releasePermit = await this.db.limiter.acquire();
    let r: TxExecReply;
    try {
      r = await this.db.writerClient.request<TxExecReply>(
        { t: "txExec", stmt, readOnly: this.db.readOnly, timeoutMs: this.db.timeoutOf(opts) },
        opts.signal,
      );
    } catch (e) {
      this.db.noteStopped(e);
      // The writer may have ended the transaction itself (a failed COMMIT rolls back, and so
      // does SQLite when a write inside the transaction is interrupted).
      const open = e instanceof HaError && e.details.txOpen === true;
      if (!open) this.finish();
      throw e;
    } finally {
      releasePermit();
    }
    if (r.ended) {
      this.finish();
      await this.db.committed(r.payloads);
    }
    return r.result;
  }

  async describe(sql: string): Promise<Description> {
    if (!this.release) return await this.db.describe(sql);
    const r = await this.db.writerClient.request<DescribeReply>({ t: "txDescribe", sql });
    return { ...r, paramCount: countParameters(sql) };
  }

  async close(): Promise<void> {
    if (this.closing) return;
    this.closing = true;
    if (!this.release) return;
    try {
      await this.db.writerClient.request({ t: "txRollback" });
    } catch { /* the database may be closing */ }
    this.finish();
  }

  private async begin(sql: string): Promise<StatementResult> {
    const release = await this.db.lockWriter();
    try {
      const r = await this.db.writerClient.request<StatementResult>({ t: "txBegin", sql });
      this.release = release;
      return r;
    } catch (e) {
      release();
      throw e;
    }
  }

  private finish(): void {
    const r = this.release;
    this.release = null;
    r?.();
  }
}
