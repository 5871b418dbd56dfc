/**
 * Leaderless replication through JetStream: the writer plugin (capture, outbox, apply with
 * last-writer-wins), the pipelined publisher, the subscriber, naming. Its HTTP routes live in
 * `http/`.
 *
 * @example
 * ```ts
 * import { Replication, replicationPlugin } from "./src/replication/mod.ts";
 * const plugin = replicationPlugin(config, incarnation, DEFAULT_MAX_PAYLOAD);
 * const engine = await openEngine({ ...opts, plugins: [plugin] });
 * const nats = connectNats({ servers, name: config.name, logger }); // not awaited
 * const replication = new Replication({
 *   config, engine, nats, maxPayload: DEFAULT_MAX_PAYLOAD, incarnation, logger,
 * });
 * await replication.start(); // serving may begin; NATS is awaited in the background
 * ```
 * @module
 */
export { consumerOf, normaliseName, subjectOf } from "./naming.ts";
export { Publisher, type PublisherOptions, type PublisherStatus } from "./publisher.ts";
export {
  type ApplyFailure,
  Subscriber,
  type SubscriberOptions,
  type SubscriberStatus,
} from "./subscriber.ts";
export {
  type DatabaseReplicationStatus,
  DEFAULT_MAX_PAYLOAD,
  Replication,
  type ReplicationOptions,
  replicationPlugin,
} from "./service.ts";
export {
  type ApplyMessage,
  type ApplyResult,
  type CommitPayload,
  type OutboxRow,
  REPLICATION_PLUGIN,
  type ReplicationClient,
  replicationClient,
  type ReplicationCommands,
  type ReplicationPluginOptions,
} from "./plugin_api.ts";
