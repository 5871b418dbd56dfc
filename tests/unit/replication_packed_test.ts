/** The subscriber's packed apply batches and its reading of JetStream reply subjects. */
import assert from "node:assert/strict";
import { pack, unpack } from "../../src/replication/packed.ts";
import { type Delivery, readAckReply } from "../../src/replication/ack_reply.ts";

const enc = new TextEncoder();

Deno.test("a packed batch unpacks to the same messages, UTF-8 and empty payloads included", () => {
  const texts = ['{"v":"é ✓ 𝄞"}', "", "x".repeat(70_000), "{}"];
  const msgs = texts.map((t, i) => ({ seq: 2 ** 40 + i, data: enc.encode(t) }));
  const p = pack("ha.db", msgs);
  assert.deepEqual(
    unpack(structuredClone(p, { transfer: [p.buf] })),
    texts.map((data, i) => ({ seq: 2 ** 40 + i, subject: "ha.db", data })),
  );
  assert.equal(p.buf.byteLength, 0, "the buffer was moved");
  const signed = unpack(pack("s", msgs.slice(0, 2), ["ab", undefined]));
  assert.deepEqual(signed.map((m) => m.sig), ["ab", undefined]);
  assert.deepEqual(unpack(pack("s", [])), []);
});

Deno.test("a batch decoded at once gives what each payload decoded alone gives", () => {
  const dec = new TextDecoder();
  const cases: Uint8Array[][] = [
    ["{}", '{"a":1}', "", "plain ascii"].map((t) => enc.encode(t)),
    // a BOM opening a later payload, a character split across two payloads, a lone byte
    [enc.encode("x"), new Uint8Array([0xef, 0xbb, 0xbf, 0x41]), enc.encode("y")],
    [new Uint8Array([0x41, 0xc3]), new Uint8Array([0xa9, 0x42])],
    [new Uint8Array([0x80]), enc.encode("z"), new Uint8Array([0xff, 0x41])],
  ];
  for (const bytes of cases) {
    const got = unpack(pack("s", bytes.map((data, i) => ({ seq: i + 1, data }))));
    assert.deepEqual(got.map((m) => m.data), bytes.map((b) => dec.decode(b)));
  }
});

Deno.test("reply subjects give the sequences nats.js parseInfo gives", () => {
  // The token positions of nats.js `parseInfo` (old and new formats).
  const subjects: [string, number, number][] = [
    ["$JS.ACK.ha_replication.db_node2.1.42.7.1700000000000000000.0", 42, 7],
    [
      "$JS.ACK._.hash.ha_replication.db_n2.1.9007199254740991.1.1700000000000000000.12",
      2 ** 53 - 1,
      1,
    ],
    ["$JS.ACK.dom.hash.S.C.2.5.3.1700000000000000000.0.rnd", 5, 3],
    ["$JS.ACK.dom.hash.S.C.2.5.3.1700000000000000000.0.rnd.more", 5, 3],
  ];
  const d: Delivery = { stream: 0, delivery: 0 };
  for (const [s, stream, delivery] of subjects) {
    readAckReply(s, d);
    assert.deepEqual(d, { stream, delivery }, s);
  }
  for (
    const bad of [
      "_INBOX.x",
      "$JS.ACK.S.C.1.42.7.1",
      "$JS.ACK.S.C.1.4x.7.1.0",
      "$JS.ACK.S.C.1..7.1.0",
    ]
  ) {
    assert.throws(() => readAckReply(bad, d), /delivery info/, bad);
  }
});
