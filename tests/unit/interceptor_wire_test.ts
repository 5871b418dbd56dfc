/** The sandbox wire format keeps what structured clone kept (shared objects included). */
import assert from "node:assert/strict";
import { decodeWire, encodeWire, frame, readFrames } from "../../src/interceptor/wire.ts";

Deno.test("SQL values, holes and odd numbers survive", () => {
  const v = [
    1,
    2.5,
    -0,
    NaN,
    -Infinity,
    undefined,
    null,
    "x",
    12345678901234567890n,
    new Uint8Array([0, 255]),
  ];
  const d = decodeWire(encodeWire({ values: v })) as { values: unknown[] };
  assert.deepEqual(d.values, v);
  assert.ok(Object.is(d.values[2], -0));
});

Deno.test("objects met twice are sent once and stay shared; cycles survive", () => {
  const cs = { id: "c", changes: Array.from({ length: 100 }, (_, i) => ({ n: i })) };
  const conflicts = Array.from({ length: 100 }, (_, i) => ({ i, changeset: cs }));
  const text = encodeWire(conflicts);
  assert.ok(text.length < 2 * encodeWire(cs).length + 100 * 40, `${text.length} chars`);
  const d = decodeWire(text) as typeof conflicts;
  assert.deepEqual(d, conflicts);
  assert.ok(d.every((c) => c.changeset === d[0].changeset));
  const cyc: Record<string, unknown> = { a: 1 };
  cyc.self = cyc;
  const dc = decodeWire(encodeWire(cyc)) as Record<string, unknown>;
  assert.equal(dc.self, dc);
});

Deno.test("plain objects shaped like tags decode as themselves", () => {
  const v = { a: { $b: "5" }, b: { $r: 0 }, c: { $o: 1 }, d: { $u: "AA==" } };
  assert.deepEqual(decodeWire(encodeWire(v)), v);
});

Deno.test("what structured clone would turn into something else cannot be sent", () => {
  assert.throws(() => encodeWire({ d: new Date() }), /Date cannot be sent/);
  assert.throws(() => encodeWire([new Map()]), /Map cannot be sent/);
  assert.throws(() => encodeWire({ f() {} }), /function cannot be sent/);
});

Deno.test("frames split across chunks are reassembled; oversized ones are refused", async () => {
  const bytes = new Uint8Array([...frame("héllo"), ...frame(""), ...frame("x".repeat(70_000))]);
  const chunks = [bytes.subarray(0, 3), bytes.subarray(3, 9), bytes.subarray(9)];
  const out: string[] = [];
  for await (const t of readFrames(ReadableStream.from(chunks))) out.push(t);
  assert.deepEqual(out.map((t) => t.length), [5, 0, 70_000]);
  const huge = new Uint8Array([0xff, 0xff, 0xff, 0xff]);
  await assert.rejects(async () => {
    for await (const _ of readFrames(ReadableStream.from([huge]))) { /* none */ }
  }, /too large/);
});
