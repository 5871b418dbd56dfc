/**
 * Protocol fuzzing on raw TCP: random bytes, and valid messages mutated
 * (bit flips, truncation, length fields, type bytes), before and after
 * authentication. Bounded in count and time; a seeded PRNG makes runs
 * reproducible. Afterwards the server still serves a normal client.
 */
import assert from "node:assert/strict";
import { fe, i32, msg, psql, RawClient, startPg } from "./pgwire_helpers.ts";

const opts = { sanitizeResources: false, sanitizeOps: false };

/** mulberry32 */
function prng(seed: number) {
  return () => {
    seed |= 0;
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const SEED = Number(Deno.env.get("HA_FUZZ_SEED") ?? 20240601);
const CASES = 300;
const MIN_CASES = 20;
const BUDGET_MS = 10_000;

/** Valid frontend messages to mutate (after start-up). */
const VALID: Uint8Array[] = [
  fe.query("SELECT 1"),
  fe.query("INSERT INTO f VALUES (1, 'x'); SELECT * FROM f"),
  fe.parse("s", "SELECT $1, $2", [23, 25]),
  fe.bind("", "s", ["1", "x"], [0], [0, 1]),
  fe.bind("p", "", [new Uint8Array([0, 0, 0, 1])], [1]),
  fe.describe("S", "s"),
  fe.describe("P", ""),
  fe.execute("", 1),
  fe.close("S", "s"),
  fe.sync(),
  fe.flush(),
  msg("F", i32(1)),
  msg("d", "copy"),
];

function mutate(rand: () => number, input: Uint8Array): Uint8Array {
  const b = input.slice();
  switch (Math.floor(rand() * 6)) {
    case 0: // flip bits
      for (let i = 0; i < 1 + rand() * 4; i++) {
        b[Math.floor(rand() * b.length)] ^= 1 << Math.floor(rand() * 8);
      }
      return b;
    case 1: // truncate the body but keep the length
      return b.subarray(0, Math.floor(rand() * b.length));
    case 2: { // lie about the length
      const dv = new DataView(b.buffer);
      if (b.length >= 5) {
        dv.setInt32(1, [0, 3, 5, -1, 0x7fffffff, b.length * 2][Math.floor(rand() * 6)]);
      }
      return b;
    }
    case 3: // random type byte
      b[0] = Math.floor(rand() * 256);
      return b;
    case 4: { // random garbage appended
      const g = new Uint8Array(Math.floor(rand() * 64));
      for (let i = 0; i < g.length; i++) g[i] = Math.floor(rand() * 256);
      const out = new Uint8Array(b.length + g.length);
      out.set(b);
      out.set(g, b.length);
      return out;
    }
    default: // shortened length field inside the body (counts, lengths)
      if (b.length > 8) b[5 + Math.floor(rand() * (b.length - 5))] = 0xff;
      return b;
  }
}

async function drain(c: RawClient, ms: number): Promise<void> {
  const deadline = setTimeout(() => c.close(), ms);
  try {
    for (;;) {
      const m = await c.read();
      if (m.type === "" || m.type === "Z") break;
    }
  } finally {
    clearTimeout(deadline);
  }
}

Deno.test("pg fuzz: random and mutated messages never harm the server", opts, async () => {
  const server = await startPg();
  const rand = prng(SEED);
  const started = Date.now();
  let cases = 0;
  try {
    const setup = await RawClient.connect(server.port);
    await setup.send(fe.query("CREATE TABLE f(a INTEGER, b TEXT)"));
    await setup.until();
    setup.close();
    // At least MIN_CASES whatever the machine's speed; more while the time budget lasts.
    while (cases < MIN_CASES || (cases < CASES && Date.now() - started < BUDGET_MS)) {
      cases++;
      const preAuth = rand() < 0.3;
      const c = preAuth ? await RawClient.open(server.port) : await RawClient.connect(server.port);
      try {
        if (preAuth) {
          // random bytes or a mangled start-up packet
          const startup = msg("", i32(196608), "user", "ha", "database", "ha", "");
          const bytes = rand() < 0.5
            ? crypto.getRandomValues(new Uint8Array(1 + Math.floor(rand() * 200)))
            : mutate(rand, new Uint8Array([0, ...startup])).subarray(1);
          await c.send(bytes);
        } else {
          const n = 1 + Math.floor(rand() * 6);
          for (let i = 0; i < n; i++) {
            const base = VALID[Math.floor(rand() * VALID.length)];
            await c.send(rand() < 0.7 ? mutate(rand, base) : base);
          }
          await c.send(fe.sync());
        }
        await drain(c, 150);
      } catch {
        // the server may close on us: that is an acceptable answer
      } finally {
        c.close();
      }
    }
    // still healthy: a fresh normal client works, and so does psql
    const ok = await RawClient.connect(server.port);
    await ok.send(fe.query("SELECT count(*) FROM f"));
    const r = await ok.until();
    assert.equal(r[r.length - 1].type, "Z");
    ok.close();
    const p = await psql(server.port, ["-tA", "-c", "SELECT 'alive after fuzz'"]);
    assert.equal(p.stdout.trim(), "alive after fuzz", p.stderr + server.output());
    console.log(`fuzz: ${cases} cases (seed ${SEED})`);
    assert.doesNotMatch(server.output(), /"level":"error"/);
  } finally {
    await server.stop();
  }
});
