/**
 * A subscriber's surroundings for integration tests of `src/replication/subscriber.ts`: a real
 * nats-server with a stream `S` on `S.>`, a client connection, and a replication node `b` (the
 * writer plugin on a memory engine) whose database the subscriber applies to.
 * @module
 */
import { jetstreamManager } from "@nats-io/jetstream";
import { connect } from "@nats-io/transport-node";
import { node } from "../../unit/helpers/replication_plugin_nodes.ts";
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
  return {
    nc,
    jsm,
    db: b.engine.defaultDb,
    async close(): Promise<void> {
      await b.engine.close();
      await nc.close();
      await nats.stop();
      await cluster.stop();
    },
  };
}
