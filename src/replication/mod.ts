/**
 * Leaderless replication through JetStream: the writer plugin (capture, outbox, apply with
 * last-writer-wins), the pipelined publisher, the subscriber, naming and HTTP routes.
 *
 * @example
 * ```ts
 * import { Replication, replicationPlugin } from "./src/replication/mod.ts";
 * const engine = await openEngine({ ...opts, plugins: [replicationPlugin(config, incarnation)] });
 * const replication = new Replication({ config, engine, nats, pluginIndex: 0, logger });
 * await replication.start();
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
export { replicationRoutes } from "./routes.ts";
export type {
  ApplyMessage,
  ApplyResult,
  CommitPayload,
  OutboxRow,
  ReplicationPluginOptions,
} from "./writer_plugin.ts";
