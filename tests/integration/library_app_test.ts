/**
 * The library in an application process (the proof): a Deno script embeds a node with
 * `mod.ts`, reads rows another `ha` node wrote, writes rows that reach that node, and exits on
 * its own after `close()`; the README's library example runs the same way.
 */
import assert from "node:assert/strict";
import { Cluster, waitFor } from "./helpers/cluster.ts";
import { run } from "./pgwire_helpers.ts";

const opts = { sanitizeOps: false, sanitizeResources: false };
const ROOT = new URL("../../", import.meta.url).pathname;

/** `deno run` of a script as an application would (exit by itself, 60 s at most). */
function deno(script: string, args: string[]) {
  return run(Deno.execPath(), [
    "run",
    "-A",
    "--config",
    `${ROOT}deno.json`,
    script,
    ...args,
  ], { timeoutMs: 60_000 });
}

Deno.test("library: an app process reads another node's rows and writes to it", opts, async () => {
  const cluster = new Cluster();
  try {
    const n1 = await cluster.start("node1", { embeddedNats: true });
    await n1.sql("CREATE TABLE notes(id INTEGER PRIMARY KEY, body TEXT, big INTEGER, data BLOB)");
    await n1.sql("INSERT INTO notes(body, big) VALUES ('from node1', 9007199254740993)");
    const r = await deno(`${ROOT}tests/integration/fixtures/library_app.ts`, [
      n1.natsUrl!,
      `${cluster.root}/ha.db`, // the id ha.db is node1's database
    ]);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(JSON.parse(r.stdout), [
      ["from node1", "9007199254740993n", null],
      ["from the app", `${2n ** 60n + 7n}n`, [0xde, 0xad]],
    ]);
    await waitFor(
      "node1 has the app's row",
      async () => (await n1.sql("SELECT count(*) FROM notes")).rows[0][0] === 2,
    );
    assert.deepEqual(
      (await n1.sql("SELECT CAST(big AS TEXT), hex(data) FROM notes WHERE body = 'from the app'"))
        .rows,
      [[String(2n ** 60n + 7n), "DEAD"]],
    );
  } finally {
    await cluster.stop();
  }
});

Deno.test("README: the library example runs against a node", opts, async () => {
  const cluster = new Cluster();
  try {
    const n1 = await cluster.start("node1", { embeddedNats: true });
    const readme = Deno.readTextFileSync(`${ROOT}README.md`);
    const section = readme.slice(readme.indexOf("## Library"));
    const example = /```ts\n([\s\S]*?)```/.exec(section)![1];
    const app = `${cluster.root}/app.ts`;
    Deno.writeTextFileSync(
      app,
      example.replace('"./mod.ts"', JSON.stringify(`${ROOT}mod.ts`)).replace(
        "nats://127.0.0.1:4222",
        n1.natsUrl!,
      ),
    );
    const r = await deno(app, []);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /\[ "body", "data" \]/);
    assert.match(r.stdout, /"from the app", Uint8Array\(1\) \[ 1 \]/);
    await waitFor(
      "node1 has the example's rows",
      async () => (await n1.sql("SELECT count(*) FROM notes")).rows[0][0] === 2,
    );
    assert.deepEqual((await n1.sql("SELECT body, hex(data) FROM notes ORDER BY id")).rows, [
      ["from the app", "01"],
      ["and another", ""], // hex(NULL) is ""
    ]);
  } finally {
    await cluster.stop();
  }
});
