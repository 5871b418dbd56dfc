/**
 * The one place that opens NATS connections (use {@link connectNats} elsewhere).
 *
 * `@nats-io/transport-node` on Deno: when the server closes a connection itself (for example
 * `-ERR 'Authorization Violation'`), the transport removes the socket's listeners and destroys it,
 * yet Deno's `node:net` still emits a late `ECONNRESET` `error` event on that socket, which, with no
 * listener left, becomes an uncaught exception that kills the process. This subclass leaves a
 * no-op `error` listener on every socket it lets go of. All other behaviour (TLS included) is the
 * stock transport's.
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
  setTransportFactory,
} from "@nats-io/transport-node";
import { nodeResolveHost, NodeTransport } from "@nats-io/transport-node/lib/node_transport.js";

const ignore = () => {};

class QuietCloseTransport extends NodeTransport {
  override discard(): void {
    const socket = this.socket;
    super.discard();
    socket?.on("error", ignore);
  }

  override close(err?: Error): Promise<void> {
    const socket = this.socket;
    return super.close(err).finally(() => socket?.on("error", ignore));
  }

  /**
   * The socket's chunks as plain `Uint8Array` views of the same bytes: the protocol parser takes
   * several `subarray`s per message, which on `node:net`'s `Buffer` chunks each make a Node
   * `FastBuffer` (issue 13: a catching-up replica's main thread).
   */
  override async *iterate(): AsyncGenerator<Uint8Array> {
    for await (const frame of super.iterate()) {
      yield new Uint8Array(frame.buffer, frame.byteOffset, frame.byteLength);
    }
  }
}

/**
 * `connect` of `@nats-io/transport-node` with the late-`ECONNRESET` fix above.
 *
 * @example
 * ```ts
 * const nc = await rawConnect({ servers: ["127.0.0.1:4222"], reconnect: false });
 * await nc.close();
 * ```
 */
export function rawConnect(opts: ConnectionOptions): Promise<NatsConnection> {
  setTransportFactory({ factory: () => new QuietCloseTransport(), dnsResolveFn: nodeResolveHost });
  return NatsConnectionImpl.connect(opts);
}
