/**
 * A bad-input sweep of the HTTP and PostgreSQL front ends of one real node: malformed requests
 * and protocol messages, each on its own connection. Every input must get an answer or a close
 * (no stall), never a 5xx, and the node must keep serving (no crash). Prints the figures.
 */
import assert from "node:assert/strict";
import { freePort, type HaProcess, startHa } from "../integration/helpers/ha.ts";
import { fe, i16, i32, msg, psql, RawClient } from "../integration/pgwire_helpers.ts";
import { openRaw, readUntilClosed, waitFor } from "./helpers.ts";

const opts = { sanitizeOps: false, sanitizeResources: false };
const enc = new TextEncoder();
/** Generous bound for one input; the node's own timeouts are 1 s. */
const LIMIT_MS = 15_000;

function http(method: string, path: string, headers: string[], body: string | Uint8Array = "") {
  const b = typeof body === "string" ? enc.encode(body) : body;
  const head = `${method} ${path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n${
    headers.map((h) => h + "\r\n").join("")
  }`;
  const out = new Uint8Array([...enc.encode(head + "\r\n"), ...b]);
  return out;
}

function json(body: string | Uint8Array, path = "/") {
  const b = typeof body === "string" ? enc.encode(body) : body;
  return http("POST", path, ["Content-Type: application/json", `Content-Length: ${b.length}`], b);
}

const HTTP_INPUTS: (string | Uint8Array)[] = [
  "\r\n\r\n",
  "GARBAGE\r\n\r\n",
  "GET /\r\n\r\n",
  "GET / HTTP/9.9\r\nHost: x\r\n\r\n",
  "FOO / HTTP/1.1\r\nHost: x\r\n\r\n",
  `GET /${"a".repeat(70_000)} HTTP/1.1\r\nHost: x\r\n\r\n`,
  `GET / HTTP/1.1\r\nHost: x\r\nX: ${"b".repeat(200_000)}\r\n\r\n`,
  "GET / HTTP/1.1\r\nHost: x\r\nBad Header: 1\r\n\r\n",
  "GET / HTTP/1.1\r\nHost: x\r\nX: a\x00b\r\n\r\n",
  "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n",
  "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n",
  "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab",
  "POST / HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
  "POST / HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n0\r\n\r\n",
  "POST / HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 99999999999\r\n\r\n{",
  http("GET", "/databases/%00", []),
  http("GET", "/databases/%E0%A4%A/download", []),
  http("GET", "/databases/..%2F..%2Fetc%2Fpasswd/download", []),
  http("GET", "/../../etc/passwd", []),
  http("DELETE", "/", []),
  http("PUT", "/query", ["Content-Length: 0"]),
  json("{"),
  json(""),
  json("null"),
  json("1"),
  json('"x"'),
  json("[]"),
  json("[1]"),
  json('{"sql": 1}'),
  json('{"sql": ""}'),
  json('{"sql": "SELECT 1", "extra": 1}'),
  json('{"sql": "SELECT 1", "params": "x"}'),
  json('{"sql": "SELECT ?", "params": [[1]]}'),
  json('{"sql": "SELECT ?", "params": [{"base64": "!!"}]}'),
  json('{"sql": "SELECT ?", "params": [1e999999]}'),
  json('{"sql": "SELECT ?", "params": [123456789012345678901234567890]}'),
  json('{"sql": "SELECT :a", "params": {"bad name": 1}}'),
  json('{"sql": "SELECT 1; SELECT 2", "params": [1]}'),
  json('{"sql": "BEGIN"}'),
  json('{"sql": "\\u0000"}'),
  json('{"sql": "SELEC * FROM"}'),
  json('{"sql": "SELECT * FROM no_such_table"}'),
  json('{"sql": "SELECT zeroblob(2000000000)"}'),
  json(new Uint8Array([0x7b, 0xff, 0xfe, 0x7d])),
  json("[".repeat(100_000) + "]".repeat(100_000)),
  json(JSON.stringify(Array.from({ length: 5000 }, () => ({ sql: "SELECT 1" })))),
  json('{"sql": "SELECT 1"}', "/databases/nope.db"),
  json('{"sql": "SELECT 1"}', "/databases/%E0%A4%A"),
];

/** Sends `input`, reads until the server closes; status of the first response or null. */
async function sendHttp(port: number, input: string | Uint8Array) {
  const c = await openRaw(port, input);
  const r = await readUntilClosed(c, LIMIT_MS);
  const status = /^HTTP\/1\.1 (\d{3})/.exec(r.text)?.[1];
  return { closed: r.closed, status: status ? Number(status) : null };
}

async function alive(ha: HaProcess): Promise<boolean> {
  try {
    const r = await fetch(`${ha.url}/healthz`);
    await r.body?.cancel();
    return r.ok;
  } catch {
    return false;
  }
}

const STARTUP = msg("", i32(196608), "user", "ha", "database", "ha", "");

/** Inputs before authentication (raw bytes on a fresh connection). */
const PG_PRE: Uint8Array[] = [
  enc.encode("GET / HTTP/1.1\r\n\r\n"),
  new Uint8Array([0, 0, 0, 0]),
  new Uint8Array([0xff, 0xff, 0xff, 0xff]),
  new Uint8Array([0x7f, 0xff, 0xff, 0xff, 0, 3, 0, 0]),
  msg("", i32(131072), "user", "ha", ""),
  msg("", i32(262144), "user", "ha", ""),
  msg("", i32(196608), "database", "ha", ""),
  msg("", i32(196608), "user", "nobody", ""),
  msg("", i32(196608), "user", "ha", "database", "no_such_db", ""),
  msg("", i32(196608), enc.encode("user\0ha")),
  msg("", i32(196608), "user", "ha", "_pq_.bogus", "1", ""),
  msg("", i32(80877103), i32(0)),
  msg("", i32(80877102), i32(1)),
  new Uint8Array([...msg("", i32(80877104)), ...enc.encode("junk junk junk")]),
  new Uint8Array([...STARTUP, ...msg("p", "SCRAM-SHA-256", i32(-5))]),
  new Uint8Array([...STARTUP, ...msg("p", "MD5", i32(3), "abc")]),
  new Uint8Array([...STARTUP, ...msg("p", "SCRAM-SHA-256", i32(4), enc.encode("junk"))]),
  new Uint8Array([...STARTUP, ...msg("Q", "SELECT 1")]),
  new Uint8Array([...STARTUP, 0x70, 0x7f, 0xff, 0xff, 0xff]),
];

/** Inputs after authentication (each followed by Sync and Terminate). */
const PG_POST: Uint8Array[] = [
  msg("z", "x"),
  msg("Q", enc.encode("SELECT 1")),
  msg("Q", new Uint8Array([0xff, 0xfe, 0])),
  msg("Q", "SELECT $1"),
  msg("Q", "SELEC 1"),
  msg("Q", ""),
  msg("P", "", "SELECT ?", i16(-1)),
  msg("P", "", "SELECT ?", i16(1), i32(999999)),
  msg("P", "s", "SELECT 1; SELECT 2", i16(0)),
  fe.bind("", "no_such_statement"),
  new Uint8Array([...fe.parse("", "SELECT ?"), ...fe.bind("", "", [])]),
  new Uint8Array([...fe.parse("", "SELECT ?"), ...fe.bind("", "", ["1", "2"])]),
  new Uint8Array([...fe.parse("", "SELECT ?", [23]), ...fe.bind("", "", ["x"], [1])]),
  new Uint8Array([...fe.parse("", "SELECT 1"), ...fe.bind("", "", [], [], [7])]),
  msg("B", "", "", i16(-3)),
  fe.execute("no_such_portal"),
  msg("D", [0x58], "x"),
  msg("C", [0x58], "x"),
  msg("F", i32(1), i16(0), i16(0), i16(0)),
  msg("d", "copy data"),
  msg("c"),
  new Uint8Array([0x51, 0, 0, 0, 2]),
  new Uint8Array([0x51, 0x7f, 0xff, 0xff, 0xff]),
  msg("Q", "DELETE FROM _ha_progress"),
  msg("Q", "BEGIN; SELECT 1/0; COMMIT"),
];

Deno.test(
  "bad-input sweep: HTTP and PostgreSQL answer or close, never crash or stall",
  opts,
  async () => {
    const pg = freePort();
    const ha = await startHa({
      args: [
        "-n",
        "sweep",
        "-m",
        "--nats-port",
        "0",
        "--pg-port",
        String(pg),
        "--max-body-size",
        "1MiB",
      ]
        .concat([
          "--http-header-timeout",
          "1s",
          "--http-body-timeout",
          "1s",
          "--http-idle-timeout",
          "1s",
          "--pg-auth-timeout",
          "1s",
        ]),
    });
    await waitFor("the PostgreSQL listener", async () => {
      (await Deno.connect({ hostname: "127.0.0.1", port: pg })).close();
      return true;
    });
    const http = { inputs: 0, crashes: 0, stalls: 0, errors5xx: 0 };
    const pgf = { inputs: 0, crashes: 0, stalls: 0 };
    const problems: string[] = [];
    try {
      for (const [i, input] of HTTP_INPUTS.entries()) {
        http.inputs++;
        const r = await sendHttp(ha.port, input);
        if (!r.closed) {
          http.stalls++;
          problems.push(`HTTP input ${i} stalled`);
        }
        if (r.status !== null && r.status >= 500) {
          http.errors5xx++;
          problems.push(`HTTP input ${i}: ${r.status}`);
        }
        if (!(await alive(ha))) {
          http.crashes++;
          problems.push(`HTTP input ${i} killed the node`);
          break;
        }
      }
      for (const [i, input] of PG_PRE.entries()) {
        pgf.inputs++;
        const c = await RawClient.open(pg).catch((e) => {
          throw new Error(`PG pre-auth input ${i}: ${e}\n${ha.output().slice(-3000)}`);
        });
        await c.send(input).catch(() => {/* the server may close before reading it all */});
        if (!(await readUntilClosed(c.conn, LIMIT_MS)).closed) {
          pgf.stalls++;
          problems.push(`PG pre-auth input ${i} stalled`);
        }
        if (!(await alive(ha))) {
          pgf.crashes++;
          problems.push(`PG pre-auth input ${i} killed the node`);
          break;
        }
      }
      for (const [i, input] of PG_POST.entries()) {
        pgf.inputs++;
        const c = await RawClient.connect(pg);
        await c.send(input, fe.sync(), fe.terminate()).catch(() => {/* closed early */});
        if (!(await readUntilClosed(c.conn, LIMIT_MS)).closed) {
          pgf.stalls++;
          problems.push(`PG input ${i} stalled`);
        }
        if (!(await alive(ha))) {
          pgf.crashes++;
          problems.push(`PG input ${i} killed the node`);
          break;
        }
      }
      const q = await psql(pg, ["-tAc", "SELECT 6 * 7"], { env: { PGPASSWORD: "ha" } });
      assert.equal(q.stdout.trim(), "42", q.stderr);
      console.log(
        `bad-input sweep: HTTP ${http.inputs} inputs, ${http.crashes} crashes, ${http.stalls} ` +
          `stalls, ${http.errors5xx} 5xx; PG ${pgf.inputs} inputs, ${pgf.crashes} crashes, ` +
          `${pgf.stalls} stalls`,
      );
      assert.deepEqual(problems, []);
    } finally {
      await ha.stop();
    }
  },
);
