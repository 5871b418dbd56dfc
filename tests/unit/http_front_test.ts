/** The HTTP front: Deno's per-connection server, the connection cap and a graceful stop. */
import assert from "node:assert/strict";
import { HttpFront, serveOnConnection } from "../../src/http/front.ts";
import { createLogger } from "../../src/log/mod.ts";

Deno.test("this Deno has serveHttpOnConnection (the front depends on it)", () => {
  assert.equal(typeof serveOnConnection(), "function");
});

Deno.test("front: serves keep-alive requests, refuses past the cap, stop waits for a request", async () => {
  let release = () => {};
  let started = () => {};
  const slowStarted = new Promise<void>((r) => started = r);
  const front = new HttpFront({
    hostname: "127.0.0.1",
    port: 0,
    maxConnections: 1,
    headerTimeoutMs: 10_000,
    idleTimeoutMs: 10_000,
    handler: async (req) => {
      if (new URL(req.url).pathname === "/slow") {
        started();
        await new Promise<void>((r) => release = r);
      }
      return new Response(`${req.method} ${new URL(req.url).pathname}`);
    },
    onError: () => new Response("error", { status: 500 }),
    logger: createLogger("error"),
  });
  const { port } = front.listen();
  const client = Deno.createHttpClient({ poolMaxIdlePerHost: 1 });
  try {
    for (const path of ["/a", "/b"]) {
      const r = await fetch(`http://127.0.0.1:${port}${path}`, { client });
      assert.equal(await r.text(), `GET ${path}`);
    }
    // The pooled connection is the one allowed: another client is refused.
    const other = await fetch(`http://127.0.0.1:${port}/c`);
    assert.equal(other.status, 503);
    assert.match(await other.text(), /--max-connections/);

    const slow = fetch(`http://127.0.0.1:${port}/slow`, { client });
    await slowStarted;
    const stopped = front.closeAll();
    release();
    assert.equal(await (await slow).text(), "GET /slow", "in-flight request answered at stop");
    await stopped;
  } finally {
    client.close();
    await front.closeAll();
  }
});
