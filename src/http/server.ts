/** The HTTP listener: Deno.serve over the Hono app, with a graceful stop. */
import type { Logger } from "../log/mod.ts";
import { buildApp, type RoutesOptions } from "./routes.ts";

/** Options for {@link HttpServer}. */
export interface HttpServerOptions extends RoutesOptions {
  port: number;
  hostname?: string;
}

/** Serves the API until {@link HttpServer.stop}. */
export class HttpServer {
  private server: Deno.HttpServer | null = null;
  private readonly logger: Logger;

  constructor(private readonly opts: HttpServerOptions) {
    this.logger = opts.logger.child({ component: "http" });
  }

  /** Starts listening; rejects with a clear error when the port is taken. */
  start(): Promise<void> {
    const app = buildApp(this.opts);
    return new Promise((resolve, reject) => {
      try {
        this.server = Deno.serve({
          port: this.opts.port,
          hostname: this.opts.hostname ?? "0.0.0.0",
          onListen: ({ port, hostname }) => {
            this.logger.info("http listening", { hostname, port });
            resolve();
          },
          onError: (e) => {
            this.logger.error("http handler error", { error: e });
            return new Response(JSON.stringify({ error: "internal error" }), { status: 500 });
          },
        }, app.fetch);
      } catch (e) {
        reject(e);
      }
    });
  }

  /** The bound port. */
  get port(): number {
    return (this.server?.addr as Deno.NetAddr | undefined)?.port ?? 0;
  }

  /** Stops accepting and waits for in-flight requests. Idempotent. */
  async stop(): Promise<void> {
    const s = this.server;
    this.server = null;
    if (s) await s.shutdown();
  }
}
