/**
 * The public HTTP listener. `Deno.serve` has no connection cap and no header or idle timeouts,
 * so this front accepts the TCP connections itself and hands each one to Deno's HTTP server
 * (`serveHttpOnConnection`, the per-connection form of `Deno.serve`), which gives:
 *
 * - a connection cap: past `maxConnections` a client gets `503` and the connection closes;
 * - a header timeout: a new connection without a complete request head within
 *   `headerTimeoutMs` is closed (slowloris);
 * - an idle timeout: a keep-alive connection without a request for `idleTimeoutMs` after its
 *   last response is closed (as is one that then sends a partial head: no front can see those
 *   bytes, so such a connection holds its slot no longer than an idle one does).
 *
 * (Piping each connection to an internal `Deno.serve` instead reads and writes every byte twice:
 * three times the CPU per small request, docs/perf.md.)
 *
 * @module
 */
import { HaError } from "../errors/mod.ts";
import type { Logger } from "../log/mod.ts";

/** What a request handler gets: the request and when its response has been sent. */
export type FrontHandler = (
  req: Request,
  info: Deno.ServeHandlerInfo<Deno.NetAddr>,
) => Response | Promise<Response>;

/** Options of {@link HttpFront}. */
export interface HttpFrontOptions {
  hostname: string;
  port: number;
  maxConnections: number;
  headerTimeoutMs: number;
  idleTimeoutMs: number;
  handler: FrontHandler;
  onError: (e: unknown) => Response;
  logger: Logger;
}

/** Deno's `serveHttpOnConnection` (ext/http/00_serve.ts): `Deno.serve` on one accepted conn. */
type ServeOn = (
  conn: Deno.Conn,
  signal: AbortSignal,
  handler: FrontHandler,
  onError: (e: unknown) => Response,
  onListen: () => void,
) => { finished: Promise<void> };

/** Found once; the front cannot work without it (checked by tests/unit/http_front_test.ts). */
export function serveOnConnection(): ServeOn {
  const internal = (Deno as unknown as Record<symbol, Record<string, unknown>>)[
    (Deno as unknown as { internal: symbol }).internal
  ];
  const f = internal?.serveHttpOnConnection;
  if (typeof f !== "function") {
    throw new HaError(
      "internal",
      `this Deno (${Deno.version.deno}) has no serveHttpOnConnection: ha's HTTP front needs Deno 2.9`,
    );
  }
  return f as ServeOn;
}

/** One client connection served by Deno's HTTP server. */
class Served {
  /** Requests being handled. */
  active = 0;
  /** Responses sent: before the first, the header timeout applies, then the idle one. */
  answered = 0;
  /** When the connection last had no request in progress. */
  idleSince = performance.now();
  /** Aborting it closes the connection (at once: only done with no request in progress). */
  readonly close = new AbortController();
}

const TOO_MANY_BODY = JSON.stringify({ error: "too many connections (--max-connections)" });
const TOO_MANY = new TextEncoder().encode(
  "HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\nconnection: close\r\n" +
    `content-length: ${TOO_MANY_BODY.length}\r\n\r\n${TOO_MANY_BODY}`,
);

/** Accepts clients, enforces the limits, serves each connection with Deno's HTTP server. */
export class HttpFront {
  private listener: Deno.Listener | null = null;
  private readonly conns = new Set<Served>();
  private readonly tasks = new Set<Promise<void>>();
  private timer: ReturnType<typeof setInterval> | undefined;
  private stopping = false;
  private readonly serveOn = serveOnConnection();

  constructor(private readonly opts: HttpFrontOptions) {}

  /** Starts listening; throws Deno's error when the address cannot be bound. */
  listen(): Deno.NetAddr {
    this.listener = Deno.listen({ hostname: this.opts.hostname, port: this.opts.port });
    const tick = Math.max(50, Math.min(1000, this.opts.headerTimeoutMs / 4));
    this.timer = setInterval(() => this.expire(), tick);
    this.track(this.accept(this.listener));
    return this.listener.addr as Deno.NetAddr;
  }

  /** Stops accepting new connections. */
  closeListener(): void {
    clearInterval(this.timer);
    try {
      this.listener?.close();
    } catch { /* closed */ }
    this.listener = null;
  }

  /**
   * Stops accepting, closes idle connections at once and the others once their requests are
   * answered; resolves when every connection has ended.
   */
  async closeAll(): Promise<void> {
    this.closeListener();
    this.stopping = true;
    for (const s of this.conns) if (s.active === 0) closeNow(s);
    while (this.tasks.size) await Promise.allSettled([...this.tasks]);
  }

  private track(t: Promise<void>): void {
    this.tasks.add(t);
    t.finally(() => this.tasks.delete(t));
  }

  private expire(): void {
    const now = performance.now();
    for (const s of this.conns) {
      if (s.active > 0) continue;
      const limit = s.answered ? this.opts.idleTimeoutMs : this.opts.headerTimeoutMs;
      if (now - s.idleSince > limit) {
        this.opts.logger.debug("http connection timed out", {
          reason: s.answered ? "idle (--http-idle-timeout)" : "headers (--http-header-timeout)",
        });
        closeNow(s);
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
        this.opts.logger.warn("http accept failed", { error: e });
        await new Promise((r) => setTimeout(r, 50));
        continue;
      }
      if (this.conns.size >= this.opts.maxConnections) {
        this.track(refuse(conn));
        continue;
      }
      (conn as Deno.TcpConn).setNoDelay?.(true);
      this.track(this.serve(conn));
    }
  }

  private async serve(conn: Deno.Conn): Promise<void> {
    const s = new Served();
    this.conns.add(s);
    try {
      const done = () => {
        s.answered++;
        if (--s.active > 0) return;
        s.idleSince = performance.now();
        if (this.stopping) closeNow(s);
      };
      const handler: FrontHandler = (req, info) => {
        s.active++;
        info.completed.then(done, done);
        return this.opts.handler(req, info);
      };
      await this.serveOn(conn, s.close.signal, handler, this.opts.onError, () => {}).finished;
    } catch (e) {
      this.opts.logger.debug("http connection ended", { error: e });
    } finally {
      this.conns.delete(s);
    }
  }
}

/**
 * Closes a served connection at once. Deno's abort listener closes the connection's HTTP
 * resource, which may be gone already: a client that closed a moment before (its `finished` not
 * settled yet). That BadResource is raised inside the abort event's dispatch, where it is an
 * uncaught error that ends the process (seen when a node was stopped right after a load ended);
 * it only means the connection is closed, so it is swallowed for the length of the call.
 */
function closeNow(s: Served): void {
  globalThis.addEventListener("error", goneAlready);
  try {
    s.close.abort();
  } finally {
    globalThis.removeEventListener("error", goneAlready);
  }
}

function goneAlready(e: ErrorEvent): void {
  if (e.error instanceof Deno.errors.BadResource) e.preventDefault();
}

async function refuse(conn: Deno.Conn): Promise<void> {
  try {
    await conn.write(TOO_MANY);
  } catch { /* gone */ }
  try {
    conn.close();
  } catch { /* closed */ }
}
