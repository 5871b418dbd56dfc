/**
 * HTTP routes of replication: `GET /replications`, `GET /replications/{name}` (JetStream
 * consumers of the stream, with the status of this node's subscribers), `DELETE
 * /replications/{name}` (deletes a consumer; this node's own `<db>_<node>` is recreated from
 * local progress instead) and `POST /replications/{name}/skip[?seq=N]` (skip a changeset that
 * keeps failing to apply).
 *
 * @module
 */
import { Hono } from "hono";
import { HaError } from "../errors/mod.ts";
import { json } from "./respond.ts";

/**
 * The part of replication these routes use (`Replication` satisfies it). Values are sent as
 * JSON as they are; errors are `HaError`s (`not_found`, `unavailable`).
 */
export interface ReplicationApi {
  /** NATS connected now; null before it was first reached. */
  natsConnected(): boolean | null;
  /** The JetStream consumers of the stream. */
  consumers(): Promise<unknown[]>;
  /** This node's subscribers and publishers, per database. */
  status(): unknown;
  /** Conflict counts, per database and table. */
  conflicts(): Promise<unknown>;
  /** One consumer and, when it is this node's, its subscriber's status. */
  consumer(name: string): Promise<{ info: unknown; status: unknown }>;
  deleteConsumer(name: string): Promise<void>;
  /** Skips the failing changeset of consumer `name` (or up to `seq`); the last skipped seq. */
  skip(name: string, seq?: number): Promise<number>;
}

/** The replication routes over `r`. */
export function replicationRoutes(r: ReplicationApi): Hono {
  const app = new Hono();
  // While NATS is down this answers at once from the node's own state: the consumers (stream
  // positions) are null and `nats` says why, instead of waiting for JetStream to time out.
  app.get("/replications", async () => {
    const connected = r.natsConnected();
    return json({
      replications: connected ? await r.consumers() : null,
      status: r.status(),
      conflicts: await r.conflicts(),
      nats: connected ? "connected" : connected === null ? "not reached yet" : "disconnected",
    });
  });
  app.get("/replications/:name", async (c) => {
    const { info, status } = await r.consumer(c.req.param("name"));
    return json({ replications: info, ...(status ? { status } : {}) });
  });
  app.delete("/replications/:name", async (c) => {
    await r.deleteConsumer(c.req.param("name"));
    return c.body(null, 204);
  });
  app.post("/replications/:name/skip", async (c) => {
    const raw = c.req.query("seq");
    let seq: number | undefined;
    if (raw !== undefined) {
      seq = Number(raw);
      if (!Number.isSafeInteger(seq) || seq < 1) {
        throw new HaError("bad_request", "seq must be a positive integer");
      }
    }
    const skipped = await r.skip(c.req.param("name"), seq);
    return json({ skipped_through: skipped });
  });
  return app;
}
