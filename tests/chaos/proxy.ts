/**
 * A TCP proxy the suite puts between one ha node and one nats-server, to make partitions and
 * latency that the node sees as network faults:
 *
 * - `pass`: forward both ways;
 * - `drop`: reset every open connection and refuse new ones at once (a refused route);
 * - `pause`: keep connections open but forward nothing (a black hole: TCP buffers, no error),
 *   resuming without loss when healed, as TCP does after a short partition;
 * - `delay`: forward each chunk after `delayMs` (latency; throughput drops too).
 *
 * @example
 * ```ts
 * const p = new Proxy({ hostname: "127.0.0.1", port: 4222 });
 * p.url; // nats://127.0.0.1:<free port>
 * p.set("drop");
 * p.set("pass");
 * await p.close();
 * ```
 * @module
 */

/** What the proxy does with traffic. */
export type ProxyMode = "pass" | "drop" | "pause" | "delay";

interface Pair {
  client: Deno.TcpConn;
  upstream: Deno.TcpConn | null;
}

/** A TCP proxy on a free loopback port to `upstream`. */
export class Proxy {
  readonly port: number;
  #mode: ProxyMode = "pass";
  #delayMs = 0;
  #resume: { promise: Promise<void>; resolve: () => void } = Promise.withResolvers<void>();
  readonly #listener: Deno.TcpListener;
  readonly #pairs = new Set<Pair>();
  readonly #accepting: Promise<void>;

  constructor(readonly upstream: { hostname: string; port: number }) {
    this.#listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    this.port = (this.#listener.addr as Deno.NetAddr).port;
    this.#accepting = this.#accept();
  }

  /** `nats://127.0.0.1:<port>`. */
  get url(): string {
    return `nats://127.0.0.1:${this.port}`;
  }

  get mode(): ProxyMode {
    return this.#mode;
  }

  /** Switches mode; `drop` resets open connections. */
  set(mode: ProxyMode, delayMs = 0): void {
    this.#mode = mode;
    this.#delayMs = delayMs;
    if (mode === "drop") { for (const p of this.#pairs) this.#end(p); }
    if (mode !== "pause") {
      this.#resume.resolve();
      this.#resume = Promise.withResolvers<void>();
    }
  }

  /** Stops listening and closes every connection. */
  async close(): Promise<void> {
    try {
      this.#listener.close();
    } catch { /* closed */ }
    for (const p of this.#pairs) this.#end(p);
    this.#resume.resolve();
    await this.#accepting;
  }

  async #accept(): Promise<void> {
    for (;;) {
      let client: Deno.TcpConn;
      try {
        client = await this.#listener.accept();
      } catch {
        return; // listener closed
      }
      if (this.#mode === "drop") {
        client.close();
        continue;
      }
      this.#serve({ client, upstream: null });
    }
  }

  async #serve(pair: Pair): Promise<void> {
    this.#pairs.add(pair);
    try {
      pair.upstream = await Deno.connect(this.upstream);
      await Promise.race([
        this.#pipe(pair.client, pair.upstream),
        this.#pipe(pair.upstream, pair.client),
      ]);
    } catch { /* upstream refused or a side closed */ }
    this.#end(pair);
  }

  async #pipe(from: Deno.Conn, to: Deno.Conn): Promise<void> {
    const buf = new Uint8Array(64 * 1024);
    for (;;) {
      const n = await from.read(buf);
      if (n === null) return;
      while (this.#mode === "pause") await this.#resume.promise;
      if (this.#mode === "drop") return;
      if (this.#mode === "delay" && this.#delayMs > 0) {
        await new Promise((r) => setTimeout(r, this.#delayMs));
      }
      let off = 0;
      while (off < n) off += await to.write(buf.subarray(off, n));
    }
  }

  #end(p: Pair): void {
    if (!this.#pairs.delete(p)) return;
    for (const c of [p.client, p.upstream]) {
      try {
        c?.close();
      } catch { /* closed */ }
    }
  }
}
