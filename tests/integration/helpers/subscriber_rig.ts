/**
 * A subscriber's surroundings for integration tests of `src/replication/subscriber.ts`: a real
 * nats-server with a stream `S` on `S.>`, a client connection, and a replication node `b` (the
 * writer plugin on a memory engine) whose database the subscriber applies to.
 * @module
 */
import { jetstream, jetstreamManager } from "@nats-io/jetstream";
import { connect } from "@nats-io/transport-node";
import { createLogger } from "../../../src/log/mod.ts";
import { Subscriber, type SubscriberOptions } from "../../../src/replication/mod.ts";
import { node } from "../../unit/helpers/replication_nodes.ts";
import { Cluster, freePort } from "./cluster.ts";

/** Starts the server, the stream and node `b`; `close` stops them (the subscriber first). */
export async function subscriberRig(name: string) {
  const cluster = new Cluster();
  const port = freePort();
  const nats = await cluster.natsServer(name, port);
  await nats.start();
  const nc = await connect({ servers: [`127.0.0.1:${port}`] });
  const b = await node("b");
  const jsm = await jetstreamManager(nc);
  await jsm.streams.add({ name: "S", subjects: ["S.>"] });
  const db = b.engine.defaultDb;
  return {
    nc,
    jsm,
    db,
    /** A subscriber of `S.db` as consumer `db_b` applying to `db`; `o` replaces any option. */
    subscriber(o: Partial<SubscriberOptions> = {}): Subscriber {
      return new Subscriber({
        js: jetstream(nc),
        jsm,
        stream: "S",
        subject: "S.db",
        consumer: "db_b",
        db,
        policy: { kind: "all" },
        logger: createLogger("error"),
        self: { node: "b", incarnation: "i" },
        onReconnect: () => () => {},
        ...o,
      });
    },
    async close(): Promise<void> {
      await b.engine.close();
      await nc.close();
      await nats.stop();
      await cluster.stop();
    },
  };
}
