/**
 * A changeset's id (its `Nats-Msg-Id`) must not repeat across incarnations of a node. A memory
 * node restarted with a clock that went back (the chaos suite's clock jump) issues HLCs its
 * previous run already used; with an id of only `<db>:<node>:<hlc>`, JetStream took the new
 * changeset for a resend within its duplicate window, dropped it and acknowledged it: a write
 * answered 200 that no other node ever got (chaos seed 5, `--faults clock,partition,stop`).
 *
 * The test makes the collision deterministic: a message from "the previous run" carries the id
 * the old scheme gives node1's next write, and a remote changeset fixes that write's HLC.
 */
import assert from "node:assert/strict";
import { jetstream, jetstreamManager } from "@nats-io/jetstream";
import { headers } from "@nats-io/transport-node";
import { type ChangeSet, encodeChangeSet, encodeValue } from "../../src/cdc/mod.ts";
import { createLogger } from "../../src/log/mod.ts";
import { connectNats } from "../../src/nats/mod.ts";
import { INCARNATION_HEADER, NODE_HEADER } from "../../src/replication/headers.ts";
import { waitFor, withCluster } from "./helpers/cluster.ts";

const opts = { sanitizeOps: false, sanitizeResources: false };

function insert(id: string, node: string, incarnation: string, hlc: number, k: string): ChangeSet {
  return {
    id,
    node,
    incarnation,
    db: "ha.db",
    hlc,
    timestamp_ns: 0,
    changes: [{
      database: "main",
      table: "t",
      columns: ["k"],
      pk_columns: ["k"],
      operation: "INSERT",
      new_rowid: null,
      new_values: [encodeValue(k)],
      hlc,
    }],
  };
}

Deno.test(
  "a write whose HLC a previous run of the node used is still replicated",
  opts,
  async () => {
    await withCluster(2, async ([n1, n2], cluster) => {
      await n1.sql("CREATE TABLE t(k TEXT PRIMARY KEY) WITHOUT ROWID");
      await cluster.waitConverged([n1, n2], ["t"]);

      // node1's next HLC will be x + 1 once it applied the remote changeset at x (ahead of its
      // clock, within --max-clock-skew).
      const x = (Date.now() + 20_000) * 1000;
      const nc = await connectNats({
        servers: [n1.natsUrl!],
        name: "test",
        logger: createLogger("error"),
      });
      try {
        const jsm = await jetstreamManager(nc.nc);
        const subject = (await jsm.streams.getMessage("ha_replication", { seq: 1 }))!.subject;
        const js = jetstream(nc.nc);
        const send = async (cs: ChangeSet) => {
          const h = headers();
          h.set(NODE_HEADER, cs.node);
          h.set(INCARNATION_HEADER, cs.incarnation);
          const ack = await js.publish(subject, encodeChangeSet(cs), { msgID: cs.id, headers: h });
          assert.equal(ack.duplicate, false);
        };
        // What node1's previous run published under the id the old scheme gives HLC x + 1.
        await send(
          insert(`ha.db:node1:${x + 1}`, "node1", "previous-run", Date.now() * 1000, "old"),
        );
        await send(insert(`ha.db:node9:${x}`, "node9", "i9", x, "remote"));
      } finally {
        await nc.close();
      }
      const keys = async (n: typeof n1) =>
        (await n.sql("SELECT k FROM t ORDER BY k")).rows.map((r) => String(r[0]));
      await waitFor("node1 applied both", async () => (await keys(n1)).length === 2);

      await n1.sql("INSERT INTO t(k) VALUES ('new')");
      await waitFor("node2 has node1's write", async () => (await keys(n2)).includes("new"));
      assert.deepEqual(await keys(n2), ["new", "old", "remote"]);
    });
  },
);
