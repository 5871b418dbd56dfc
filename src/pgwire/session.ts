/**
 * One client connection's state machine: start-up negotiation (SSLRequest,
 * GSSENCRequest, CancelRequest, protocol version), authentication, then the
 * simple and extended query protocols over an engine session, with the
 * PostgreSQL transaction states (idle, in block, failed) and cancellation.
 *
 * @example
 * ```ts
 * const conn = new Connection(tcpConn, opts);
 * await conn.run(); // returns when the client leaves
 * ```
 */
import type {
  ColumnInfo,
  ExecuteOptions,
  Session,
  SqlValue,
  Statement,
  StatementResult,
} from "../engine/mod.ts";
import { countParameters, splitStatements } from "../engine/mod.ts";
import type { Logger } from "../log/mod.ts";
import {
  authFailed,
  type AuthMethod,
  Credentials,
  SCRAM_MECHANISM,
  ScramExchange,
} from "./auth.ts";
import {
  type CatalogContext,
  type Classified,
  classify,
  type LocalField,
  REPORTED,
  Settings,
} from "./catalog.ts";
import { abortedTransaction, PgError, toPgError } from "./errors.ts";
import {
  BodyReader,
  CANCEL_REQUEST,
  type FieldDescription,
  FrameReader,
  GSSENC_REQUEST,
  MessageWriter,
  parseBind,
  parseExecute,
  parseParse,
  parseQuery,
  parseStartup,
  parseTarget,
  SSL_REQUEST,
  type StartupMessage,
  utf8,
} from "./messages.ts";
import { type CatalogEnv, PgCatalog } from "./pg_catalog/mod.ts";
import { copyIn, copyOut } from "./copy_session.ts";
import { fillValuesDefaults } from "./insert_defaults.ts";
import { isBlank, shapeOf } from "./sql.ts";
import {
  columnOid,
  decodeParam,
  describedOid,
  encodeBinary,
  encodeText,
  OID,
  typeSize,
} from "./types.ts";

/** What a statement looks like before it runs (the engine's `Database.describe`). */
export interface PgDescription {
  columns: ColumnInfo[];
  paramCount: number;
  /** `read` statements may run early, when their portal is described. */
  kind?: string;
}

/** The part of an engine database the wire protocol uses. */
export interface PgDatabase {
  readonly id: string;
  execute(stmts: Statement[], opts?: ExecuteOptions): Promise<StatementResult[]>;
  describe(sql: string): Promise<PgDescription>;
  session(): Session;
}

/** The part of the engine the wire protocol uses (`Engine` satisfies it). */
export interface PgEngine {
  ids(): string[];
  get(id: string): PgDatabase;
  readonly defaultDb: PgDatabase;
}

/** Cancel keys of live connections, shared by a server's connections. */
export interface CancelRegistry {
  /** Allocates a process id and secret for `conn`. */
  register(conn: Connection): { pid: number; secret: number };
  unregister(pid: number): void;
  /** Cancels the running query of the connection with these keys, if any. */
  cancel(pid: number, secret: number): void;
}

/** Everything a connection needs from its server. */
export interface ConnectionOptions {
  engine: PgEngine;
  credentials: Credentials;
  authMethod: AuthMethod;
  logger: Logger;
  maxMessageBytes: number;
  registry: CancelRegistry;
  /** True when this connection is already encrypted. */
  tls: boolean;
  /** Hands a plain connection over to TLS after 'S' was sent; undefined = no TLS available. */
  startTls?: (conn: Deno.Conn, early: Uint8Array) => void;
  /** Start-up and authentication must finish within this time (ms). */
  authTimeoutMs?: number;
  /** Refuse start-up without TLS (`--pg-require-tls`). */
  requireTls?: boolean;
  /** Whether the server has more connections than it accepts (53300). */
  tooMany?: () => boolean;
}

/**
 * Largest message before authentication (SASL responses, passwords): a few hundred bytes are
 * plenty, and an unauthenticated client must not make the server buffer megabytes.
 */
export const MAX_AUTH_MESSAGE_BYTES = 1024;

/** A prepared statement (Parse). */
interface Prepared {
  sql: string;
  paramOids: number[];
  /** Parameters the statement takes: its placeholders, or more OIDs if the client sent them. */
  paramCount: number;
  classified: Classified;
  /** Set by Describe S: the types promised to the client. */
  fields?: Field[];
  description?: PgDescription;
}

/** A bound portal (Bind). */
interface Portal {
  stmt: Prepared;
  params: SqlValue[];
  resultFormats: number[];
  /** Result columns, once known (described or executed). */
  fields?: Field[];
  result?: Outcome;
  /** Rows sent so far. */
  cursor: number;
}

/** A result column with its type. */
interface Field {
  name: string;
  oid: number;
}

/** The result of running one statement. */
interface Outcome {
  /** Null: the statement returns no rows (no RowDescription). */
  fields: Field[] | null;
  rows: SqlValue[][];
  tag: string;
  empty?: boolean;
}

const FLUSH_BYTES = 256 * 1024;
const MAX_PREPARED = 10_000;
const ANALYSIS_CACHE = 256;

/** What Parse learns from SQL text (cached: drivers send the same text again and again). */
interface Analysis {
  sql: string;
  classified: Classified;
  placeholders: number;
}

/** Splits, checks and classifies the SQL of a Parse message. */
function analyse(text: string): Analysis {
  const parts = splitStatements(text).filter((s) => !isBlank(s));
  if (parts.length > 1) {
    throw new PgError("42601", "cannot insert multiple commands into a prepared statement");
  }
  const sql = parts[0] ?? "";
  const classified = classify(sql);
  const counted = classified.kind === "sql" || classified.kind === "catalog";
  return { sql, classified, placeholders: counted ? countParameters(sql) : 0 };
}

/** Maps an engine result to its command tag. */
export function commandTag(r: StatementResult): string {
  const cmd = r.command.toUpperCase();
  switch (cmd) {
    case "INSERT":
    case "REPLACE":
      return `INSERT 0 ${r.rowsAffected}`;
    case "UPDATE":
    case "DELETE":
      return `${cmd} ${r.rowsAffected}`;
    case "SELECT":
    case "VALUES":
    case "PRAGMA":
    case "EXPLAIN":
    case "WITH":
      return r.columns.length ? `SELECT ${r.rows.length}` : cmd;
    case "END":
      return "COMMIT";
    case "":
      return r.columns.length ? `SELECT ${r.rows.length}` : "OK";
    default:
      return cmd;
  }
}

/** One client connection. */
export class Connection {
  private readonly reader: FrameReader;
  private readonly out = new MessageWriter();
  private readonly log: Logger;
  private user = "";
  private db!: PgDatabase;
  private session: Session | null = null;
  private settings!: Settings;
  private pid = 0;
  private failed = false;
  private skipping = false;
  /** A pipeline's implicit transaction (BEGIN sent by us, ended at Sync) is open. */
  private implicitTx = false;
  private readonly statements = new Map<string, Prepared>();
  private readonly portals = new Map<string, Portal>();
  private readonly analyses = new Map<string, Analysis>();
  private running: AbortController | null = null;
  private readonly catalog = new PgCatalog();
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
    }, this.opts.authTimeoutMs ?? 60_000);
    try {
      const startup = await this.negotiate();
      if (startup === "tls") {
        handedOff = true;
        clearTimeout(timer);
        this.opts.startTls!(this.conn, this.reader.drain());
        return;
      }
      if (!startup) return;
      if (this.opts.tooMany?.()) {
        throw new PgError("53300", "sorry, too many clients already (--max-connections)", {
          fatal: true,
        });
      }
      if (this.opts.requireTls && !this.opts.tls) {
        throw new PgError(
          "28000",
          "this server requires TLS (--pg-require-tls): connect with sslmode=require",
          { fatal: true },
        );
      }
      if (!(await this.authenticate(startup))) return;
      clearTimeout(timer);
      await this.serve();
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
    this.running?.abort();
  }

  /** Stops the connection: aborts a running query, says goodbye when idle, closes. */
  async shutdown(): Promise<void> {
    if (this.closing) return;
    this.closing = true;
    this.running?.abort();
    if (this.idle && this.session) {
      this.out.error({
        severity: "FATAL",
        code: "57P01",
        message: "terminating connection due to administrator command",
      });
      await this.flush();
    }
    this.abort();
  }

  private abort(): void {
    this.reader.stop();
    try {
      this.conn.close();
    } catch { /* already closed */ }
  }

  private async cleanup(): Promise<void> {
    this.running?.abort();
    if (this.pid) this.opts.registry.unregister(this.pid);
    this.catalog.close();
    const s = this.session;
    this.session = null;
    if (s) {
      try {
        await s.close();
      } catch (e) {
        this.log.warn("pg session close failed", { error: e });
      }
    }
    this.abort();
    this.log.debug("pg connection closed");
  }

  private async flush(): Promise<void> {
    if (this.out.length === 0) return;
    const bytes = this.out.take();
    try {
      for (let off = 0; off < bytes.length;) off += await this.conn.write(bytes.subarray(off));
    } catch {
      this.abort();
    }
  }

  // ------------------------------------------------------------------ start-up

  /** Handles the untyped first messages; returns the StartupMessage, "tls", or null. */
  private async negotiate(): Promise<StartupMessage | "tls" | null> {
    for (;;) {
      const body = await this.reader.readStartup();
      if (body === null) return null;
      const code = new DataView(body.buffer, body.byteOffset, 4).getInt32(0);
      if (code === SSL_REQUEST && body.length === 4) {
        const canTls = !this.opts.tls && this.opts.startTls !== undefined;
        await this.writeByte(canTls ? "S" : "N");
        if (canTls) {
          if (this.reader.buffered > 0) {
            throw new PgError("08P01", "received unencrypted data after SSL request", {
              fatal: true,
            });
          }
          return "tls";
        }
        continue;
      }
      if (code === GSSENC_REQUEST && body.length === 4) {
        await this.writeByte("N");
        continue;
      }
      if (code === CANCEL_REQUEST && body.length === 12) {
        const dv = new DataView(body.buffer, body.byteOffset, 12);
        this.opts.registry.cancel(dv.getInt32(4), dv.getInt32(8));
        return null;
      }
      const startup = parseStartup(body);
      if (startup.major !== 3) {
        throw new PgError(
          "0A000",
          `unsupported frontend protocol ${startup.major}.${startup.minor}: server supports 3.0 to 3.0`,
          { fatal: true },
        );
      }
      const unsupported = Object.keys(startup.params).filter((k) => k.startsWith("_pq_."));
      if (startup.minor > 0 || unsupported.length) {
        this.out.negotiateProtocolVersion(0, unsupported);
      }
      return startup;
    }
  }

  private async writeByte(c: string): Promise<void> {
    this.out.text(c);
    await this.flush();
  }

  private async readPassword(): Promise<Uint8Array | null> {
    await this.flush();
    const f = await this.reader.read(MAX_AUTH_MESSAGE_BYTES);
    if (f === null) return null;
    if (f.type !== 0x70) {
      throw new PgError(
        "08P01",
        `expected password response, got message type ${f.type}`,
        { fatal: true },
      );
    }
    return f.body;
  }

  /** Runs the password exchange and opens the session; false if the client left. */
  private async authenticate(startup: StartupMessage): Promise<boolean> {
    const user = startup.params.user;
    if (!user) {
      throw new PgError("28000", "no PostgreSQL user name specified in startup packet", {
        fatal: true,
      });
    }
    const creds = this.opts.credentials;
    switch (this.opts.authMethod) {
      case "scram-sha-256": {
        this.out.authSasl([SCRAM_MECHANISM]);
        const first = await this.readPassword();
        if (!first) return false;
        const r = new BodyReader(first);
        const mechanism = r.cstring();
        if (mechanism !== SCRAM_MECHANISM) {
          throw new PgError(
            "28000",
            "client selected an invalid SASL authentication mechanism",
            { fatal: true },
          );
        }
        const len = r.int32();
        const data = utf8(len < 0 ? new Uint8Array() : r.bytes(len));
        const exchange = new ScramExchange(await creds.scram());
        this.out.authSaslContinue(exchange.clientFirst(data));
        const final = await this.readPassword();
        if (!final) return false;
        const serverFinal = await exchange.clientFinal(utf8(final));
        if (!exchange.verified || user !== creds.user) throw authFailed(user);
        this.out.authSaslFinal(serverFinal);
        break;
      }
      case "md5": {
        const salt = crypto.getRandomValues(new Uint8Array(4));
        this.out.authMd5(salt);
        const body = await this.readPassword();
        if (!body) return false;
        if (!creds.checkMd5(user, new BodyReader(body).cstring(), salt)) throw authFailed(user);
        break;
      }
      case "password": {
        this.out.authCleartext();
        const body = await this.readPassword();
        if (!body) return false;
        if (!creds.checkCleartext(user, new BodyReader(body).cstring())) throw authFailed(user);
        break;
      }
    }
    this.user = user;
    this.db = this.resolveDatabase(startup.params.database ?? user);
    this.session = this.db.session();
    this.settings = new Settings(user, startup.params, { ssl: this.opts.tls ? "on" : "off" });
    const keys = this.opts.registry.register(this);
    this.pid = keys.pid;
    this.out.authOk();
    for (const name of REPORTED) this.out.parameterStatus(name, this.settings.get(name) ?? "");
    this.out.backendKeyData(keys.pid, keys.secret);
    this.log.debug("pg session started", { user, db: this.db.id, pid: keys.pid });
    return true;
  }

  private resolveDatabase(name: string): PgDatabase {
    const engine = this.opts.engine;
    try {
      return engine.get(name);
    } catch {
      if (["", "ha", "postgres", "template1", this.user].includes(name)) return engine.defaultDb;
      throw new PgError("3D000", `database "${name}" does not exist`, { fatal: true });
    }
  }

  // ------------------------------------------------------------------ serving

  private status(): "I" | "T" | "E" {
    if (this.failed) return "E";
    return this.session?.inTransaction ? "T" : "I";
  }

  private async readyForQuery(): Promise<void> {
    if (this.status() === "I") this.portals.clear();
    this.out.readyForQuery(this.status());
    await this.flush();
  }

  private async serve(): Promise<void> {
    await this.readyForQuery();
    this.reader.onClose(() => this.running?.abort());
    this.reader.watch();
    for (;;) {
      this.idle = true;
      const frame = await this.reader.read();
      this.idle = false;
      if (frame === null || this.closing) return;
      const { type, body } = frame;
      if (type === 0x58) return; // Terminate
      if (this.skipping && type !== 0x53) continue; // skip to Sync after an error
      try {
        switch (type) {
          case 0x51: // Query
            await this.simpleQuery(parseQuery(body));
            break;
          case 0x50: // Parse
            this.parse(body);
            break;
          case 0x42: // Bind
            this.bind(body);
            break;
          case 0x44: // Describe
            await this.describe(body);
            break;
          case 0x45: // Execute
            await this.execute(body);
            break;
          case 0x43: // Close
            this.close(body);
            break;
          case 0x53: // Sync
            await this.endImplicit();
            this.skipping = false;
            await this.readyForQuery();
            break;
          case 0x48: // Flush
            await this.flush();
            break;
          case 0x46: // FunctionCall
            throw new PgError("0A000", "function calls are not supported");
          case 0x64: // CopyData, CopyDone, CopyFail outside COPY: ignored like PostgreSQL
          case 0x63:
          case 0x66:
            break;
          default:
            throw new PgError(
              "08P01",
              `invalid frontend message type ${type}`,
              { fatal: true },
            );
        }
      } catch (e) {
        const err = toPgError(e);
        if (err.fatal) throw err;
        // Any error inside a transaction block aborts it (PostgreSQL semantics).
        if (type !== 0x51 && this.session?.inTransaction) this.failed = true;
        this.out.error(err.fields());
        if (type === 0x51) {
          await this.readyForQuery();
        } else {
          // Errors go out at once (the client may wait after Flush); then skip to Sync.
          this.skipping = true;
          await this.flush();
        }
      }
      if (this.out.length > FLUSH_BYTES) await this.flush();
    }
  }

  // --------------------------------------------------------------- execution

  /** Runs `fn` with an AbortController registered for cancel requests. */
  private async cancellable<T>(fn: (signal: AbortSignal) => Promise<T>): Promise<T> {
    const ac = new AbortController();
    this.running = ac;
    if (this.reader.closed || this.closing) ac.abort();
    try {
      return await fn(ac.signal);
    } finally {
      this.running = null;
    }
  }

  /** Executes one SQL statement in the session (or autocommit through the database). */
  private runSql(sql: string, params: SqlValue[]): Promise<StatementResult> {
    const stmt: Statement = params.length ? { sql, params } : { sql };
    return this.cancellable(async (signal) => {
      if (this.session?.inTransaction) return await this.session.execute(stmt, { signal });
      return (await this.db.execute([stmt], { signal }))[0];
    });
  }

  private async runTxSql(sql: string): Promise<void> {
    if (!this.session) throw new PgError("08003", "no session");
    await this.session.execute({ sql });
  }

  private notice(code: string, message: string): void {
    this.out.notice({ severity: "WARNING", code, message });
  }

  /** Runs a classified statement; errors inside a transaction block mark it failed. */
  private async runStatement(
    c: Classified,
    params: SqlValue[],
    implicit = false,
  ): Promise<Outcome> {
    const inBlock = this.session?.inTransaction ?? false;
    try {
      return await this.runInner(c, params);
    } catch (e) {
      if (!implicit && (inBlock || this.session?.inTransaction)) this.failed = true;
      throw e;
    }
  }

  private async runInner(c: Classified, params: SqlValue[]): Promise<Outcome> {
    if (c.kind === "empty") return { fields: null, rows: [], tag: "", empty: true };
    if (this.failed && !(c.kind === "tx" && ["commit", "rollback", "rollback_to"].includes(c.op))) {
      throw abortedTransaction();
    }
    if (c.kind === "local") {
      const r = await c.run(this.catalogContext());
      for (const [k, v] of r.status ?? []) this.out.parameterStatus(k, v);
      return { fields: c.fields.length ? c.fields : null, rows: r.rows, tag: r.tag };
    }
    if (c.kind === "tx") return await this.runTx(c);
    if (c.kind === "catalog") return await this.catalog.run(c.sql, params, this.catalogEnv());
    if (c.kind === "copy") return await this.runCopy(c.copy);
    const r = await this.runSql(await this.sqlOf(c), params);
    return {
      fields: r.columns.length ? fieldsOf(r.columns, r.rows) : null,
      rows: r.rows,
      tag: commandTag(r),
    };
  }

  private async runTx(c: Extract<Classified, { kind: "tx" }>): Promise<Outcome> {
    const inTx = this.session?.inTransaction ?? false;
    const done = (tag: string): Outcome => ({ fields: null, rows: [], tag });
    if (c.op !== "begin") this.implicitTx = false;
    switch (c.op) {
      case "begin":
        if (this.implicitTx) {
          // PostgreSQL: BEGIN inside an implicit transaction block turns it into a real one.
          this.implicitTx = false;
          return done(c.tag);
        }
        if (inTx) {
          this.notice("25001", "there is already a transaction in progress");
          return done(c.tag);
        }
        await this.runTxSql(c.sql);
        return done(c.tag);
      case "commit":
        if (this.failed) {
          this.failed = false;
          if (inTx) await this.runTxSql("ROLLBACK");
          return done("ROLLBACK");
        }
        if (!inTx) {
          this.notice("25P01", "there is no transaction in progress");
          return done(c.tag);
        }
        await this.runTxSql(c.sql);
        return done(c.tag);
      case "rollback":
        this.failed = false;
        if (!inTx) {
          this.notice("25P01", "there is no transaction in progress");
          return done(c.tag);
        }
        await this.runTxSql(c.sql);
        return done(c.tag);
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
        await this.runTxSql(c.sql);
        if (c.op === "rollback_to") this.failed = false;
        return done(c.tag);
    }
  }

  /** The SQL of a statement for SQLite: `VALUES (DEFAULT, …)` filled with the columns' defaults. */
  private async sqlOf(c: Extract<Classified, { kind: "sql" }>): Promise<string> {
    if (c.valuesDefault === undefined) return c.sql;
    const info = await this.runSql("SELECT name, dflt_value FROM pragma_table_info(?)", [
      c.valuesDefault,
    ]);
    return fillValuesDefaults(
      c.sql,
      info.rows.map((r) => [String(r[0]), r[1] === null ? null : String(r[1])]),
    );
  }

  /** COPY FROM STDIN / TO STDOUT: the rows go through runSql (one transaction for FROM). */
  private async runCopy(cmd: Extract<Classified, { kind: "copy" }>["copy"]): Promise<Outcome> {
    const io = {
      out: this.out,
      flush: () => this.flush(),
      read: () => this.reader.read(),
      run: (sql: string, params: SqlValue[]) => this.runSql(sql, params),
    };
    if (cmd.direction === "to") {
      return { fields: null, rows: [], tag: await copyOut(cmd, io) };
    }
    const begin = !(this.session?.inTransaction ?? false);
    if (begin) await this.runTxSql("BEGIN");
    try {
      const tag = await copyIn(cmd, io);
      if (begin) await this.runTxSql("COMMIT");
      return { fields: null, rows: [], tag };
    } catch (e) {
      if (begin && this.session?.inTransaction) await this.runTxSql("ROLLBACK");
      throw e;
    }
  }

  private catalogEnv(): CatalogEnv {
    return {
      user: this.user,
      database: this.db.id,
      pid: this.pid,
      settings: this.settings,
      databases: () => this.opts.engine.ids(),
      query: async (sql) => (await this.runSql(sql, [])).rows,
    };
  }

  private catalogContext(): CatalogContext {
    return {
      settings: this.settings,
      user: this.user,
      database: this.db.id,
      pid: this.pid,
      databases: () => this.opts.engine.ids(),
      useDatabase: async (id: string) => {
        const next = this.opts.engine.get(id);
        const old = this.session;
        this.session = null;
        await old?.close();
        this.failed = false;
        this.db = next;
        this.session = next.session();
        this.statements.clear();
        this.portals.clear();
      },
      deallocate: (name: string | null) => {
        if (name === null) this.statements.clear();
        else if (!this.statements.delete(name)) {
          throw new PgError("26000", `prepared statement "${name}" does not exist`);
        }
      },
    };
  }

  // ------------------------------------------------------------ simple query

  private async simpleQuery(sql: string): Promise<void> {
    this.statements.delete("");
    this.portals.delete("");
    const parts = splitStatements(sql).filter((s) => !isBlank(s));
    if (parts.length === 0) {
      this.out.emptyQuery();
      await this.readyForQuery();
      return;
    }
    const txWords = /^\s*(BEGIN|START|COMMIT|END|ROLLBACK|ABORT|SAVEPOINT|RELEASE)\b/i;
    // PostgreSQL runs a multi-statement string as one implicit transaction.
    const implicit = parts.length > 1 && this.status() === "I" &&
      !parts.some((p) => txWords.test(p.replace(/^(\s|--[^\n]*\n|\/\*[\s\S]*?\*\/)*/, "")));
    let begun = false;
    try {
      for (const part of parts) {
        const c = classify(part);
        if (implicit && !begun && c.kind === "sql") {
          await this.runTxSql("BEGIN");
          begun = true;
        }
        const r = await this.runStatement(c, [], implicit);
        if (r.empty) {
          this.out.emptyQuery();
          continue;
        }
        if (r.fields) {
          const fields = r.fields;
          this.out.rowDescription(fields.map((f) => describeField(f, 0)));
          await this.writeRows(r.rows, fields, fields.map(() => 0), 0, r.rows.length);
        }
        this.out.commandComplete(r.tag);
      }
      if (begun) {
        begun = false;
        await this.runTxSql("COMMIT");
      }
    } catch (e) {
      if (begun) {
        try {
          await this.runTxSql("ROLLBACK");
        } catch { /* the error below is what matters */ }
      }
      const err = toPgError(e);
      if (err.fatal) throw err;
      if (!implicit && this.session?.inTransaction) this.failed = true;
      this.out.error(err.fields());
    }
    await this.readyForQuery();
  }

  private async writeRows(
    rows: SqlValue[][],
    fields: Field[],
    formats: number[],
    from: number,
    to: number,
  ): Promise<void> {
    const n = fields.length;
    const binary = formats.some((f) => f === 1);
    for (let r = from; r < to; r++) {
      const row = rows[r];
      if (binary) {
        // encode first: a value that cannot be sent must not leave half a message behind
        const cells = fields.map((f, i) =>
          formats[i] === 1 ? encodeBinary(row[i] ?? null, f.oid) : encodeText(row[i] ?? null, f.oid)
        );
        this.out.begin("D").int16(n);
        for (const c of cells) {
          if (c === null) this.out.int32(-1);
          else if (typeof c === "string") this.out.textField(c);
          else this.out.bytesField(c);
        }
        this.out.end();
      } else {
        this.out.begin("D").int16(n);
        for (let i = 0; i < n; i++) {
          const s = encodeText(row[i] ?? null, fields[i].oid);
          if (s === null) this.out.int32(-1);
          else this.out.textField(s);
        }
        this.out.end();
      }
      if (this.out.length > FLUSH_BYTES) await this.flush();
    }
  }

  // -------------------------------------------------------- extended protocol

  private parse(body: Uint8Array): void {
    const m = parseParse(body);
    if (m.name !== "" && this.statements.has(m.name)) {
      throw new PgError("42P05", `prepared statement "${m.name}" already exists`);
    }
    if (this.statements.size >= MAX_PREPARED) {
      throw new PgError("53400", `too many prepared statements (limit ${MAX_PREPARED})`);
    }
    let a = this.analyses.get(m.sql);
    if (!a) {
      a = analyse(m.sql);
      if (this.analyses.size >= ANALYSIS_CACHE) this.analyses.clear();
      this.analyses.set(m.sql, a);
    }
    this.statements.set(m.name, {
      sql: a.sql,
      paramOids: m.paramOids,
      paramCount: Math.max(m.paramOids.length, a.placeholders),
      classified: a.classified,
    });
    this.out.parseComplete();
  }

  private statement(name: string): Prepared {
    const s = this.statements.get(name);
    if (!s) throw new PgError("26000", `prepared statement "${name}" does not exist`);
    return s;
  }

  private portal(name: string): Portal {
    const p = this.portals.get(name);
    if (!p) throw new PgError("34000", `portal "${name}" does not exist`);
    return p;
  }

  private bind(body: Uint8Array): void {
    const m = parseBind(body);
    const stmt = this.statement(m.statement);
    if (m.portal !== "" && this.portals.has(m.portal)) {
      throw new PgError("42P03", `cursor "${m.portal}" already exists`);
    }
    const expected = stmt.paramCount;
    if (m.params.length !== expected) {
      throw new PgError(
        "08P01",
        `bind message supplies ${m.params.length} parameters, but prepared statement "${m.statement}" requires ${expected}`,
      );
    }
    const params = m.params.map((raw, i) => {
      const format = m.paramFormats.length === 1 ? m.paramFormats[0] : (m.paramFormats[i] ?? 0);
      return decodeParam(raw, stmt.paramOids[i] ?? 0, format);
    });
    this.portals.set(m.portal, { stmt, params, resultFormats: m.resultFormats, cursor: 0 });
    this.out.bindComplete();
  }

  /** Describes a statement without running it: in the session when it has a transaction open. */
  private async describeSql(stmt: Prepared): Promise<PgDescription> {
    if (!stmt.description) {
      if (this.failed) throw abortedTransaction();
      const session = this.session as
        | (Session & { describe?(sql: string): Promise<PgDescription> })
        | null;
      const viaSession = session?.inTransaction && typeof session.describe === "function";
      const c = stmt.classified;
      const sql = c.kind === "sql" ? await this.sqlOf(c) : stmt.sql;
      stmt.description = await (viaSession ? session!.describe!(sql) : this.db.describe(sql));
    }
    return stmt.description;
  }

  private async describe(body: Uint8Array): Promise<void> {
    const m = parseTarget(body);
    if (m.kind === "S") {
      const stmt = this.statement(m.name);
      const c = stmt.classified;
      let fields: Field[] = [];
      let paramCount = stmt.paramCount;
      if (c.kind === "local") fields = c.fields;
      else if (c.kind === "sql") {
        const d = await this.describeSql(stmt);
        paramCount = Math.max(paramCount, d.paramCount);
        fields = d.columns.map((col) => ({ name: col.name, oid: describedOid(col.declType) }));
        stmt.fields = fields;
      } else if (c.kind === "catalog") {
        const d = await this.catalog.describe(c.sql, this.catalogEnv());
        paramCount = Math.max(paramCount, d.paramCount);
        fields = stmt.fields = d.fields;
      }
      const oids = Array.from({ length: paramCount }, (_, i) => stmt.paramOids[i] || OID.text);
      this.out.parameterDescription(oids);
      if (fields.length) this.out.rowDescription(fields.map((f) => describeField(f, 0)));
      else this.out.noData();
      return;
    }
    const portal = this.portal(m.name);
    const fields = await this.portalFields(portal);
    if (!fields) {
      this.out.noData();
      return;
    }
    const formats = resultFormats(portal.resultFormats, fields.length);
    this.out.rowDescription(fields.map((f, i) => describeField(f, formats[i])));
  }

  /**
   * The result columns of a portal before Execute. A statement that may return
   * rows runs now (a bound portal is ready to run; its rows are kept for the
   * Execute that follows) so its columns carry the types of real values and it
   * sees the session's open transaction; a statement that never returns rows
   * (plain INSERT/UPDATE/DELETE, DDL, transaction control) is not run here.
   */
  private async portalFields(portal: Portal): Promise<Field[] | null> {
    if (portal.fields) return portal.fields.length ? portal.fields : null;
    const stmt = portal.stmt;
    const c = stmt.classified;
    let fields: Field[] | null = null;
    if (c.kind === "local") {
      fields = c.fields.length ? c.fields : null;
    } else if (c.kind === "sql") {
      if (stmt.fields) fields = stmt.fields.length ? stmt.fields : null;
      else if (c.shape !== "none") fields = (await this.executePortal(portal)).fields;
    } else if (c.kind === "catalog") {
      fields = (await this.executePortal(portal)).fields;
    }
    portal.fields = fields ?? [];
    return fields;
  }

  private async executePortal(portal: Portal): Promise<Outcome> {
    if (!portal.result) {
      await this.beginImplicit(portal.stmt.classified);
      const r = await this.runStatement(portal.stmt.classified, portal.params);
      // Types promised earlier (Describe) win over value-derived ones.
      const promised = portal.fields ?? portal.stmt.fields;
      if (r.fields && promised && promised.length === r.fields.length) r.fields = promised;
      portal.result = r;
    }
    return portal.result;
  }

  private async execute(body: Uint8Array): Promise<void> {
    const m = parseExecute(body);
    const portal = this.portal(m.portal);
    const already = portal.result !== undefined;
    const r = await this.executePortal(portal);
    if (r.empty) {
      this.out.emptyQuery();
      return;
    }
    // Rows are sent only under a RowDescription the client has (or could have) seen.
    const fields = portal.fields !== undefined
      ? (portal.fields.length ? portal.fields : null)
      : r.fields;
    if (fields && r.fields) {
      const formats = resultFormats(portal.resultFormats, fields.length);
      const end = m.maxRows > 0
        ? Math.min(r.rows.length, portal.cursor + m.maxRows)
        : r.rows.length;
      const start = portal.cursor;
      await this.writeRows(r.rows, fields, formats, start, end);
      portal.cursor = end;
      if (end < r.rows.length) {
        this.out.portalSuspended();
        return;
      }
      const tag = r.tag.startsWith("SELECT ") ? `SELECT ${end - start}` : r.tag;
      this.out.commandComplete(
        already && start === end && r.tag.startsWith("SELECT ") ? "SELECT 0" : tag,
      );
      return;
    }
    this.out.commandComplete(r.tag);
  }

  /**
   * PostgreSQL runs the messages up to Sync as one implicit transaction. A write that is not
   * directly followed by Sync opens it (a lone write autocommits: the same thing, one round trip
   * less); reads before the first write need no transaction. Sync commits it, or rolls it back
   * after an error.
   */
  private async beginImplicit(c: Classified): Promise<void> {
    if (c.kind !== "sql" || this.implicitTx || this.status() !== "I") return;
    if (shapeOf(c.sql) === "query" || this.reader.nextIsSync()) return;
    await this.runTxSql("BEGIN");
    this.implicitTx = true;
  }

  /** At Sync: commits the implicit transaction, or rolls it back if anything failed. */
  private async endImplicit(): Promise<void> {
    if (!this.implicitTx) return;
    this.implicitTx = false;
    const failed = this.failed || this.skipping;
    this.failed = false;
    try {
      await this.runTxSql(failed ? "ROLLBACK" : "COMMIT");
    } catch (e) {
      this.out.error(toPgError(e).fields());
    }
  }

  private close(body: Uint8Array): void {
    const m = parseTarget(body);
    if (m.kind === "S") this.statements.delete(m.name);
    else this.portals.delete(m.name);
    this.out.closeComplete();
  }
}

/** Result format codes per column (Bind: none = text, one = all, else one per column). */
function resultFormats(codes: number[], n: number): number[] {
  if (codes.length === 0) return new Array(n).fill(0);
  if (codes.length === 1) return new Array(n).fill(codes[0]);
  if (codes.length !== n) {
    throw new PgError(
      "08P01",
      `bind message has ${codes.length} result formats but query has ${n} columns`,
    );
  }
  return codes;
}

function describeField(f: Field | LocalField, format: number): FieldDescription {
  return { name: f.name, oid: f.oid, size: typeSize(f.oid), format };
}

/** Result column types from declared types and values. */
function fieldsOf(columns: ColumnInfo[], rows: SqlValue[][]): Field[] {
  return columns.map((c, i) => ({ name: c.name, oid: columnOid(c.declType, rows, i) }));
}
