/** pgwire framing and codec: frame reader limits, body parsing, backend message bytes. */
import assert from "node:assert/strict";
import { MessageWriter } from "../../src/pgwire/backend.ts";
import { Backend } from "../../src/pgwire/codes.ts";
import { PgError } from "../../src/pgwire/errors.ts";
import {
  type ByteSource,
  FrameReader,
  parseBind,
  parseExecute,
  parseParse,
  parseStartup,
  parseTarget,
} from "../../src/pgwire/messages.ts";

const enc = new TextEncoder();

/** A source that hands out the given chunks one read at a time. */
function source(...chunks: Uint8Array[]): ByteSource {
  const queue = [...chunks];
  return {
    read(p: Uint8Array): Promise<number | null> {
      const c = queue.shift();
      if (!c) return Promise.resolve(null);
      const n = Math.min(p.length, c.length);
      p.set(c.subarray(0, n));
      if (n < c.length) queue.unshift(c.subarray(n));
      return Promise.resolve(n);
    },
  };
}

function frame(type: string, body: Uint8Array): Uint8Array {
  const out = new Uint8Array(5 + body.length);
  out[0] = type.charCodeAt(0);
  new DataView(out.buffer).setInt32(1, body.length + 4);
  out.set(body, 5);
  return out;
}

const cstr = (s: string) => enc.encode(s + "\0");
const concat = (...parts: Uint8Array[]) => {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
};
const i16 = (v: number) => new Uint8Array([(v >> 8) & 255, v & 255]);
const i32 = (v: number) => {
  const b = new Uint8Array(4);
  new DataView(b.buffer).setInt32(0, v);
  return b;
};

Deno.test("frame reader: messages split across reads, byte by byte", async () => {
  const bytes = concat(frame("Q", cstr("SELECT 1")), frame("X", new Uint8Array()));
  const chunks = Array.from(bytes, (b) => new Uint8Array([b]));
  const r = new FrameReader(source(...chunks));
  const q = await r.read();
  assert.equal(String.fromCharCode(q!.type), "Q");
  assert.deepEqual(q!.body, cstr("SELECT 1"));
  assert.equal(String.fromCharCode((await r.read())!.type), "X");
  assert.equal(await r.read(), null);
});

Deno.test("frame reader: background reading keeps order", async () => {
  const frames = Array.from({ length: 200 }, (_, i) => frame("Q", cstr(`SELECT ${i}`)));
  const r = new FrameReader(source(...frames), 1 << 20, 64);
  r.watch();
  for (let i = 0; i < 200; i++) {
    const f = await r.read();
    assert.deepEqual(f!.body, cstr(`SELECT ${i}`));
  }
  assert.equal(await r.read(), null);
  assert.ok(r.closed);
});

Deno.test("frame reader: bad lengths and oversized messages are fatal", async () => {
  const tooBig = new Uint8Array([0x51, 0x7f, 0xff, 0xff, 0xff]);
  await assert.rejects(
    () => new FrameReader(source(tooBig), 1024).read(),
    (e: PgError) => e.code === "54000" && e.fatal,
  );
  const tooSmall = new Uint8Array([0x51, 0, 0, 0, 3]);
  await assert.rejects(
    () => new FrameReader(source(tooSmall)).read(),
    (e: PgError) => e.code === "08P01",
  );
  const truncated = frame("Q", cstr("SELECT 1")).subarray(0, 8);
  await assert.rejects(() => new FrameReader(source(truncated)).read(), PgError);
  await assert.rejects(
    () => new FrameReader(source(i32(100_000))).readStartup(),
    (e: PgError) => e.code === "08P01",
  );
});

Deno.test("startup packet", async () => {
  const body = concat(i32(196608), cstr("user"), cstr("ha"), cstr("database"), cstr("x"), cstr(""));
  const r = new FrameReader(source(concat(i32(body.length + 4), body)));
  const s = parseStartup((await r.readStartup())!);
  assert.deepEqual(s, { major: 3, minor: 0, params: { user: "ha", database: "x" } });
});

Deno.test("extended protocol bodies", () => {
  assert.deepEqual(
    parseParse(concat(cstr("s1"), cstr("SELECT $1"), i16(1), i32(23))),
    { name: "s1", sql: "SELECT $1", paramOids: [23] },
  );
  const bind = parseBind(
    concat(
      cstr("p"),
      cstr("s1"),
      i16(1),
      i16(1),
      i16(2),
      i32(2),
      new Uint8Array([1, 2]),
      i32(-1),
      i16(0),
    ),
  );
  assert.deepEqual(bind, {
    portal: "p",
    statement: "s1",
    paramFormats: [1],
    params: [new Uint8Array([1, 2]), null],
    resultFormats: [],
  });
  assert.deepEqual(parseExecute(concat(cstr(""), i32(10))), { portal: "", maxRows: 10 });
  assert.deepEqual(parseTarget(concat(new Uint8Array([0x53]), cstr("s1"))), {
    kind: "S",
    name: "s1",
  });
  assert.throws(() => parseTarget(concat(new Uint8Array([0x5a]), cstr(""))), PgError);
  // truncated Bind: declares a 10-byte parameter, has 2
  assert.throws(
    () => parseBind(concat(cstr(""), cstr(""), i16(0), i16(1), i32(10), new Uint8Array(2))),
    (e: PgError) => e.code === "08P01" && !e.fatal,
  );
  assert.throws(() => parseBind(concat(cstr(""), cstr(""), i16(1), i16(7))), PgError);
  assert.throws(() => parseParse(cstr("no terminator").subarray(0, 5)), PgError);
});

Deno.test("backend messages", () => {
  const w = new MessageWriter();
  w.readyForQuery("I");
  assert.deepEqual(w.take(), new Uint8Array([0x5a, 0, 0, 0, 5, 0x49]));
  w.commandComplete("SELECT 1");
  assert.deepEqual(w.take(), frame("C", cstr("SELECT 1")));
  w.rowDescription([{ name: "a", oid: 20, size: 8, format: 0 }]);
  assert.deepEqual(
    w.take(),
    frame("T", concat(i16(1), cstr("a"), i32(0), i16(0), i32(20), i16(8), i32(-1), i16(0))),
  );
  w.begin(Backend.DataRow).int16(2).textField("é").int32(-1).end();
  assert.deepEqual(w.take(), frame("D", concat(i16(2), i32(2), enc.encode("é"), i32(-1))));
  w.error({ severity: "ERROR", code: "42601", message: "bad" });
  assert.deepEqual(
    w.take(),
    frame(
      "E",
      concat(
        enc.encode("S"),
        cstr("ERROR"),
        enc.encode("V"),
        cstr("ERROR"),
        enc.encode("C"),
        cstr("42601"),
        enc.encode("M"),
        cstr("bad"),
        new Uint8Array([0]),
      ),
    ),
  );
  // growth beyond the initial buffer
  const big = "x".repeat(100_000);
  w.commandComplete(big);
  assert.equal(w.take().length, 5 + big.length + 1);
});
