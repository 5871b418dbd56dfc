/**
 * Issue 11 findings 1 (CSRF), 10 (HTTP timeouts and connection cap) and 11 (bad escapes, bearer
 * case, missing parameters, internal tables) against a real node.
 */
import assert from "node:assert/strict";
import { freePort, type HaProcess, post, startHa } from "../integration/helpers/ha.ts";
import { openRaw, postRaw, readUntilClosed, waitFor } from "./helpers.ts";

const opts = { sanitizeOps: false, sanitizeResources: false };
const JSON_TYPE = { "content-type": "application/json" };

async function node(extra: string[] = []): Promise<HaProcess> {
  return await startHa({
    args: ["-n", "sec-http", "-m", "--pg-port", "0", "--nats-port", "0", ...extra],
  });
}

Deno.test(
  "HTTP: queries need application/json; cross-origin writes are refused (CSRF)",
  opts,
  async () => {
    const ha = await node();
    try {
      const sql = '{"sql": "SELECT 1 AS one"}';
      const types: Record<string, string>[] = [
        {},
        { "content-type": "text/plain" },
        { "content-type": "application/x-www-form-urlencoded" },
        { "content-type": "multipart/form-data; boundary=x" },
      ];
      for (const headers of types) {
        const r = await postRaw(ha.url, sql, headers);
        assert.equal(r.status, 415, JSON.stringify(headers));
        assert.match(JSON.parse(r.text).error, /Content-Type must be application\/json/);
      }
      const untyped = await fetch(ha.url, { method: "POST", body: new TextEncoder().encode(sql) });
      assert.equal(untyped.status, 415, await untyped.text());
      const json = await postRaw(`${ha.url}/query`, sql, {
        "content-type": "Application/JSON; charset=utf-8",
      });
      assert.equal(json.status, 200, json.text);
      const cross = await postRaw(ha.url, sql, { ...JSON_TYPE, origin: "https://evil.example" });
      assert.equal(cross.status, 403, cross.text);
      const same = await postRaw(ha.url, sql, { ...JSON_TYPE, origin: ha.url });
      assert.equal(same.status, 200, same.text);
    } finally {
      await ha.stop();
    }
  },
);

Deno.test("HTTP: header, body and idle timeouts; connection cap", opts, async () => {
  const ha = await node([
    "--http-header-timeout",
    "1s",
    "--http-body-timeout",
    "1s",
    "--http-idle-timeout",
    "2s",
    "--max-connections",
    "3",
  ]);
  try {
    // Slowloris: headers that never end.
    const slow = await openRaw(ha.port, "POST / HTTP/1.1\r\nHost: x\r\nX-A: ");
    assert.equal((await readUntilClosed(slow)).closed, true, "partial headers are cut off");

    // A body that never arrives: 408.
    const stalled = await openRaw(
      ha.port,
      "POST / HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 40\r\n\r\n{",
    );
    const body = await readUntilClosed(stalled);
    assert.match(body.text, /^HTTP\/1\.1 408/, body.text);
    assert.match(body.text, /--http-body-timeout/);

    // Keep-alive connection that stays idle after its response.
    const idle = await openRaw(ha.port, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n");
    const r = await readUntilClosed(idle);
    assert.match(r.text, /^HTTP\/1\.1 200/);
    assert.equal(r.closed, true, "idle keep-alive connection is closed");

    // Three connections held open (each mid-request, within the limits): the fourth gets 503.
    const held = await Promise.all(
      [1, 2, 3].map(() => openRaw(ha.port, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")),
    );
    try {
      const extra = await openRaw(ha.port, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n");
      const refused = await readUntilClosed(extra);
      assert.match(refused.text, /^HTTP\/1\.1 503/, refused.text);
      assert.match(refused.text, /--max-connections/);
    } finally {
      for (const c of held) c.close();
    }
    await waitFor("a connection slot after closing", async () => {
      const res = await fetch(`${ha.url}/healthz`);
      await res.body?.cancel();
      return res.status === 200;
    });
  } finally {
    await ha.stop();
  }
});

Deno.test(
  "HTTP: bad escapes 400, bearer in any case, missing parameters, _ha_ tables",
  opts,
  async () => {
    const ha = await startHa({
      args: ["-n", "sec-http2", "-m", "--pg-port", "0", "--nats-port", String(freePort())].concat(
        ["--token", "tok"],
      ),
    });
    const auth = { authorization: "bearer tok" };
    try {
      const bad = await post(`${ha.url}/databases/%E0%A4%A`, { sql: "SELECT 1" }, auth);
      assert.equal(bad.status, 400, bad.text);
      assert.match(bad.body.error, /percent-encoding/);

      for (const scheme of ["Bearer", "bearer", "BEARER"]) {
        const r = await post(ha.url, { sql: "SELECT 1" }, { authorization: `${scheme} tok` });
        assert.equal(r.status, 200, `${scheme}: ${r.text}`);
      }
      assert.equal(
        (await post(ha.url, { sql: "SELECT 1" }, { authorization: "bearer no" })).status,
        401,
      );

      const cases: [unknown, RegExp][] = [
        [{ sql: "SELECT ?, ?", params: [1] }, /missing parameter \?2/],
        [{ sql: "SELECT :a, :b", params: { a: 1 } }, /missing parameter :b/],
        [{ sql: "SELECT $1, $2", params: { $2: 1 } }, /missing parameter \$1/],
        [{ sql: "SELECT ?" }, /missing parameter \?1/],
      ];
      for (const [stmt, re] of cases) {
        const r = await post(ha.url, stmt, auth);
        assert.equal(r.status, 400, r.text);
        assert.match(r.body.error, re);
      }

      const users = await post(
        ha.url,
        { sql: "CREATE TABLE users(id INTEGER PRIMARY KEY, v)" },
        auth,
      );
      assert.equal(users.status, 200, users.text);
      assert.equal(
        (await post(ha.url, { sql: "INSERT INTO users(v) VALUES (1)" }, auth)).status,
        200,
      );
      const tables = await post(ha.url, {
        sql: "SELECT name FROM sqlite_master WHERE name LIKE '\\_ha\\_%' ESCAPE '\\' ORDER BY 1",
      }, auth);
      assert.ok(tables.body.rows.length >= 2, tables.text);
      for (
        const sql of [
          "DELETE FROM _ha_progress",
          "INSERT INTO _ha_outbox DEFAULT VALUES",
          "UPDATE _HA_PROGRESS SET seq = 0",
          "DROP TABLE _ha_progress",
          "CREATE TABLE _ha_x(a)",
          "CREATE TEMP TABLE _ha_y(a)",
          "INSERT INTO temp._ha_log(tbl) VALUES ('users')",
          "DROP TRIGGER temp._ha_i_users",
          "CREATE TRIGGER _ha_z AFTER INSERT ON users BEGIN SELECT 1; END",
        ]
      ) {
        const r = await post(ha.url, { sql }, auth);
        assert.equal(r.status, 400, `${sql}: ${r.text}`);
        assert.match(r.body.error, /is internal to ha: clients cannot change it/, sql);
      }
      const read = await post(ha.url, { sql: "SELECT count(*) FROM _ha_progress" }, auth);
      assert.equal(read.status, 200, read.text);
      for (
        const sql of [
          "INSERT INTO users(v) VALUES (2)",
          "ALTER TABLE users ADD COLUMN w",
          "UPDATE users SET w = 1",
          "DROP TABLE users",
        ]
      ) {
        const r = await post(ha.url, { sql }, auth);
        assert.equal(r.status, 200, `${sql}: ${r.text}`);
      }
    } finally {
      await ha.stop();
    }
  },
);
