import assert from "node:assert/strict";
import { SocketSender } from "../../src/pgwire/socket_send.ts";

/** `count` connected pairs over loopback: [server side, client side]. */
async function pairs(count: number): Promise<{ pairs: [Deno.Conn, Deno.Conn][]; close(): void }> {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  const out: [Deno.Conn, Deno.Conn][] = [];
  for (let i = 0; i < count; i++) {
    const client = await Deno.connect({ hostname: "127.0.0.1", port });
    out.push([await listener.accept(), client]);
  }
  return {
    pairs: out,
    close() {
      listener.close();
      for (const [a, b] of out) {
        for (const c of [a, b]) {
          try {
            c.close();
          } catch { /* closed */ }
        }
      }
    },
  };
}

async function readExactly(conn: Deno.Conn, n: number): Promise<Uint8Array> {
  const buf = new Uint8Array(n);
  for (let off = 0; off < n;) {
    const got = await conn.read(buf.subarray(off));
    assert(got !== null, "connection closed early");
    off += got;
  }
  return buf;
}

Deno.test("each connection's sender writes to its own peer", async () => {
  const p = await pairs(4);
  try {
    const senders = p.pairs.map(([server]) => SocketSender.attach(server));
    assert(senders.every((s) => s !== null), "a plain IPv4 connection gets a sender on Linux");
    // Both ends of a pair are sockets of this process: the peer's own sender must differ.
    const clientSide = SocketSender.attach(p.pairs[0][1])!;
    assert.deepEqual(clientSide.send(new TextEncoder().encode("up")), 2);
    assert.deepEqual(new TextDecoder().decode(await readExactly(p.pairs[0][0], 2)), "up");
    for (let i = 0; i < senders.length; i++) {
      const msg = new TextEncoder().encode(`conn ${i}`);
      assert.deepEqual(senders[i]!.send(msg), msg.length);
    }
    for (let i = 0; i < senders.length; i++) {
      const got = await readExactly(p.pairs[i][1], `conn ${i}`.length);
      assert.deepEqual(new TextDecoder().decode(got), `conn ${i}`);
    }
  } finally {
    p.close();
  }
});

Deno.test("what send does not take is written after it, in order; detached sends nothing", async () => {
  const p = await pairs(1);
  const [server, client] = p.pairs[0];
  try {
    const sender = SocketSender.attach(server)!;
    const big = new Uint8Array(16 * 1024 * 1024);
    for (let i = 0; i < big.length; i++) big[i] = (i * 31 + (i >> 12)) & 0xff;
    const sent = sender.send(big); // nobody reads yet: the socket takes part of it
    assert(sent > 0 && sent < big.length, `partial send: ${sent}`);
    const reading = readExactly(client, big.length);
    for (let off = sent; off < big.length;) off += await server.write(big.subarray(off));
    assert.deepEqual(await reading, big);
    sender.detach();
    assert.deepEqual(sender.send(new Uint8Array([1, 2, 3])), 0);
  } finally {
    p.close();
  }
});

Deno.test("a send on a connection the peer closed reports nothing taken", async () => {
  const p = await pairs(1);
  const [server, client] = p.pairs[0];
  try {
    const sender = SocketSender.attach(server)!;
    client.close();
    // The first send after the peer's FIN may still be accepted; a reset follows it.
    let zero = false;
    for (let i = 0; i < 50 && !zero; i++) {
      zero = sender.send(new Uint8Array(64)) === 0;
      if (!zero) await new Promise((r) => setTimeout(r, 10));
    }
    assert(zero, "send on a reset connection returns 0 (then Deno.Conn.write reports the error)");
  } finally {
    try {
      server.close();
    } catch { /* closed */ }
    p.close();
  }
});
