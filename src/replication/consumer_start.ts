/**
 * Where a replication consumer starts when its database has no recorded progress: the
 * `--replication-policy` as JetStream consumer settings; and the consumer's replacement (see
 * `subscriber.ts`).
 *
 * @example
 * ```ts
 * startOf({ kind: "all" }); // { deliver_policy: DeliverPolicy.All }
 * ```
 * @module
 */
import {
  AckPolicy,
  type ConsumerConfig,
  type ConsumerInfo,
  DeliverPolicy,
} from "@nats-io/jetstream";
import type { ReplicationPolicy } from "../config/mod.ts";
import { isNotFound, isTimeout } from "../nats/mod.ts";
import type { SubscriberOptions } from "./subscriber_types.ts";

/** A consumer left by a killed process goes away by itself after this long (ns). */
const CONSUMER_INACTIVE_THRESHOLD_NS = 60_000_000_000;

/** The start the policy selects, for a consumer of a database without recorded progress. */
export function startOf(policy: ReplicationPolicy): Partial<ConsumerConfig> {
  switch (policy.kind) {
    case "all":
      return { deliver_policy: DeliverPolicy.All };
    case "last":
      return { deliver_policy: DeliverPolicy.Last };
    case "new":
      return { deliver_policy: DeliverPolicy.New };
    case "by_start_sequence":
      return { deliver_policy: DeliverPolicy.StartSequence, opt_start_seq: policy.seq };
    case "by_start_time":
      return { deliver_policy: DeliverPolicy.StartTime, opt_start_time: policy.time.toISOString() };
  }
}

/**
 * Deletes the node's consumer `o.consumer` (left by an earlier process or this one, with whatever
 * pull requests it still holds) and creates it anew from `start`: ack-none, in memory, filtered
 * to `o.subject`.
 */
export async function replaceConsumer(
  o: Pick<SubscriberOptions, "jsm" | "jsmDelete" | "stream" | "consumer" | "subject">,
  start: Partial<ConsumerConfig>,
): Promise<ConsumerInfo> {
  const { jsm, stream, consumer } = o;
  try {
    await (o.jsmDelete ?? jsm).consumers.delete(stream, consumer);
  } catch (e) {
    // Unanswered: most likely a consumer on a server that is down (the metadata leader removes
    // it, but only its own server answers). Creating goes on: were it still there, `add` would
    // refuse the new start or return it with its deliveries (checked below), and a pull it
    // still holds would show as a delivery gap; the caller then retries.
    if (!isNotFound(e) && !isTimeout(e)) {
      throw new Error(`deleting consumer: ${(e as Error).message}`);
    }
  }
  const cfg: Partial<ConsumerConfig> = {
    name: consumer,
    filter_subject: o.subject,
    ack_policy: AckPolicy.None,
    mem_storage: true,
    num_replicas: 1,
    inactive_threshold: CONSUMER_INACTIVE_THRESHOLD_NS,
    ...start,
  };
  const ci = await jsm.consumers.add(stream, cfg).catch((e: Error) => {
    throw new Error(`creating consumer: ${e.message}`);
  });
  if (ci.delivered.consumer_seq !== 0) {
    // Not ours: an older one of that name (its deletion not applied yet in a NATS cluster).
    throw new Error(
      `consumer ${consumer} still exists with ${ci.delivered.consumer_seq} deliveries`,
    );
  }
  return ci;
}
