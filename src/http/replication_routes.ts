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
import { jsonResponse } from "./respond.ts";

/**
 * The part of replication these routes use (`Replication` satisfies it). Values are sent as
 * JSON as they are; errors are `HaError`s (`not_found`, `unavailable`).
 */
export interface ReplicationApi {
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
  app.get(
    "/replications",
    async (c) =>
      jsonResponse(c, {
        replications: await r.consumers(),
        status: r.status(),
        conflicts: await r.conflicts(),
      }),
  );
  app.get("/replications/:name", async (c) => {
    const { info, status } = await r.consumer(c.req.param("name"));
    return jsonResponse(c, { replications: info, ...(status ? { status } : {}) });
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
    return jsonResponse(c, { skipped_through: skipped });
  });
  return app;
}
