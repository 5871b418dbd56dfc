/**
 * One client connection: start-up negotiation, authentication, then the
 * message loop that hands each frontend message to the simple or extended
 * query protocol, with error recovery, cancellation and an orderly shutdown.
 *
 * @example
 * ```ts
 * const conn = new Connection(tcpConn, opts);
 * await conn.run(); // returns when the client leaves
 * ```
 */
import type { Logger } from "../log/mod.ts";
import { AUTH_TIMEOUT_MS, authenticate, greet } from "./authenticate.ts";
import { MessageWriter } from "./backend.ts";
import { FOLLOWER_SETTINGS, Settings } from "./settings.ts";
import { Frontend } from "./codes.ts";
import type { Cancellable, ConnectionOptions, Wire } from "./contracts.ts";
import { PgError, toPgError } from "./errors.ts";
import { Executor, resolveDatabase } from "./executor.ts";
import { ExtendedProtocol } from "./extended.ts";
import { FrameReader, parseQuery, type StartupMessage } from "./messages.ts";
import { PreparedStore } from "./prepared.ts";
import { FLUSH_BYTES } from "./results.ts";
import { simpleQuery } from "./simple_query.ts";
import { admit, negotiate } from "./startup.ts";
import { formatTimeout, STATEMENT_TIMEOUT } from "./statement_timeout.ts";

/** The parts of an authenticated session. */
interface SessionParts {
  exec: Executor;
  prepared: PreparedStore;
  extended: ExtendedProtocol;
}

/** One client connection. */
export class Connection implements Wire, Cancellable {
  readonly reader: FrameReader;
  readonly out = new MessageWriter();
  private readonly log: Logger;
  private parts: SessionParts | null = null;
  private pid = 0;
  private closing = false;
  private idle = false;

  constructor(private readonly conn: Deno.Conn, private readonly opts: ConnectionOptions) {
    this.reader = new FrameReader(conn, opts.maxMessageBytes);
    let peer = "";
    try {
      const a = conn.remoteAddr as Deno.NetAddr;
      peer = `${a.hostname}:${a.port}`;
    } catch { /* closed already */ }
    this.log = opts.logger.child({ peer, tls: opts.tls });
  }

  /** Serves the connection until the client leaves or the server stops. */
  async run(): Promise<void> {
    let handedOff = false;
    const timer = setTimeout(() => {
      this.log.warn("pg start-up timed out");
      this.abort();
    }, this.opts.authTimeoutMs ?? AUTH_TIMEOUT_MS);
    try {
      const startup = await negotiate(this, this.opts);
      if (startup === "tls") {
        handedOff = true;
        clearTimeout(timer);
        this.opts.startTls!(this.conn, this.reader.drain());
        return;
      }
      if (!startup) return;
      admit(this.opts);
      const user = await authenticate(this, startup, this.opts);
      if (user === null) return;
      const parts = this.open(user, startup);
      clearTimeout(timer);
      await this.serve(parts);
    } catch (e) {
      const err = toPgError(e);
      if (err.code === "XX000") this.log.error("pg connection failed", { error: err.message });
      else if (err.code.startsWith("28")) {
        this.log.info("pg authentication failed", { code: err.code, error: err.message });
      } else this.log.debug("pg connection error", { code: err.code, error: err.message });
      if (!this.reader.closed) {
        this.out.error({ ...err.fields(), severity: "FATAL" });
        await this.flush();
      }
    } finally {
      clearTimeout(timer);
      if (!handedOff) await this.cleanup();
    }
  }

  /** Aborts the running query (CancelRequest). */
  cancel(): void {
    this.parts?.exec.cancel();
  }

  /** Stops the connection: aborts a running query, says goodbye when idle, closes. */
  async shutdown(): Promise<void> {
    if (this.closing) return;
    this.closing = true;
    this.parts?.exec.cancel();
    if (this.idle && this.parts?.exec.open) {
      this.out.error({
        severity: "FATAL",
        code: "57P01",
        message: "terminating connection due to administrator command",
      });
      await this.flush();
    }
    this.abort();
  }

  async flush(): Promise<void> {
    if (this.out.length === 0) return;
    const bytes = this.out.lend();
    try {
      for (let off = 0; off < bytes.length;) {
        off += await this.conn.write(off === 0 ? bytes : bytes.subarray(off));
      }
      this.out.release(bytes);
    } catch {
      this.abort();
    }
  }

  private abort(): void {
    this.reader.stop();
    try {
      this.conn.close();
    } catch { /* already closed */ }
  }

  private async cleanup(): Promise<void> {
    this.parts?.exec.cancel();
    if (this.pid) this.opts.registry.unregister(this.pid);
    await this.parts?.exec.close();
    this.abort();
    this.log.debug("pg connection closed");
  }

  /** Opens the engine session of an authenticated user and greets the client. */
  private open(user: string, startup: StartupMessage): SessionParts {
    const db = resolveDatabase(this.opts.engine, startup.params.database ?? user, user);
    const prepared = new PreparedStore();
    const settings = new Settings(user, startup.params, {
      ssl: this.opts.tls ? "on" : "off",
      ...(db.readOnly ? FOLLOWER_SETTINGS : {}),
      [STATEMENT_TIMEOUT]: formatTimeout(this.opts.engine.statementTimeoutMs ?? 0),
    });
    const exec = new Executor({
      wire: this,
      engine: this.opts.engine,
      db,
      user,
      settings,
      log: this.log,
      prepared,
      gone: () => this.reader.closed || this.closing,
      onQuery: this.opts.onQuery,
    });
    this.parts = { exec, prepared, extended: new ExtendedProtocol(this, exec, prepared) };
    const keys = this.opts.registry.register(this);
    this.pid = exec.pid = keys.pid;
    greet(this.out, settings, keys);
    this.log.debug("pg session started", { user, db: db.id, pid: keys.pid });
    return this.parts;
  }

  /** ReadyForQuery, flushed: the flush's own promise (no async frame of its own per query). */
  private readyForQuery(parts: SessionParts): Promise<void> {
    const status = parts.exec.tx.status();
    if (status === "I") parts.prepared.clearPortals();
    this.out.readyForQuery(status);
    return this.flush();
  }

  /** The message loop of an authenticated session. */
  private async serve(parts: SessionParts): Promise<void> {
    const { exec, prepared, extended } = parts;
    const ready = () => this.readyForQuery(parts);
    await ready();
    this.reader.onClose(() => exec.cancel());
    this.reader.watch();
    for (;;) {
      this.idle = true;
      const frame = this.reader.tryRead() ?? await this.reader.read();
      this.idle = false;
      if (frame === null || this.closing) return;
      const { type, body } = frame;
      if (type === Frontend.Terminate) return;
      if (extended.skipping && type !== Frontend.Sync) continue;
      try {
        switch (type) {
          case Frontend.Query: {
            const sql = parseQuery(body);
            prepared.forgetUnnamed();
            await simpleQuery({ wire: this, exec, readyForQuery: ready }, sql);
            break;
          }
          case Frontend.Parse:
            extended.parse(body);
            break;
          case Frontend.Bind:
            extended.bind(body);
            break;
          case Frontend.Describe: {
            const describing = extended.describe(body);
            if (describing) await describing;
            break;
          }
          case Frontend.Execute: {
            const executing = extended.execute(body);
            if (executing) await executing;
            break;
          }
          case Frontend.Close:
            extended.close(body);
            break;
          case Frontend.Sync: {
            const ending = extended.sync();
            if (ending) await ending;
            await ready();
            break;
          }
          case Frontend.Flush:
            await this.flush();
            break;
          case Frontend.FunctionCall:
            throw new PgError("0A000", "function calls are not supported");
          case Frontend.CopyData: // outside COPY: ignored like PostgreSQL
          case Frontend.CopyDone:
          case Frontend.CopyFail:
            break;
          default:
            throw new PgError("08P01", `invalid frontend message type ${type}`, { fatal: true });
        }
      } catch (e) {
        const err = toPgError(e);
        if (err.fatal) throw err;
        // Any error inside a transaction block aborts it (PostgreSQL semantics).
        if (type !== Frontend.Query && exec.tx.inBlock) exec.tx.fail();
        this.out.error(err.fields());
        if (type === Frontend.Query) {
          await ready();
        } else {
          // Errors go out at once (the client may wait after Flush); then skip to Sync.
          extended.skipping = true;
          await this.flush();
        }
      }
      if (this.out.length > FLUSH_BYTES) await this.flush();
    }
  }
}
