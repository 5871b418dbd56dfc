/**
 * HTTP routes of replication, mounted through the `RouteExtension` hook: `GET /replications`,
 * `GET /replications/{name}` (JetStream consumers of the stream, with the status of this node's
 * subscribers), `DELETE /replications/{name}` (deletes a consumer; this node's own `<db>_<node>`
 * is recreated from local progress instead) and `POST /replications/{name}/skip[?seq=N]` (skip a
 * changeset that keeps failing to apply).
 *
 * @module
 */
import type { RouteExtension } from "../http/routes.ts";
import { jsonResponse } from "../http/routes.ts";
import { HaError } from "../errors/mod.ts";
import type { Replication } from "./service.ts";

/** The replication routes of a node. */
export function replicationRoutes(r: Replication): RouteExtension {
  return (app) => {
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
  };
}
