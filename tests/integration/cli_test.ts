/** The `ha` command line as a user meets it: help, version, invalid values, ports in use. */
import assert from "node:assert/strict";
import { freePort, runHa } from "./helpers/ha.ts";
import { waitFor } from "./helpers/cluster.ts";

/** A standalone in-memory node on a free HTTP port, plus `extra` flags. */
function standalone(name: string, ...extra: string[]): string[] {
  return [
    "-n",
    name,
    "-m",
    "--nats-port",
    "0",
    "--pg-port",
    "0",
    "--port",
    String(freePort()),
    ...extra,
  ];
}

Deno.test("--help lists every flag with its env var; --version prints the version", async () => {
  const help = await runHa(["--help"]);
  assert.equal(help.code, 0);
  for (
    const f of ["--name", "HA_NAME", "--nats-port", "HA_REPLICATION_POLICY", "--token", "--config"]
  ) {
    assert.ok(help.stdout.includes(f), f);
  }
  const v = await runHa(["--version"]);
  assert.equal(v.code, 0);
  assert.match(v.stdout, /^ha \d+\.\d+\.\d+/);
});

Deno.test("invalid values: one clear line, exit code 2, nothing started", async () => {
  for (
    const [args, re] of [
      [["--port", "abc"], /--port/],
      [["--row-identify", "nope"], /pk, rowid, full/],
      [["--replication-timeout", "soon"], /--replication-timeout/],
      [["--no-such-flag"], /unknown flag/],
    ] as [string[], RegExp][]
  ) {
    const r = await runHa(args);
    assert.equal(r.code, 2, args.join(" "));
    assert.equal(r.stderr.trim().split("\n").length, 1, r.stderr);
    assert.match(r.stderr, re);
  }
});

Deno.test("a port in use is a clear error with a non-zero exit", async () => {
  const l = Deno.listen({ hostname: "0.0.0.0", port: freePort() });
  try {
    const port = (l.addr as Deno.NetAddr).port;
    const r = await runHa([
      "-n",
      "busy",
      "-m",
      "--nats-port",
      "0",
      "--pg-port",
      "0",
      "--port",
      String(port),
    ]);
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /in use|AddrInUse/i);
  } finally {
    l.close();
  }
});

Deno.test("a front end failing to start stops the parts already started", async () => {
  const dir = await Deno.makeTempDir();
  const l = Deno.listen({ hostname: "127.0.0.1", port: freePort() });
  const natsPort = freePort();
  try {
    // NATS, the engine, replication and HTTP start; PG cannot bind: all must stop again.
    const r = await runHa([
      "-n",
      "halfway",
      "-m",
      "--nats-port",
      String(natsPort),
      "--nats-store-dir",
      `${dir}/nats`,
      "--async-replication-store-dir",
      `${dir}/outbox`,
      "--port",
      String(freePort()),
      "--pg-port",
      String((l.addr as Deno.NetAddr).port),
    ]);
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /\(--pg-port\): address already in use/);
    // The embedded nats-server (a child process) was stopped, not orphaned: its port is free.
    await waitFor("the nats-server port freed", () => {
      Deno.listen({ hostname: "127.0.0.1", port: natsPort }).close();
      return true;
    });
  } finally {
    l.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("an unknown glob is a config error", async () => {
  const dir = await Deno.makeTempDir();
  const r = await runHa(["-n", "g", "--nats-port", "0", "--pg-port", "0", "*.nothing"], {
    cwd: dir,
  });
  assert.equal(r.code, 2);
  assert.match(r.stderr, /no database file matches/);
});

Deno.test("a missing SQLite extension is a clear start-up error", async () => {
  const r = await runHa(standalone("ext", "--extensions", "/nonexistent/libnothing.so"));
  assert.notEqual(r.code, 0);
  assert.match(r.stderr, /libnothing/);
});

Deno.test("--interceptor: load errors stop the node with file:line and exit 2", async () => {
  const dir = await Deno.makeTempDir();
  await Deno.writeTextFile(`${dir}/bad.ts`, "export function afterApply(\n  cs: any {\n}\n");
  const bad = await runHa(standalone("i", "--interceptor", "bad.ts"), { cwd: dir });
  assert.equal(bad.code, 2, bad.stderr);
  assert.match(bad.stderr, /bad\.ts:\d+:\d+/);
  await Deno.writeTextFile(`${dir}/none.ts`, "export const x = 1;\n");
  const none = await runHa(standalone("i", "-i", "none.ts"), { cwd: dir });
  assert.equal(none.code, 2, none.stderr);
  assert.match(none.stderr, /beforeApply|afterApply|resolveConflict/);
});
