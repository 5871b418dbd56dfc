/**
 * NATS for ha: finding, configuring, starting and supervising the embedded nats-server, and
 * connecting to it or to an external server (`--replication-url`).
 *
 * @example
 * ```ts
 * import { connectNats, EmbeddedNatsServer, findNatsServer } from "./src/nats/mod.ts";
 *
 * const bin = await findNatsServer({ flag: config.natsServerBin ?? null });
 * const server = new EmbeddedNatsServer({
 *   bin, port: 4222, storeDir: "/data/nats", serverName: "node1", logger,
 * });
 * await server.start();
 * const client = await connectNats({ servers: [server.url!], name: "node1", logger });
 * // ... replication uses client.nc ...
 * await client.drain();
 * await server.stop();
 * ```
 *
 * @module
 */

export {
  EMBEDDED_NATS_SERVER_URL,
  findNatsServer,
  type FindNatsServerOptions,
  NATS_SERVER_NOT_FOUND,
  WELL_KNOWN_DIRS,
} from "./find.ts";
export {
  DEFAULT_MAX_PAYLOAD,
  EmbeddedNatsServer,
  type EmbeddedNatsServerOptions,
  type NatsServerState,
  type NatsServerStatus,
} from "./server.ts";
export {
  connectNats,
  type ConnectNatsOptions,
  type NatsClient,
  type ParsedServers,
  parseServers,
} from "./client.ts";
export { JetStreamPublisher, type StreamPublish } from "./publish.ts";
export { normaliseServerName } from "./server_config.ts";
export {
  isNotFound,
  isPayloadTooLarge,
  isStreamNameInUse,
  isTimeout,
  isWrongLastSequence,
  STREAM_NAME_IN_USE,
} from "./errors.ts";
