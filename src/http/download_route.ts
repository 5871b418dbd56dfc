/**
 * The backup download (ha-reference §2): `GET /download`, `GET /databases/{id}/download` →
 * a consistent copy of the database as an SQLite file attachment.
 *
 * @module
 */
import { Hono } from "hono";
import type { Context } from "hono";
import type { Engine } from "../engine/mod.ts";
import { dbOf } from "./respond.ts";

/** The download routes over `engine`. */
export function downloadRoute(engine: Engine): Hono {
  const app = new Hono();
  const download = async (c: Context) => {
    const db = dbOf(engine, c);
    const dir = await Deno.makeTempDir({ prefix: "ha-download-" });
    const path = `${dir}/${db.id}`;
    const cleanup = () => Deno.remove(dir, { recursive: true }).catch(() => {});
    try {
      await db.backupTo(path);
      const file = await Deno.open(path, { read: true });
      const size = (await file.stat()).size;
      // The file is unlinked once opened; the open handle keeps the data readable.
      await cleanup();
      return c.body(file.readable, 200, {
        "content-type": "application/vnd.sqlite3",
        "content-length": String(size),
        "content-disposition": `attachment; filename="${downloadName(db.id)}"`,
      });
    } catch (e) {
      await cleanup();
      throw e;
    }
  };
  app.get("/download", download);
  app.get("/databases/:id/download", download);
  return app;
}

/** `<id>-<UTC timestamp>.db`, e.g. `ha.db-20261126T065411Z.db`. */
export function downloadName(id: string, now = new Date()): string {
  const ts = now.toISOString().replace(/[-:]/g, "").replace(/\.\d+Z$/, "Z");
  return `${id}-${ts}.db`.replace(/["\\\r\n]/g, "_");
}
