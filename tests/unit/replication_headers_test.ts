/** The own-changeset check's byte search over a message's raw header block (issue 13). */
import assert from "node:assert/strict";
import type { JsMsg } from "@nats-io/jetstream";
import { includes, rawHeaders } from "../../src/replication/headers.ts";

const enc = new TextEncoder();

Deno.test("includes finds a part anywhere, and only where all of it is", () => {
  const hay = enc.encode("NATS/1.0\r\nHa-Node: n1\r\nHa-Incarnation: 5b0c-aa\r\n\r\n");
  assert.equal(includes(hay, enc.encode("5b0c-aa")), true);
  assert.equal(includes(hay, enc.encode("NATS")), true);
  assert.equal(includes(hay, enc.encode("\r\n\r\n")), true);
  assert.equal(includes(hay, enc.encode("5b0c-ab")), false);
  assert.equal(includes(hay, enc.encode("aa\r\n\r\nx")), false, "past the end");
  assert.equal(includes(new Uint8Array(0), enc.encode("x")), false);
});

Deno.test("rawHeaders: the header block of nats.js's message, else undefined", () => {
  const data = enc.encode("NATS/1.0\r\nA: b\r\n\r\n{}");
  const hdr = data.length - 2;
  const msg = (inner: unknown) => ({ msg: inner }) as unknown as JsMsg;
  assert.deepEqual(rawHeaders(msg({ _rdata: data, _msg: { hdr } })), data.subarray(0, hdr));
  assert.equal(rawHeaders(msg({ _rdata: data, _msg: { hdr: -1 } }))?.length, 0);
  assert.equal(rawHeaders(msg({ _rdata: data })), undefined);
  assert.equal(rawHeaders(msg(undefined)), undefined);
});
