/**
 * The public HTTP listener. `Deno.serve` has no connection cap and no header or idle timeouts,
 * so clients connect here and each connection is piped to an internal `Deno.serve` on a
 * loopback port. The request handler tells this front when a request starts and completes
 * (matched by the pipe's local port), which gives:
 *
 * - a connection cap: past `maxConnections` a client gets `503` and the connection closes;
 * - a header timeout: a connection that sent part of a request but no complete headers within
 *   `headerTimeoutMs` (after it connected or its last response) is closed (slowloris);
 * - an idle timeout: a keep-alive connection without a request for `idleTimeoutMs` is closed.
 *
 * Requests that reach the internal port without coming through this front are refused.
 *
 * @module
 */
import type { Logger } from "../log/mod.ts";

/** Options of {@link HttpFront}. */
export interface HttpFrontOptions {
  hostname: string;
  port: number;
  /** The internal `Deno.serve` port on 127.0.0.1. */
  backendPort: number;
  maxConnections: number;
  headerTimeoutMs: number;
  idleTimeoutMs: number;
  logger: Logger;
}

/** One client connection and its pipe to the internal server. */
class Piped {
  /** Requests being handled. */
  active = 0;
  /** When the connection last had no request in progress. */
  idleSince = performance.now();
  /** The client sent bytes since {@link idleSince} (a next request is arriving). */
  receiving = false;
  backend: Deno.Conn | null = null;
  /** Aborted when the connection ends: its requests' statements stop. */
  readonly gone = new AbortController();

  constructor(readonly client: Deno.Conn) {}

  close(): void {
    for (const c of [this.client, this.backend]) {
      try {
        c?.close();
      } catch { /* closed */ }
    }
  }
}

const TOO_MANY_BODY = JSON.stringify({ error: "too many connections (--max-connections)" });
const TOO_MANY = new TextEncoder().encode(
  "HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\nconnection: close\r\n" +
    `content-length: ${TOO_MANY_BODY.length}\r\n\r\n${TOO_MANY_BODY}`,
);

/** Accepts clients, enforces the limits, pipes bytes both ways. */
export class HttpFront {
  private listener: Deno.Listener | null = null;
  private readonly conns = new Set<Piped>();
  /** Local port of a pipe's backend connection → the pipe. */
  private readonly byPort = new Map<number, Piped>();
  private readonly tasks = new Set<Promise<void>>();
  private timer: ReturnType<typeof setInterval> | undefined;
  private readonly log: Logger;

  constructor(private readonly opts: HttpFrontOptions) {
    this.log = opts.logger;
  }

  /** Starts listening; throws Deno's error when the address cannot be bound. */
  listen(): Deno.NetAddr {
    this.listener = Deno.listen({ hostname: this.opts.hostname, port: this.opts.port });
    const tick = Math.max(50, Math.min(1000, this.opts.headerTimeoutMs / 4));
    this.timer = setInterval(() => this.expire(), tick);
    this.track(this.accept(this.listener));
    return this.listener.addr as Deno.NetAddr;
  }

  /**
   * Called by the request handler with the remote port the internal server sees: a signal
   * aborted when the client's connection ends, or null when the request did not come through
   * this front.
   */
  begin(remotePort: number, completed: Promise<void>): AbortSignal | null {
    const p = this.byPort.get(remotePort);
    if (!p) return null;
    p.active++;
    completed.catch(() => {}).finally(() => {
      if (--p.active === 0) {
        p.idleSince = performance.now();
        p.receiving = false;
      }
    });
    return p.gone.signal;
  }

  /** Stops accepting new connections. */
  closeListener(): void {
    clearInterval(this.timer);
    try {
      this.listener?.close();
    } catch { /* closed */ }
    this.listener = null;
  }

  /** Closes every connection and waits for the pipes to end. */
  async closeAll(): Promise<void> {
    this.closeListener();
    for (const p of this.conns) p.close();
    while (this.tasks.size) await Promise.allSettled([...this.tasks]);
  }

  private track(t: Promise<void>): void {
    this.tasks.add(t);
    t.finally(() => this.tasks.delete(t));
  }

  private expire(): void {
    const now = performance.now();
    for (const p of this.conns) {
      if (p.active > 0) continue;
      const limit = p.receiving ? this.opts.headerTimeoutMs : this.opts.idleTimeoutMs;
      if (now - p.idleSince > limit) {
        this.log.debug("http connection timed out", {
          reason: p.receiving ? "headers (--http-header-timeout)" : "idle (--http-idle-timeout)",
        });
        p.close();
      }
    }
  }

  private async accept(listener: Deno.Listener): Promise<void> {
    for (;;) {
      let conn: Deno.Conn;
      try {
        conn = await listener.accept();
      } catch (e) {
        if (this.listener !== listener || e instanceof Deno.errors.BadResource) return;
        this.log.warn("http accept failed", { error: e });
        await new Promise((r) => setTimeout(r, 50));
        continue;
      }
      if (this.conns.size >= this.opts.maxConnections) {
        this.track(refuse(conn));
        continue;
      }
      const p = new Piped(conn);
      this.conns.add(p);
      this.track(
        this.pipe(p).finally(() => {
          this.conns.delete(p);
          p.close();
        }),
      );
    }
  }

  private async pipe(p: Piped): Promise<void> {
    let port = 0;
    try {
      p.backend = await Deno.connect({ hostname: "127.0.0.1", port: this.opts.backendPort });
      port = (p.backend.localAddr as Deno.NetAddr).port;
      this.byPort.set(port, p);
      for (const c of [p.client, p.backend]) (c as Deno.TcpConn).setNoDelay?.(true);
      await Promise.race([
        copy(p.client, p.backend, () => {
          if (p.active === 0) p.receiving = true;
        }),
        copy(p.backend, p.client),
      ]);
    } catch (e) {
      this.log.debug("http pipe ended", { error: e });
    } finally {
      if (port) this.byPort.delete(port);
      p.gone.abort();
    }
  }
}

async function refuse(conn: Deno.Conn): Promise<void> {
  try {
    await conn.write(TOO_MANY);
  } catch { /* gone */ }
  try {
    conn.close();
  } catch { /* closed */ }
}

/** Copies bytes until either side ends; `seen` is called for every chunk. */
async function copy(from: Deno.Conn, to: Deno.Conn, seen?: () => void): Promise<void> {
  const buf = new Uint8Array(64 * 1024);
  try {
    for (;;) {
      const n = await from.read(buf);
      if (n === null) return;
      seen?.();
      for (let off = 0; off < n;) off += await to.write(buf.subarray(off, n));
    }
  } catch { /* either side closed */ }
}
