/**
 * Issue 11 findings 9 (TLS handshake timeout, --pg-require-tls) and 10 (connection limit,
 * pre-authentication message size, authentication timeout) against a real node.
 */
import assert from "node:assert/strict";
import { freePort, startHa } from "../integration/helpers/ha.ts";
import {
  errorFields,
  i32,
  msg,
  psql,
  RawClient,
  selfSignedCert,
} from "../integration/pgwire_helpers.ts";
import { readUntilClosed, waitFor } from "./helpers.ts";

const opts = { sanitizeOps: false, sanitizeResources: false };
const STARTUP = msg("", i32(196608), "user", "ha", "database", "ha", "");
const SSL_REQUEST = msg("", i32(80877103));

Deno.test("PG: TLS handshake timeout and --pg-require-tls", opts, async () => {
  const tls = await selfSignedCert();
  const tlsArgs = ["--pg-cert", tls.cert, "--pg-key", tls.key, "--pg-require-tls"];
  const start = async (name: string, extra: string[]) => {
    const pg = freePort();
    const args = ["-n", name, "-m", "--nats-port", "0", "--pg-port", String(pg)];
    return { pg, ha: await startHa({ args: args.concat(tlsArgs, extra) }) };
  };
  try {
    // SSLRequest, 'S', then silence: the server gives up on the handshake. (A short limit on a
    // node of its own: real clients below must not race it on a busy machine.)
    const short = await start("sec-pg-tls-short", ["--pg-auth-timeout", "1s"]);
    try {
      const silent = await RawClient.open(short.pg);
      await silent.send(SSL_REQUEST);
      assert.equal(new TextDecoder().decode(await silent.readBytes(1)), "S");
      assert.equal((await readUntilClosed(silent.conn)).closed, true, "silent TLS client closed");
    } finally {
      await short.ha.stop();
    }

    const { pg, ha } = await start("sec-pg-tls", []);
    try {
      const plain = await RawClient.open(pg);
      await plain.send(STARTUP);
      const refused = await plain.read();
      assert.equal(refused.type, "E");
      assert.equal(errorFields(refused).C, "28000");
      assert.match(errorFields(refused).M, /requires TLS \(--pg-require-tls\)/);
      plain.close();

      const without = await psql(pg, ["-c", "SELECT 1"], {
        env: { PGSSLMODE: "disable", PGPASSWORD: "ha" },
      });
      assert.notEqual(without.code, 0);
      assert.match(without.stderr, /requires TLS/);
      const withTls = await psql(pg, ["-tAc", "SELECT 41 + 1"], {
        env: { PGSSLMODE: "require", PGPASSWORD: "ha" },
      });
      assert.equal(withTls.code, 0, withTls.stderr);
      assert.equal(withTls.stdout.trim(), "42");
    } finally {
      await ha.stop();
    }
  } finally {
    await Deno.remove(tls.dir, { recursive: true });
  }
});

Deno.test(
  "PG: connection limit 53300, 42P02, 42501, pre-auth message cap, auth timeout",
  opts,
  async () => {
    const pg = freePort();
    const ha = await startHa({
      args: ["-n", "sec-pg", "-m", "--nats-port", "0", "--pg-port", String(pg)].concat(
        ["--max-connections", "2", "--pg-auth-timeout", "1s"],
      ),
    });
    try {
      const held = [await RawClient.connect(pg), await RawClient.connect(pg)];
      const third = await RawClient.open(pg);
      await third.send(STARTUP);
      const full = await third.read();
      assert.equal(full.type, "E");
      assert.equal(errorFields(full).C, "53300");
      assert.match(errorFields(full).M, /too many clients/);
      third.close();

      // Finding 11 on PG: a missing parameter is 42P02, ha's tables are not the client's (42501).
      const [a] = held;
      for (
        const [sql, code, re] of [
          ["SELECT $1", "42P02", /missing parameter \$1/],
          ["CREATE TABLE _ha_progress(x)", "42501", /internal to ha/],
        ] as const
      ) {
        await a.send(msg("Q", sql));
        const err = (await a.until()).find((m) => m.type === "E");
        assert.ok(err, sql);
        assert.equal(errorFields(err).C, code, sql);
        assert.match(errorFields(err).M, re);
      }
      for (const c of held) c.close();

      // A 2 KiB "password" before authentication: refused at once, nothing buffered.
      await waitFor("a free PG connection slot", async () => {
        const c = await RawClient.connect(pg);
        c.close();
        return true;
      });
      const big = await RawClient.open(pg);
      await big.send(STARTUP);
      assert.equal((await big.read()).type, "R");
      await big.send(msg("p", new Uint8Array(2048)));
      const tooBig = await big.read();
      assert.equal(tooBig.type, "E");
      assert.equal(errorFields(tooBig).C, "08P01");
      assert.match(errorFields(tooBig).M, /exceeds the limit of 1024 bytes/);
      big.close();

      // Start-up, then no password: closed after --pg-auth-timeout.
      const mute = await RawClient.open(pg);
      await mute.send(STARTUP);
      assert.equal((await mute.read()).type, "R");
      assert.equal((await readUntilClosed(mute.conn)).closed, true);
    } finally {
      await ha.stop();
    }
  },
);
