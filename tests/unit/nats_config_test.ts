import assert from "node:assert/strict";
import { HaError } from "../../src/errors/mod.ts";
import { parseServers } from "../../src/nats/client.ts";
import { LineTail, parseNatsLogLine, readLines } from "../../src/nats/log_lines.ts";
import {
  inspectUserConfig,
  natsString,
  normaliseServerName,
  pickClientUrl,
  renderServerConfig,
  serverArgs,
} from "../../src/nats/server_config.ts";
import { describeExit } from "../../src/nats/watchdog.ts";

Deno.test("normaliseServerName keeps [A-Za-z0-9_-]", () => {
  assert.equal(normaliseServerName("node 1.example/x"), "node_1_example_x");
  assert.equal(normaliseServerName("ok-Name_9"), "ok-Name_9");
  assert.equal(normaliseServerName(""), "ha");
});

Deno.test("natsString escapes quotes, backslashes and newlines; rejects control chars", () => {
  assert.equal(natsString('a"b\\c'), '"a\\"b\\\\c"');
  assert.equal(natsString("x\ny\tz"), '"x\\ny\\tz"');
  assert.throws(() => natsString("a\u0001"), HaError);
});

Deno.test("renderServerConfig: plain, with auth account, with monitoring", () => {
  const plain = renderServerConfig({
    serverName: "n1",
    host: "127.0.0.1",
    port: 4222,
    storeDir: "/data/n1",
  });
  assert.match(plain, /^server_name: "n1"$/m);
  assert.match(plain, /^port: 4222$/m);
  assert.match(plain, /store_dir: "\/data\/n1"/);
  assert.doesNotMatch(plain, /accounts|http:/);

  const auth = renderServerConfig({
    serverName: "n1",
    host: "0.0.0.0",
    port: 4222,
    storeDir: "/d",
    user: "ha",
    pass: 'p"w',
    monitorPort: 8222,
  });
  assert.match(auth, /jetstream: enabled/);
  assert.match(auth, /users: \[ \{ user: "ha", password: "p\\"w" \} \]/);
  assert.match(auth, /^http: "0.0.0.0:8222"$/m);

  assert.throws(
    () => renderServerConfig({ serverName: "n", host: "h", port: 1, storeDir: "/d", user: "u" }),
    (e: unknown) => e instanceof HaError && e.code === "config",
  );
});

Deno.test("inspectUserConfig and serverArgs: force JetStream and a server name when missing", () => {
  const none = inspectUserConfig("port: 4222\n# jetstream { }\nserver_name_x: 1\n");
  assert.deepEqual(none, { jetstream: false, serverName: false, cluster: false });
  const all = inspectUserConfig(
    "server_name: n1\njetstream {\n store_dir: /x\n}\ncluster {\n name: HA\n}\n",
  );
  assert.deepEqual(all, { jetstream: true, serverName: true, cluster: true });

  assert.deepEqual(
    serverArgs({
      configFile: "/c",
      portsDir: "/p",
      user: { facts: none, serverName: "n", storeDir: "/s" },
    }),
    ["-c", "/c", "--ports_file_dir", "/p", "-js", "-sd", "/s", "--server_name", "n"],
  );
  assert.deepEqual(
    serverArgs({ configFile: "/c", portsDir: "/p", user: { facts: all, serverName: "n" } }),
    ["-c", "/c", "--ports_file_dir", "/p"],
  );
});

Deno.test("pickClientUrl prefers loopback, then IPv4", () => {
  assert.equal(
    pickClientUrl(
      '{"nats":["nats://[fd00::2]:4222","nats://10.0.0.5:4222","nats://127.0.0.1:4222"]}',
    ),
    "nats://127.0.0.1:4222",
  );
  assert.equal(
    pickClientUrl('{"nats":["nats://[fd00::2]:4222","nats://10.0.0.5:4222"]}'),
    "nats://10.0.0.5:4222",
  );
  assert.equal(pickClientUrl("{}"), null);
  assert.equal(pickClientUrl("not json"), null);
});

Deno.test("parseServers splits lists and takes credentials out of URLs", () => {
  assert.deepEqual(parseServers(["nats://a:b%40c@h1:4222, h2:4222", "tls://h3:4222"]), {
    servers: ["nats://h1:4222", "h2:4222", "tls://h3:4222"],
    user: "a",
    pass: "b@c",
  });
  assert.deepEqual(parseServers(["nats://tok@h:4222"]), {
    servers: ["nats://h:4222"],
    token: "tok",
  });
  assert.deepEqual(parseServers(["u:p@h:1"]), { servers: ["h:1"], user: "u", pass: "p" });
  assert.deepEqual(parseServers([" , "]), { servers: [] });
});

Deno.test("nats-server log lines map to our levels", () => {
  assert.deepEqual(parseNatsLogLine("[12] 2024/01/02 03:04:05.000001 [INF] Server is ready"), {
    level: "info",
    msg: "Server is ready",
  });
  assert.equal(parseNatsLogLine("[1] 2024/01/02 03:04:05.1 [WRN] x").level, "warn");
  assert.equal(parseNatsLogLine("[1] 2024/01/02 03:04:05.1 [FTL] x").level, "error");
  assert.equal(parseNatsLogLine("[1] 2024/01/02 03:04:05.1 [DBG] x").level, "debug");
  assert.deepEqual(parseNatsLogLine("sh: 1: x: not found"), {
    level: "info",
    msg: "sh: 1: x: not found",
  });
});

Deno.test("LineTail keeps the last lines; readLines splits chunks", async () => {
  const tail = new LineTail(2);
  for (const l of ["a", "b", "c"]) tail.push(l);
  assert.deepEqual(tail.lines(), ["b", "c"]);

  const enc = new TextEncoder();
  const stream = new ReadableStream<Uint8Array>({
    start(c) {
      for (const chunk of ["one\r\ntw", "o\n", "thr", "ee"]) c.enqueue(enc.encode(chunk));
      c.close();
    },
  });
  const lines: string[] = [];
  await readLines(stream, (l) => lines.push(l));
  assert.deepEqual(lines, ["one", "two", "three"]);
});

Deno.test("describeExit names signals reported as 128+n", () => {
  assert.equal(describeExit({ success: false, code: 137, signal: null }), "killed by SIGKILL");
  assert.equal(describeExit({ success: false, code: 1, signal: null }), "exit code 1");
});

Deno.test("renderServerConfig: --nats-tls-cert/--nats-tls-key make the client port require TLS", () => {
  const text = renderServerConfig({
    serverName: "n1",
    host: "127.0.0.1",
    port: 4222,
    storeDir: "/d",
    tls: { certFile: "/c/cert.pem", keyFile: "/c/key.pem" },
  });
  assert.match(
    text,
    /^tls \{\n {2}cert_file: "\/c\/cert\.pem"\n {2}key_file: "\/c\/key\.pem"\n\}$/m,
  );
});

Deno.test("renderServerConfig: cluster block, with credentials on routes too", () => {
  const base = { serverName: "n1", host: "0.0.0.0", port: 4222, storeDir: "/d" };
  const cluster = { name: "ha", port: 6222, routes: ["nats://n1:6222", "nats://n2:6222"] };
  const open = renderServerConfig({ ...base, cluster });
  assert.match(open, /^cluster \{\n {2}name: "ha"\n {2}listen: "0\.0\.0\.0:6222"\n/m);
  assert.match(open, /routes: \[ "nats:\/\/n1:6222", "nats:\/\/n2:6222" \]/);
  assert.doesNotMatch(open, /authorization/);
  const auth = renderServerConfig({ ...base, cluster, user: "u", pass: 'p@:"' });
  assert.match(auth, /authorization \{ user: "u", password: "p@:\\"" \}/);
  assert.match(auth, /"nats:\/\/u:p%40%3A%22@n1:6222", "nats:\/\/u:p%40%3A%22@n2:6222"/);
  const v6 = renderServerConfig({ ...base, host: "::", cluster });
  assert.match(v6, /listen: "\[::\]:6222"/);
});
