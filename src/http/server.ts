/**
 * The HTTP listener: the public {@link HttpFront} (connection cap, header and idle timeouts)
 * serving the Hono app with Deno's HTTP server, with a graceful stop.
 */
import { HaError } from "../errors/mod.ts";
import type { Logger } from "../log/mod.ts";
import { HttpFront } from "./front.ts";
import { type AppOptions, buildFetch } from "./app.ts";

/** Options for {@link HttpServer}. */
export interface HttpServerOptions extends AppOptions {
  port: number;
  /** Interface to listen on (`--http-addr`). Default `127.0.0.1`. */
  hostname?: string;
  /** `--max-connections`. Default 500. */
  maxConnections?: number;
  /** `--http-header-timeout` in ms. Default 10 s. */
  headerTimeoutMs?: number;
  /** `--http-idle-timeout` in ms. Default 60 s. */
  idleTimeoutMs?: number;
}

/** Serves the API until {@link HttpServer.stop}. */
export class HttpServer {
  private front: HttpFront | null = null;
  private boundPort = 0;
  private readonly logger: Logger;

  constructor(private readonly opts: HttpServerOptions) {
    this.logger = opts.logger.child({ component: "http" });
  }

  /** Starts listening; rejects with a clear error when the address cannot be bound. */
  start(): Promise<void> {
    const fetch = buildFetch(this.opts);
    const hostname = this.opts.hostname ?? "127.0.0.1";
    this.front = new HttpFront({
      hostname,
      port: this.opts.port,
      maxConnections: this.opts.maxConnections ?? 500,
      headerTimeoutMs: this.opts.headerTimeoutMs ?? 10_000,
      idleTimeoutMs: this.opts.idleTimeoutMs ?? 60_000,
      handler: (req) => fetch(req),
      onError: (e) => {
        this.logger.error("http handler error", { error: e });
        return new Response(JSON.stringify({ error: "internal error" }), { status: 500 });
      },
      logger: this.logger,
    });
    try {
      this.boundPort = this.front.listen().port;
    } catch (e) {
      this.front = null;
      const why = e instanceof Deno.errors.AddrInUse
        ? "address already in use"
        : (e as Error).message;
      return Promise.reject(
        new HaError(
          "unavailable",
          `cannot listen on ${hostname}:${this.opts.port} (--http-addr, --port): ${why}`,
        ),
      );
    }
    this.logger.info("http listening", { hostname, port: this.boundPort });
    return Promise.resolve();
  }

  /** The bound port. */
  get port(): number {
    return this.boundPort;
  }

  /** Stops accepting and waits for in-flight requests. Idempotent. */
  async stop(): Promise<void> {
    const f = this.front;
    this.front = null;
    await f?.closeAll();
  }
}
