/**
 * HTTP routes of snapshots (ha-reference §2, §5):
 *
 * - `POST /snapshot`, `POST /databases/{id}/snapshot`: take one now →
 *   `{"database","sequence","size","skipped"}`.
 * - `GET /snapshot`, `GET /databases/{id}/snapshot`: the latest stored SQLite file, as an
 *   attachment named `<id>-snapshot-<seq>.db`, with `X-Sequence`; 404 when there is none. The
 *   file is downloaded from the object store and verified before the answer starts (a snapshot
 *   replaced meanwhile is fetched again, and the headers name the one served), so a body is
 *   never cut short by a concurrent snapshot. `HEAD` reads only the metadata.
 *
 * Object store failures answer 503 with `{"error": ...}`.
 *
 * @module
 */
import { Hono } from "hono";
import type { Context } from "hono";
import { HaError } from "../errors/mod.ts";
import type { Database, Engine } from "../engine/mod.ts";
import { dbOf, json } from "./respond.ts";

/** What the download's headers say of a snapshot. */
export interface SnapshotHeaders {
  sequence: number;
  size: number;
  node: string;
  created: string;
}

/** The part of snapshots these routes use (`Snapshotter` satisfies it). */
export interface SnapshotApi {
  /** Takes a snapshot of `db` now, unless the stored one is as recent (`skipped`). */
  take(db: Database): Promise<{
    database: string;
    sequence: number;
    size: number;
    skipped: boolean;
    reason?: string;
  }>;
  /** The latest snapshot's description, or null (HEAD: nothing is read from the store). */
  latest(dbId: string): Promise<SnapshotHeaders | null>;
  /**
   * The latest snapshot of `dbId` as a stream of a complete, verified copy, or null; `signal`
   * aborts the download (the client went away).
   */
  open(dbId: string, signal?: AbortSignal): Promise<
    {
      info: SnapshotHeaders;
      stream: ReadableStream<Uint8Array>;
    } | null
  >;
}

/**
 * The snapshot routes over `s` for the databases of `engine`.
 *
 * @example
 * ```ts
 * const app = buildApp({ ...appOptions, snapshots: snapshotter });
 * ```
 */
export function snapshotRoutes(engine: Engine, s: SnapshotApi): Hono {
  const app = new Hono();
  const take = async (c: Context) => {
    const db = dbOf(engine, c);
    const r = await s.take(db);
    return json({
      database: r.database,
      sequence: r.sequence,
      size: r.size,
      skipped: r.skipped,
      ...(r.reason ? { reason: r.reason } : {}),
    });
  };
  const download = async (c: Context) => {
    const db = dbOf(engine, c);
    // Hono answers HEAD with the GET route: describe the snapshot without opening its stream.
    const head = c.req.raw.method === "HEAD";
    const snap = head
      ? await s.latest(db.id).then((info) => info && { info, stream: null })
      : await s.open(db.id, c.req.raw.signal);
    if (!snap) throw new HaError("not_found", `no snapshot of database ${db.id}`);
    const { info, stream } = snap;
    const headers = {
      "content-type": "application/vnd.sqlite3",
      "content-length": String(info.size),
      "content-disposition": `attachment; filename="${snapshotFileName(db.id, info.sequence)}"`,
      "x-sequence": String(info.sequence),
      "x-snapshot-node": info.node,
      "x-snapshot-created": info.created,
    };
    return stream ? c.body(stream, 200, headers) : c.body(null, 200, headers);
  };
  app.post("/snapshot", take);
  app.post("/databases/:id/snapshot", take);
  app.get("/snapshot", download);
  app.get("/databases/:id/snapshot", download);
  return app;
}

/** `<id>-snapshot-<seq>.db`, e.g. `app.db-snapshot-42.db`. */
export function snapshotFileName(id: string, sequence: number): string {
  return `${id}-snapshot-${sequence}.db`.replace(/["\\\r\n]/g, "_");
}
