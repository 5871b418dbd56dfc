/** `openDatabase()` options → the node's Config, through the CLI's own parser. */
import assert from "node:assert/strict";
import { configOf } from "../../src/library/options.ts";
import { HaError } from "../../src/errors/mod.ts";
import { toParams, toValue } from "../../src/library/values.ts";

Deno.test("library options: CLI defaults, no listeners unless asked, memory never loads a file", async () => {
  const { config, tempDir } = await configOf({ path: ":memory:", name: "app" });
  try {
    assert.equal(config.name, "app");
    assert.equal(config.memory, true);
    assert.equal(config.dsns.length, 1);
    assert.ok(config.dsns[0].startsWith(tempDir!) && config.dsns[0].endsWith("/ha.db"));
    assert.deepEqual([config.port, config.pgPort, config.natsPort], [0, 0, 0]);
    assert.equal(config.logLevel, "warn");
    // The CLI's defaults for the rest.
    assert.deepEqual([config.rowIdentify, config.idScheme, config.replicationStream], [
      "pk",
      "cluster",
      "ha_replication",
    ]);
    assert.equal(config.replicationTimeoutMs, 15_000);
  } finally {
    await Deno.remove(tempDir!, { recursive: true });
  }
});

Deno.test("library options: every option maps to its flag", async () => {
  const { config, tempDir } = await configOf({
    path: "data/app.db",
    name: "n",
    replicationUrl: ["nats://a:4222", "nats://b:4222"],
    nats: { port: 4333, host: "127.0.0.1", storeDir: "/s", user: "u", pass: "-p" },
    asyncReplication: { storeDir: "/o" },
    rowIdentify: "full",
    idScheme: "js-safe",
    readOnly: true,
    clusterKey: "k",
    http: { port: 8090, token: "t" },
    pg: { port: 5440, user: "pu", password: "pp" },
    logLevel: "error",
    flags: ["--replication-timeout", "5s"],
  });
  assert.equal(tempDir, null);
  assert.deepEqual(config.dsns, ["data/app.db"]);
  assert.equal(config.memory, false);
  assert.deepEqual(config.replicationUrl, ["nats://a:4222", "nats://b:4222"]);
  assert.deepEqual(
    [config.natsPort, config.natsStoreDir, config.natsUser, config.natsPass],
    [4333, "/s", "u", "-p"],
  );
  assert.deepEqual([config.asyncReplication, config.asyncReplicationStoreDir], [true, "/o"]);
  assert.deepEqual([config.rowIdentify, config.idScheme, config.readOnly], [
    "full",
    "js-safe",
    true,
  ]);
  assert.deepEqual([config.clusterKey, config.port, config.token], ["k", 8090, "t"]);
  assert.deepEqual([config.pgPort, config.pgUser, config.pgPass], [5440, "pu", "pp"]);
  assert.equal(config.replicationTimeoutMs, 5_000);
});

Deno.test("library options: without http, pg and NATS may use the CLI's HTTP port", async () => {
  const { config } = await configOf({ path: "a.db", pg: { port: 8080 }, nats: { port: 8081 } });
  assert.deepEqual([config.port, config.pgPort, config.natsPort], [0, 8080, 8081]);
});

Deno.test("library options: bad values get the CLI's messages", async () => {
  const bad = async (o: Parameters<typeof configOf>[0], re: RegExp) =>
    await assert.rejects(
      configOf(o),
      (e) => e instanceof HaError && e.code === "config" && re.test(e.message),
    );
  await bad({ path: "a.db", idScheme: "uuid" as "cluster" }, /--id-scheme/);
  await bad({ path: "a.db", http: { port: 70000 } }, /--port/);
  await bad({ path: "a.db", database: "x.db" }, /"database" only applies to path ":memory:"/);
  await bad({ path: "a.db", flags: ["--nope"] }, /unknown flag --nope/);
  await bad({ path: "a.db", http: { port: 8080, hostname: "0.0.0.0" } }, /--token|--insecure/);
});

Deno.test("library values: the HTTP API's parameter forms in, exact values out", () => {
  assert.deepEqual(toParams([1, 2n, "s", true, null, { base64: "AAE=" }, new Uint8Array([2])]), [
    1,
    2n,
    "s",
    true,
    null,
    new Uint8Array([0, 1]),
    new Uint8Array([2]),
  ]);
  assert.deepEqual(toParams({ ":a": 1, b: { base64: "" } }), { ":a": 1, b: new Uint8Array() });
  assert.throws(() => toParams([{ base64: "%%" }]), /parameter 1: invalid base64/);
  assert.throws(() => toParams([undefined as unknown as null]), /parameter 1: expected null/);
  assert.equal(toValue(9007199254740991n, false), 9007199254740991);
  assert.equal(toValue(9007199254740992n, false), 9007199254740992n);
  assert.equal(toValue(-9007199254740992n, false), -9007199254740992n);
  assert.equal(toValue(5n, true), 5n);
  assert.equal(toValue(1.5, false), 1.5);
});
