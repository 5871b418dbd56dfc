/**
 * The one place that opens NATS connections (use {@link connectNats} elsewhere).
 *
 * A transport for nats-core on Deno's own sockets (`Deno.connect`, `Deno.startTls`) instead of
 * `@nats-io/transport-node`'s `node:net`/`node:tls`, whose polyfill (streams, event emitters,
 * callbacks per write) cost 12–15 % of the origin's main thread per replicated write
 * (docs/perf.md §9). Modelled on nats.deno's `DenoTransport` (JSR only), with ha's needs: TLS
 * upgrade when the server's INFO asks for it (or `tls://`), a CA file, quiet closes (a socket the
 * server closes, e.g. after `-ERR 'Authorization Violation'`, only ends the read loop: errors of
 * Deno's socket ops are rejected promises this class always handles), and host names resolved like
 * Node does (`getaddrinfo`: `/etc/hosts` included).
 *
 * nats-core keeps the transport factory in a module-global; `transport-node`'s own `connect` would
 * reset it to the stock transport, so ha code must not call that `connect` directly.
 *
 * @module
 */

import {
  type ConnectionOptions,
  type NatsConnection,
  NatsConnectionImpl,
  type Server,
  type ServerInfo,
  setTransportFactory,
  type Transport,
} from "@nats-io/transport-node";
import {
  checkOptions,
  checkUnsupportedOption,
  DataBuffer,
  deferred,
  errors,
  extractProtocolMessage,
  INFO,
} from "@nats-io/transport-node/lib/nats-base-client.js";
import { nodeResolveHost, VERSION } from "@nats-io/transport-node/lib/node_transport.js";

/** Bytes asked of the socket per read (one read buffer per connection, reused). */
const READ_SIZE = 256 * 1024;

/** nats-core's `Transport` on `Deno.TcpConn`/`Deno.TlsConn`. */
export class DenoTransport implements Transport {
  readonly lang = "nats.js";
  readonly version = VERSION;
  closeError?: Error;
  #conn?: Deno.TcpConn | Deno.TlsConn;
  #encrypted = false;
  #done = false;
  #readBuf = new Uint8Array(READ_SIZE);
  /** What was read with the INFO line, handed to the parser first. */
  #first: Uint8Array = new Uint8Array(0);
  #outbox: Uint8Array[] = [];
  #writing: Promise<void> | null = null;
  #closed = deferred<void | Error>();

  get isClosed(): boolean {
    return this.#done;
  }

  async connect(hp: Server, options: ConnectionOptions): Promise<void> {
    const tls = options.tls ?? {};
    // Deno.startTls takes CA certificates only; ha passes nothing else.
    for (const k of ["ca", "cert", "certFile", "key", "keyFile", "handshakeFirst"] as const) {
      checkUnsupportedOption(`tls.${k}`, tls[k]);
    }
    try {
      const tcp = await Deno.connect({ hostname: hp.hostname, port: hp.port });
      this.#conn = tcp;
      // The protocol may have given up (connect timeout) meanwhile.
      if (this.#done) throw new Error("closed while connecting");
      tcp.setNoDelay(true);
      const info = await this.#peekInfo(tcp);
      checkOptions(info, options);
      if (info.tls_required || (info.tls_available && options.tls !== null)) {
        const caCerts = tls.caFile ? [await Deno.readTextFile(tls.caFile)] : undefined;
        const conn = await Deno.startTls(tcp, { hostname: hp.tlsName || hp.hostname, caCerts });
        this.#conn = conn;
        // Certificate errors surface here rather than at the first write.
        await conn.handshake();
        this.#encrypted = true;
      }
      if (this.#done) throw new Error("closed while connecting");
    } catch (err) {
      this.#closeConn();
      throw new errors.ConnectionError((err as Error).message.toLowerCase(), { cause: err });
    }
  }

  /** Reads until the server's first protocol line (INFO), keeping all bytes read. */
  async #peekInfo(conn: Deno.TcpConn): Promise<ServerInfo> {
    const inbound = new DataBuffer();
    let line = "";
    while (line === "") {
      const n = await conn.read(this.#readBuf);
      if (n === null) throw new Error("socket closed while expecting INFO");
      inbound.fill(this.#readBuf.slice(0, n));
      line = extractProtocolMessage(inbound.peek());
    }
    this.#first = inbound.drain();
    const m = INFO.exec(line);
    if (!m) throw new Error("unexpected response from server");
    return JSON.parse(m[1]) as ServerInfo;
  }

  async *[Symbol.asyncIterator](): AsyncIterableIterator<Uint8Array> {
    yield this.#first;
    let reason: Error | undefined;
    while (!this.#done) {
      try {
        const n = await this.#conn!.read(this.#readBuf);
        if (n === null) break;
        // A copy: the parser hands out subarrays of what it is given (message payloads).
        if (n > 0) yield this.#readBuf.slice(0, n);
      } catch (err) {
        reason = err as Error;
        break;
      }
    }
    await this.#close(reason, true);
  }

  isEncrypted(): boolean {
    return this.#encrypted;
  }

  send(frame: Uint8Array): void {
    // The protocol sends only once connected; `#drainOutbox` then always awaits a write.
    if (this.#done || !this.#conn) return;
    this.#outbox.push(frame);
    this.#writing ??= this.#drainOutbox();
  }

  /** Writes queued frames, those queued meanwhile joined into one write. */
  async #drainOutbox(): Promise<void> {
    try {
      while (this.#outbox.length > 0) {
        const frames = this.#outbox;
        this.#outbox = [];
        const buf = frames.length === 1 ? frames[0] : DataBuffer.concat(...frames);
        for (let off = 0; off < buf.length;) off += await this.#conn!.write(buf.subarray(off));
      }
    } catch {
      // The read side notices a broken connection (or the ping timer a stale one).
      this.#outbox = [];
    } finally {
      this.#writing = null;
    }
  }

  close(err?: Error): Promise<void> {
    return this.#close(err, false);
  }

  disconnect(): void {
    this.#close(undefined, true).catch(() => {});
  }

  /** Called on a transport being replaced; a socket still open is let go of quietly. */
  discard(): void {
    this.#done = true;
    this.#closeConn();
  }

  /**
   * Ends the connection. `internal` (the socket ended, or a disconnect): flushes what is queued
   * unless there was an error, and tells the protocol through {@link closed}.
   */
  async #close(err: Error | undefined, internal: boolean): Promise<void> {
    if (this.#done) {
      this.#closeConn();
      return;
    }
    this.#done = true;
    this.closeError = err;
    if (!err && internal && this.#writing) await this.#writing;
    this.#closeConn();
    if (internal) this.#closed.resolve(err);
  }

  #closeConn(): void {
    try {
      this.#conn?.close();
    } catch {
      // Already closed.
    }
  }

  closed(): Promise<void | Error> {
    return this.#closed;
  }
}

/**
 * Connects with {@link DenoTransport}.
 *
 * @example
 * ```ts
 * const nc = await rawConnect({ servers: ["127.0.0.1:4222"], reconnect: false });
 * await nc.close();
 * ```
 */
export function rawConnect(opts: ConnectionOptions): Promise<NatsConnection> {
  setTransportFactory({ factory: () => new DenoTransport(), dnsResolveFn: nodeResolveHost });
  return NatsConnectionImpl.connect(opts);
}
