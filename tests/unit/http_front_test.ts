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

Deno.test("front: stopping right after clients closed their connections does not crash", async () => {
  // Deno's abort listener of a connection a client has just closed raised BadResource inside
  // the abort event's dispatch: an uncaught error that ended the process (this test with it).
  const req = new TextEncoder().encode("GET / HTTP/1.1\r\nhost: x\r\n\r\n");
  let answered = 0;
  for (let i = 0; i < 100; i++) {
    const front = new HttpFront({
      hostname: "127.0.0.1",
      port: 0,
      maxConnections: 100,
      headerTimeoutMs: 10_000,
      idleTimeoutMs: 10_000,
      handler: () => new Response("ok"),
      onError: () => new Response("error", { status: 500 }),
      logger: createLogger("error"),
    });
    const { port } = front.listen();
    const conns = await Promise.all(
      Array.from({ length: 8 }, () => Deno.connect({ hostname: "127.0.0.1", port })),
    );
    await Promise.all(conns.map(async (c) => {
      await c.write(req);
      const buf = new Uint8Array(1024);
      const n = await c.read(buf);
      if (new TextDecoder().decode(buf.subarray(0, n ?? 0)).startsWith("HTTP/1.1 200")) answered++;
    }));
    for (const c of conns) c.close();
    // One timer turn: Deno has closed the connections' resources, `finished` has not settled.
    await new Promise((r) => setTimeout(r, 0));
    await front.closeAll();
  }
  assert.equal(answered, 800);
});
