/**
 * The PostgreSQL wire server: a TCP listener, the TLS upgrade after
 * SSLRequest, cancel keys, and an orderly stop.
 *
 * Deno has no server-side STARTTLS (`Deno.startTls` is client-only), so TLS
 * runs on an internal loopback `Deno.listenTls` listener: after answering
 * 'S' to an SSLRequest the plain connection is piped to it, and the decrypted
 * connection is served like any other.
 *
 * @example
 * ```ts
 * const server = new PgServer({ engine, port: 5432, user: "ha", password: "ha", logger });
 * await server.start();
 * // … psql -h localhost -U ha …
 * await server.stop();
 * ```
 */
import { HaError } from "../errors/mod.ts";
import type { Logger } from "../log/mod.ts";
import { AUTH_METHODS, type AuthMethod, Credentials } from "./auth.ts";
import { DEFAULT_MAX_MESSAGE_BYTES } from "./messages.ts";
import type { Connection } from "./connection.ts";
import type { Cancellable, CancelRegistry, PgEngine } from "./contracts.ts";

/** Options of a {@link PgServer}. */
export interface PgServerOptions {
  /** The databases to serve (an `Engine`). */
  engine: PgEngine;
  /** TCP port; 0 picks a free one (see {@link PgServer.port}). */
  port: number;
  /** Interface to listen on (`--pg-addr`). Default `127.0.0.1`. */
  hostname?: string;
  /** The one accepted user name (`--pg-user`). */
  user: string;
  /** Its password (`--pg-pass`). */
  password: string;
  /** PEM certificate file (`--pg-cert`); with `key`, enables TLS. */
  cert?: string | null;
  /** PEM private key file (`--pg-key`). */
  key?: string | null;
  logger: Logger;
  /** Largest accepted frontend message. Default 64 MiB. */
  maxMessageBytes?: number;
  /** Password method asked of clients. Default `scram-sha-256`. */
  authMethod?: AuthMethod;
  /** TLS handshake, start-up and authentication must each finish within this time. Default 60 s. */
  authTimeoutMs?: number;
  /** `--pg-require-tls`: refuse start-up on an unencrypted connection (28000). */
  requireTls?: boolean;
  /** `--max-connections`: more connections at once get 53300. Default 500. */
  maxConnections?: number;
  /** Metrics sink: called for each SQL statement run. */
  onQuery?: () => void;
}

/** A PostgreSQL protocol v3 server over the engine. */
export class PgServer {
  private listener: Deno.Listener | null = null;
  private tlsListener: Deno.TlsListener | null = null;
  private readonly connections = new Set<Connection>();
  private readonly tasks = new Set<Promise<void>>();
  private readonly proxies = new Set<Deno.Conn>();
  /** Local port of a TLS proxy's inner connection → ends its handshake timer. */
  private readonly handshaking = new Map<number, () => void>();
  private readonly keys = new Map<number, { secret: number; conn: Cancellable }>();
  private nextPid = 1000 + Math.floor(Math.random() * 100_000);
  private readonly credentials: Credentials;
  private readonly log: Logger;
  private stopping: Promise<void> | null = null;
  private boundPort = 0;
  /**
   * The connection class: its modules (the protocol, the executor, COPY, the catalog's
   * classifier) load on the first client connection, not at start (a node's idle memory, issue 13).
   */
  private connectionClass: Promise<typeof Connection> | null = null;
  private ConnectionClass: typeof Connection | null = null;

  constructor(private readonly opts: PgServerOptions) {
    const method = opts.authMethod ?? "scram-sha-256";
    if (!AUTH_METHODS.includes(method)) {
      throw new HaError(
        "config",
        `invalid pg auth method "${method}" (use ${AUTH_METHODS.join(", ")})`,
      );
    }
    if (!!opts.cert !== !!opts.key) {
      throw new HaError("config", "--pg-cert and --pg-key must be given together");
    }
    this.credentials = new Credentials(opts.user, opts.password);
    this.log = opts.logger.child({ component: "pgwire" });
  }

  /** The port actually listened on (after {@link PgServer.start}). */
  get port(): number {
    return this.boundPort;
  }

  /** Starts listening (and derives the SCRAM secret). */
  async start(): Promise<void> {
    if (this.listener) return;
    let tls: { cert: string; key: string } | null = null;
    if (this.opts.cert && this.opts.key) {
      try {
        tls = {
          cert: await Deno.readTextFile(this.opts.cert),
          key: await Deno.readTextFile(this.opts.key),
        };
      } catch (e) {
        throw new HaError("config", `cannot read --pg-cert/--pg-key: ${(e as Error).message}`);
      }
    }
    await this.credentials.scram();
    const hostname = this.opts.hostname ?? "127.0.0.1";
    try {
      this.listener = Deno.listen({ hostname, port: this.opts.port, transport: "tcp" });
    } catch (e) {
      const why = e instanceof Deno.errors.AddrInUse
        ? "address already in use"
        : (e as Error).message;
      throw new HaError(
        "unavailable",
        `cannot listen on ${hostname}:${this.opts.port} (--pg-port): ${why}`,
      );
    }
    this.boundPort = (this.listener.addr as Deno.NetAddr).port;
    if (tls) {
      try {
        this.tlsListener = Deno.listenTls({ hostname: "127.0.0.1", port: 0, ...tls });
      } catch (e) {
        this.listener.close();
        this.listener = null;
        throw new HaError("config", `invalid --pg-cert/--pg-key: ${(e as Error).message}`);
      }
      this.track(this.acceptTls(this.tlsListener));
    }
    this.track(this.accept(this.listener));
    this.log.info("pg listening", { hostname, port: this.boundPort, tls: tls !== null });
  }

  /** Stops accepting, ends every connection (rolling back open transactions). Idempotent. */
  stop(): Promise<void> {
    this.stopping ??= this.doStop();
    return this.stopping;
  }

  private async doStop(): Promise<void> {
    for (const l of [this.listener, this.tlsListener]) {
      try {
        l?.close();
      } catch { /* closed */ }
    }
    await Promise.allSettled([...this.connections].map((c) => c.shutdown()));
    for (const p of this.proxies) {
      try {
        p.close();
      } catch { /* closed */ }
    }
    while (this.tasks.size) await Promise.allSettled([...this.tasks]);
    this.log.info("pg stopped");
  }

  private track(p: Promise<void>): void {
    this.tasks.add(p);
    p.finally(() => this.tasks.delete(p));
  }

  private async accept(listener: Deno.Listener): Promise<void> {
    for (;;) {
      let conn: Deno.Conn;
      try {
        conn = await listener.accept();
      } catch (e) {
        if (this.stopping || e instanceof Deno.errors.BadResource) return;
        this.log.warn("pg accept failed", { error: e });
        await new Promise((r) => setTimeout(r, 50));
        continue;
      }
      try {
        (conn as Deno.TcpConn).setNoDelay?.(true);
      } catch { /* not TCP */ }
      this.serve(conn, false);
    }
  }

  private async acceptTls(listener: Deno.TlsListener): Promise<void> {
    for (;;) {
      let conn: Deno.TlsConn;
      try {
        conn = await listener.accept();
      } catch (e) {
        if (this.stopping || e instanceof Deno.errors.BadResource) return;
        this.log.warn("pg tls accept failed", { error: e });
        continue;
      }
      this.track((async () => {
        try {
          await conn.handshake();
        } catch (e) {
          this.log.debug("pg tls handshake failed", { error: e });
          try {
            conn.close();
          } catch { /* closed */ }
          return;
        }
        this.handshaking.get((conn.remoteAddr as Deno.NetAddr).port)?.();
        this.serve(conn, true);
      })());
    }
  }

  /** Open client connections (metrics). */
  get connectionCount(): number {
    return this.connections.size;
  }

  private serve(conn: Deno.Conn, tls: boolean): void {
    const Conn = this.ConnectionClass;
    if (Conn === null) {
      this.connectionClass ??= import("./connection.ts").then((m) => m.Connection);
      this.track(this.connectionClass.then((C) => {
        this.ConnectionClass = C;
        this.serve(conn, tls);
      }, (e) => {
        this.log.error("pg connection module cannot load", { error: e });
        try {
          conn.close();
        } catch { /* closed */ }
      }));
      return;
    }
    const max = this.opts.maxConnections ?? 500;
    // Past the limit, connections get 53300 after their start-up packet (as PostgreSQL does);
    // far past it, they are closed at once so that a flood cannot hold sockets.
    if (this.stopping || this.connections.size >= 2 * max) {
      try {
        conn.close();
      } catch { /* closed */ }
      return;
    }
    const c = new Conn(conn, {
      engine: this.opts.engine,
      credentials: this.credentials,
      authMethod: this.opts.authMethod ?? "scram-sha-256",
      logger: this.log,
      maxMessageBytes: this.opts.maxMessageBytes ?? DEFAULT_MAX_MESSAGE_BYTES,
      registry: this.registry,
      tls,
      startTls: this.tlsListener && !tls ? (plain, early) => this.proxy(plain, early) : undefined,
      authTimeoutMs: this.opts.authTimeoutMs,
      requireTls: this.opts.requireTls ?? false,
      tooMany: () => this.connections.size > max,
      onQuery: this.opts.onQuery,
    });
    this.connections.add(c);
    this.track(c.run().finally(() => this.connections.delete(c)));
  }

  /** Pipes a plain connection (after 'S') to the internal TLS listener. */
  private proxy(plain: Deno.Conn, early: Uint8Array): void {
    const tlsAddr = this.tlsListener!.addr as Deno.NetAddr;
    this.track((async () => {
      let inner: Deno.Conn | null = null;
      let handshakePort = 0;
      this.proxies.add(plain);
      try {
        inner = await Deno.connect({ hostname: "127.0.0.1", port: tlsAddr.port });
        this.proxies.add(inner);
        // A client that asked for TLS and then stays silent must not hold the socket: the
        // handshake (seen by the TLS listener as coming from our local port) must finish in time.
        // Closing a TLS connection mid-handshake does not free its socket; closing ours does.
        handshakePort = (inner.localAddr as Deno.NetAddr).port;
        const timeoutMs = this.opts.authTimeoutMs ?? 60_000;
        const timer = setTimeout(() => {
          this.log.debug("pg tls handshake timed out", { timeoutMs });
          for (const c of [plain, inner!]) {
            try {
              c.close();
            } catch { /* closed */ }
          }
        }, timeoutMs);
        this.handshaking.set(handshakePort, () => clearTimeout(timer));
        if (early.length) await inner.write(early);
        const closeBoth = () => {
          for (const c of [plain, inner!]) {
            try {
              c.close();
            } catch { /* closed */ }
          }
        };
        await Promise.race([
          plain.readable.pipeTo(inner.writable, { preventClose: true }).catch(() => {}),
          inner.readable.pipeTo(plain.writable, { preventClose: true }).catch(() => {}),
        ]);
        closeBoth();
      } catch (e) {
        this.log.debug("pg tls proxy failed", { error: e });
        try {
          plain.close();
        } catch { /* closed */ }
        try {
          inner?.close();
        } catch { /* closed */ }
      } finally {
        this.handshaking.get(handshakePort)?.();
        this.handshaking.delete(handshakePort);
        this.proxies.delete(plain);
        if (inner) this.proxies.delete(inner);
      }
    })());
  }

  private readonly registry: CancelRegistry = {
    register: (conn) => {
      const pid = this.nextPid++;
      if (this.nextPid > 0x7fffffff) this.nextPid = 1000;
      const secret = crypto.getRandomValues(new Int32Array(1))[0];
      this.keys.set(pid, { secret, conn });
      return { pid, secret };
    },
    unregister: (pid) => {
      this.keys.delete(pid);
    },
    cancel: (pid, secret) => {
      const k = this.keys.get(pid);
      if (k && k.secret === secret) {
        this.log.debug("pg cancel request", { pid });
        k.conn.cancel();
      }
    },
  };
}
