/**
 * Where a replication consumer starts when its database has no recorded progress: the
 * `--replication-policy` as JetStream consumer settings (see `subscriber.ts`).
 *
 * @example
 * ```ts
 * startOf({ kind: "all" }); // { deliver_policy: DeliverPolicy.All }
 * ```
 * @module
 */
import { type ConsumerConfig, DeliverPolicy } from "@nats-io/jetstream";
import type { ReplicationPolicy } from "../config/mod.ts";

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
