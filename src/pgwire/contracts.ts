/**
 * The narrow interfaces a pgwire connection is built on: the part of the
 * engine it uses ({@link PgEngine}, which `Engine` satisfies), what the server
 * hands each connection, and the {@link Wire} its protocol parts share.
 *
 * @example
 * ```ts
 * const engine: PgEngine = await openEngine({ dsns: [], memory: true, logger });
 * const db = engine.get("app"); // or engine.defaultDb
 * ```
 */
import type {
  ColumnInfo,
  ExecuteOptions,
  Session,
  Statement,
  StatementResult,
} from "../engine/mod.ts";
import type { Logger } from "../log/mod.ts";
import type { AuthMethod, Credentials } from "./auth.ts";
import type { MessageWriter } from "./backend.ts";
import type { FrameReader } from "./messages.ts";

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
  /** A read-only follower's database: sessions report `transaction_read_only = on`. */
  readonly readOnly?: boolean;
  execute(stmts: Statement[], opts?: ExecuteOptions): Promise<StatementResult[]>;
  /**
   * One known read answered now on the calling thread, or the milliseconds it ran before
   * stopping (then `execute` it with them as `spentMs`); absent: always `execute`.
   */
  executeNow?(stmt: Statement, opts?: ExecuteOptions): StatementResult | number;
  describe(sql: string): Promise<PgDescription>;
  session(): Session;
}

/** The part of the engine the wire protocol uses (`Engine` satisfies it). */
export interface PgEngine {
  ids(): string[];
  get(id: string): PgDatabase;
  readonly defaultDb: PgDatabase;
  /** `--statement-timeout` in ms: what `SHOW statement_timeout` starts with (absent = 0). */
  readonly statementTimeoutMs?: number;
  /** Path of `ha_interrupt.so`: catalog queries load it for their statement timeout (null = none). */
  readonly interrupt?: string | null;
}

/** A connection a CancelRequest can reach. */
export interface Cancellable {
  /** Aborts the running query, if any. */
  cancel(): void;
}

/** Cancel keys of live connections, shared by a server's connections. */
export interface CancelRegistry {
  /** Allocates a process id and secret for `conn`. */
  register(conn: Cancellable): { pid: number; secret: number };
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
  /** Metrics sink: called for each SQL statement run. */
  onQuery?: () => void;
}

/** The client connection as the protocol parts see it: messages in, messages out. */
export interface Wire {
  readonly reader: FrameReader;
  readonly out: MessageWriter;
  /** Writes what `out` holds (a failed write closes the connection). */
  flush(): Promise<void>;
}
