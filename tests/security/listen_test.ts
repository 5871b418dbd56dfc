/**
 * Issue 11 finding 1: every listener stays on loopback unless told otherwise, and a listener
 * beyond loopback without credentials refuses to start (unless --insecure).
 */
import assert from "node:assert/strict";
import { freePort, runHa, startHa } from "../integration/helpers/ha.ts";
import { listeningAddresses } from "./helpers.ts";

const opts = { sanitizeOps: false, sanitizeResources: false };

Deno.test("HTTP, PostgreSQL and embedded NATS listen on 127.0.0.1 by default", opts, async () => {
  const pg = freePort();
  const nats = freePort();
  const ha = await startHa({
    args: ["-n", "loop", "-m", "--pg-port", String(pg), "--nats-port", String(nats)],
  });
  try {
    for (const [name, port] of [["http", ha.port], ["pg", pg], ["nats", nats]] as const) {
      assert.deepEqual(listeningAddresses(port), ["127.0.0.1"], `${name} on ${port}`);
    }
  } finally {
    await ha.stop();
  }
});

Deno.test(
  "beyond loopback without credentials: exit 2, one line naming the flag",
  opts,
  async () => {
    const base = ["-n", "open", "-m", "--port", String(freePort())];
    const cases: [string[], RegExp][] = [
      [["--http-addr", "0.0.0.0", "--pg-port", "0", "--nats-port", "0"], /set --token/],
      [["--pg-addr", "0.0.0.0", "--nats-port", "0"], /set --pg-pass other than "ha"/],
      [["--pg-addr", "::", "--pg-pass", "ha", "--nats-port", "0"], /--pg-pass/],
      [["--nats-addr", "0.0.0.0", "--pg-port", "0"], /set --nats-user and --nats-pass/],
      [["--http-addr", "0.0.0.0:8080"], /--http-addr.*without port/],
      [["--pg-require-tls"], /--pg-require-tls needs --pg-cert and --pg-key/],
    ];
    for (const [args, re] of cases) {
      const r = await runHa([...base, ...args]);
      assert.equal(r.code, 2, `${args.join(" ")}: ${r.stderr}`);
      assert.equal(r.stderr.trim().split("\n").length, 1, r.stderr);
      assert.match(r.stderr, re);
    }
  },
);

Deno.test(
  "beyond loopback with credentials (or --insecure) starts; the token guards /download",
  opts,
  async () => {
    const pg = freePort();
    const nats = freePort();
    const secured = await startHa({
      args: [
        "-n",
        "wide",
        "-m",
        "--http-addr",
        "0.0.0.0",
        "--token",
        "s3cret",
        "--pg-addr",
        "0.0.0.0",
        "--pg-port",
        String(pg),
        "--pg-pass",
        "pg-s3cret",
        "--nats-addr",
        "0.0.0.0",
        "--nats-port",
        String(nats),
        "--nats-user",
        "ha",
        "--nats-pass",
        "nats-s3cret",
      ],
    });
    try {
      for (const port of [secured.port, pg, nats]) {
        const addrs = listeningAddresses(port);
        assert.ok(
          addrs.length > 0 && addrs.every((a) => a === "0.0.0.0" || a === "::"),
          `${port}: ${addrs}`,
        );
      }
      const anon = await fetch(`${secured.url}/download`);
      await anon.body?.cancel();
      assert.equal(anon.status, 401);
      const authed = await fetch(`${secured.url}/download`, {
        headers: { authorization: "Bearer s3cret" },
      });
      const file = new Uint8Array(await authed.arrayBuffer());
      assert.equal(authed.status, 200);
      assert.equal(new TextDecoder().decode(file.subarray(0, 15)), "SQLite format 3");
    } finally {
      await secured.stop();
    }
    const insecure = await startHa({
      args: ["-n", "ins", "-m", "--http-addr", "0.0.0.0", "--insecure", "--pg-port", "0"].concat(
        ["--nats-port", "0"],
      ),
    });
    try {
      assert.deepEqual(listeningAddresses(insecure.port), ["0.0.0.0"]);
    } finally {
      await insecure.stop();
    }
  },
);
