import assert from "node:assert/strict";
import {
  type Config,
  type ConfigIO,
  envName,
  FLAGS,
  formatDuration,
  formatReplicationPolicy,
  formatSize,
  helpText,
  loadConfig,
  parseConfig,
  parseDuration,
  parseReplicationPolicy,
  parseSize,
  parseTimestamp,
  VERSION,
} from "../../src/config/mod.ts";
import { HaError } from "../../src/errors/mod.ts";

type Env = Record<string, string | undefined>;

function makeIO(files: Record<string, string> = {}, host = "box"): ConfigIO {
  return {
    readTextFile(path) {
      const text = files[path];
      if (text === undefined) throw new Error(`No such file or directory: ${path}`);
      return text;
    },
    hostname: () => host,
    tmpDir: () => "/tmp",
  };
}

function run(args: string[], env: Env = {}, files: Record<string, string> = {}): Config {
  const outcome = parseConfig(args, env, makeIO(files));
  assert.equal(outcome.kind, "run");
  if (outcome.kind !== "run") throw new Error("unreachable");
  return outcome.config;
}

/** Asserts a config error whose message contains every fragment. */
function fails(
  args: string[],
  fragments: string[],
  env: Env = {},
  files: Record<string, string> = {},
): void {
  assert.throws(
    () => parseConfig(args, env, makeIO(files)),
    (e: unknown) => {
      assert.ok(e instanceof HaError, `expected HaError, got ${e}`);
      assert.equal(e.code, "config");
      assert.ok(!e.message.includes("\n"), `one line: ${e.message}`);
      for (const f of fragments) {
        assert.ok(e.message.includes(f), `message ${JSON.stringify(e.message)} lacks ${f}`);
      }
      return true;
    },
  );
}

Deno.test("defaults", () => {
  const c = run([]);
  assert.deepEqual(
    c,
    {
      name: "box",
      port: 8080,
      httpAddr: "127.0.0.1",
      memory: false,
      interceptor: null,
      interceptorTimeoutMs: 5_000,
      interceptorMemoryBytes: 256 * 2 ** 20,
      logLevel: "info",
      fromLatestSnapshot: false,
      snapshotIntervalMs: 0,
      disableDdlSync: false,
      natsLogs: false,
      natsPort: 4222,
      natsAddr: "127.0.0.1",
      natsStoreDir: "/tmp/nats/box",
      natsUser: null,
      natsPass: null,
      natsConfig: null,
      natsServerBin: null,
      pgPort: 5432,
      pgAddr: "127.0.0.1",
      pgUser: "ha",
      pgPass: "ha",
      pgCert: null,
      pgKey: null,
      pgRequireTls: false,
      pgAuthTimeoutMs: 60_000,
      concurrentQueries: 50,
      extensions: [],
      asyncReplication: false,
      asyncReplicationStoreDir: "/tmp/ha-outbox/box",
      replicas: 1,
      replicationTimeoutMs: 15_000,
      replicationStream: "ha_replication",
      replicationMaxAgeMs: 86_400_000,
      replicationUrl: [],
      replicationPolicy: { kind: "all" },
      rowIdentify: "pk",
      idScheme: "cluster",
      token: null,
      attachDir: null,
      statementTimeoutMs: 30_000,
      clusterKey: null,
      maxClockSkewMs: 60_000,
      natsTlsCert: null,
      natsTlsKey: null,
      natsTlsCa: null,
      maxBodyBytes: 32 * 1024 * 1024,
      maxConnections: 500,
      httpHeaderTimeoutMs: 10_000,
      httpBodyTimeoutMs: 60_000,
      httpIdleTimeoutMs: 60_000,
      insecure: false,
      readOnly: false,
      dsns: [],
      configFile: null,
    } satisfies Config,
  );
  const outcome = parseConfig([], {}, makeIO());
  assert.ok(outcome.kind === "run");
  assert.deepEqual(outcome.sources, {});
});

Deno.test("store directories default per node name, under the temp dir", () => {
  assert.equal(run(["-n", "node2"]).natsStoreDir, "/tmp/nats/node2");
  assert.equal(run(["-n", "node2"]).asyncReplicationStoreDir, "/tmp/ha-outbox/node2");
  assert.equal(run(["-n", "a b/../c"]).natsStoreDir, "/tmp/nats/a_b_.._c");
  assert.equal(run(["-n", ".."]).natsStoreDir, "/tmp/nats/_..");
  const io = { ...makeIO(), tmpDir: () => "/var/tmp/" };
  const o = parseConfig(["-n", "x"], {}, io);
  assert.ok(o.kind === "run");
  assert.equal(o.config.natsStoreDir, "/var/tmp/nats/x");
  const noTmp = parseConfig(["-n", "x"], {}, { ...makeIO(), tmpDir: () => "" });
  assert.ok(noTmp.kind === "run");
  assert.equal(noTmp.config.natsStoreDir, "/tmp/nats/x");
  assert.equal(run(["--nats-store-dir", "/data"]).natsStoreDir, "/data");
});

Deno.test("hostname is read only when no name is given, and its failure is explained", () => {
  const io: ConfigIO = {
    ...makeIO(),
    hostname: () => {
      throw new Error("permission denied");
    },
  };
  const o = parseConfig(["--name", "n1"], {}, io);
  assert.ok(o.kind === "run" && o.config.name === "n1");
  assert.throws(() => parseConfig([], {}, io), /cannot read the hostname.*--name/);
  assert.throws(() => parseConfig([], {}, { ...makeIO(), hostname: () => " " }), /hostname/);
});

Deno.test("long and short flags, = form, booleans", () => {
  const c = run([
    "-n",
    "node1",
    "-p=8081",
    "-m",
    "-i",
    "resolver.ts",
    "--interceptor-timeout=250ms",
    "--log-level",
    "DEBUG",
    "--disable-ddl-sync",
    "--nats-logs=true",
    "--async-replication=false",
    "--token",
    "s3cret",
    "--pg-pass=",
  ]);
  assert.equal(c.name, "node1");
  assert.equal(c.port, 8081);
  assert.equal(c.memory, true);
  assert.equal(c.interceptor, "resolver.ts");
  assert.equal(c.interceptorTimeoutMs, 250);
  assert.equal(c.logLevel, "debug");
  assert.equal(c.disableDdlSync, true);
  assert.equal(c.natsLogs, true);
  assert.equal(c.asyncReplication, false);
  assert.equal(c.token, "s3cret");
  assert.equal(c.pgPass, "");
  // Go-style single-dash long names work too.
  assert.equal(run(["-port", "9000"]).port, 9000);
  assert.equal(run(["--log-level=warning"]).logLevel, "warn");
});

Deno.test("README example command lines", () => {
  const n1 = run(["-n", "node1", "-m"]);
  assert.equal(n1.name, "node1");
  assert.equal(n1.memory, true);
  const n2 = run(
    "-n node2 -m --port 8081 --pg-port 5433 --nats-port 0 --replication-url nats://localhost:4222"
      .split(" "),
  );
  assert.deepEqual(
    [n2.port, n2.pgPort, n2.natsPort, n2.replicationUrl],
    [8081, 5433, 0, ["nats://localhost:4222"]],
  );
  assert.deepEqual(run(["-m", "mydatabase.db"]).dsns, ["mydatabase.db"]);
  assert.deepEqual(run(["file:mydatabase.db?_journal=WAL&_busy_timeout=500"]).dsns, [
    "file:mydatabase.db?_journal=WAL&_busy_timeout=500",
  ]);
  assert.equal(run(["--from-latest-snapsot"]).fromLatestSnapshot, true);
});

Deno.test("positional DSNs keep their order; -- ends flags", () => {
  assert.deepEqual(run(["a.db", "-m", "b.db", "--port", "8081", "c.db"]).dsns, [
    "a.db",
    "b.db",
    "c.db",
  ]);
  const c = run(["-m", "--", "--port", "-", "x.db"]);
  assert.deepEqual(c.dsns, ["--port", "-", "x.db"]);
  assert.equal(c.port, 8080);
  assert.deepEqual(run(["-"]).dsns, ["-"]);
});

Deno.test("both snapshot spellings set the same field", () => {
  assert.equal(run(["--from-latest-snapshot"]).fromLatestSnapshot, true);
  assert.equal(run(["--from-latest-snapsot"]).fromLatestSnapshot, true);
  assert.equal(run(["--from-latest-snapsot=false"]).fromLatestSnapshot, false);
  assert.equal(run([], { HA_FROM_LATEST_SNAPSHOT: "1" }).fromLatestSnapshot, true);
  assert.equal(run(["-c", "f"], {}, { f: "from-latest-snapsot\n" }).fromLatestSnapshot, true);
  assert.equal(run(["-c", "f"], {}, { f: "from-latest-snapshot\n" }).fromLatestSnapshot, true);
});

Deno.test("environment variables", () => {
  const env: Env = {
    HA_NAME: "envnode",
    HA_PORT: "9001",
    HA_MEMORY: "yes",
    HA_NATS_PORT: "0",
    HA_NATS_SERVER_BIN: "/opt/nats-server",
    HA_REPLICATION_URL: "nats://a:4222,nats://b:4222",
    HA_REPLICATION_POLICY: "by_start_sequence=10",
    HA_ROW_IDENTIFY: "full",
    HA_MAX_BODY_SIZE: "1MB",
    HA_EXTENSIONS: "a.so, b.so",
    HA_TOKEN: "",
    HA_UNRELATED: "ignored",
  };
  const c = run([], env);
  assert.equal(c.name, "envnode");
  assert.equal(c.port, 9001);
  assert.equal(c.memory, true);
  assert.equal(c.natsPort, 0);
  assert.equal(c.natsServerBin, "/opt/nats-server");
  assert.deepEqual(c.replicationUrl, ["nats://a:4222", "nats://b:4222"]);
  assert.deepEqual(c.replicationPolicy, { kind: "by_start_sequence", seq: 10 });
  assert.equal(c.rowIdentify, "full");
  assert.equal(c.maxBodyBytes, 1_000_000);
  assert.deepEqual(c.extensions, ["a.so", "b.so"]);
  assert.equal(c.token, null, "empty env var counts as unset");
  assert.equal(c.natsStoreDir, "/tmp/nats/envnode");
  for (
    const [raw, want] of [["true", true], ["FALSE", false], ["1", true], ["0", false], [
      "yes",
      true,
    ], ["no", false]] as const
  ) {
    assert.equal(run([], { HA_ASYNC_REPLICATION: raw }).asyncReplication, want, raw);
  }
  fails([], ['invalid value "maybe" for --memory (env HA_MEMORY)', "true or false"], {
    HA_MEMORY: "maybe",
  });
  fails([], ['"abc" for --port (env HA_PORT)', "1..65535"], { HA_PORT: "abc" });
});

Deno.test("config file: comments, bare flags, = and quotes", () => {
  const file = [
    "# a full-line comment",
    "",
    "name node7",
    "--port=9100",
    "-memory",
    "nats-port = 0 # end-of-line comment",
    "  log-level   error  ",
    "disable-ddl-sync   # bare flag with comment",
    "async-replication false",
    'pg-pass "p #not a comment"',
    "token 'abc def'",
    "extensions a.so",
    "extensions b.so,c.so",
    "replication-policy by_start_time=2024-05-01 12:00:00",
    "port#x 1",
  ];
  // The last line's key is "port#x", an unknown key; check it separately.
  const good = file.slice(0, -1).join("\r\n");
  const c = run(["-c", "ha.conf"], {}, { "ha.conf": good });
  assert.equal(c.configFile, "ha.conf");
  assert.equal(c.name, "node7");
  assert.equal(c.port, 9100);
  assert.equal(c.memory, true);
  assert.equal(c.natsPort, 0);
  assert.equal(c.logLevel, "error");
  assert.equal(c.disableDdlSync, true);
  assert.equal(c.asyncReplication, false);
  assert.equal(c.pgPass, "p #not a comment");
  assert.equal(c.token, "abc def");
  assert.deepEqual(c.extensions, ["a.so", "b.so", "c.so"]);
  assert.deepEqual(c.replicationPolicy, {
    kind: "by_start_time",
    time: new Date("2024-05-01T12:00:00Z"),
  });
  fails(["-c", "bad.conf"], ['unknown key "port#x"', "config file bad.conf line 2"], {}, {
    "bad.conf": "# ok\nport#x 1\n",
  });
  // HA_CONFIG names the file too.
  assert.equal(run([], { HA_CONFIG: "e.conf" }, { "e.conf": "port 9200" }).port, 9200);
});

Deno.test("config file errors name file and line", () => {
  fails(["-c", "f"], ['unknown key "bogus"', "config file f line 3"], {}, {
    f: "port 1\n\nbogus 1\n",
  });
  fails(["-c", "f"], ['unknown key "nats-prot"', "(did you mean --nats-port?)"], {}, {
    f: "nats-prot 1",
  });
  fails(["-c", "f"], ['"abc" for --port (config file f line 2)', "1..65535"], {}, {
    f: "# x\nport abc",
  });
  fails(["-c", "f"], ["missing value for --port in config file f line 1"], {}, { f: "port" });
  fails(["-c", "f"], ["--config cannot be set in a config file (config file f line 1)"], {}, {
    f: "config other.conf",
  });
  fails(["-c", "f"], ["badly quoted value for --token", "line 1"], {}, { f: 'token "abc' });
  fails(["-c", "missing.conf"], ['cannot read config file "missing.conf"', "No such file"]);
});

Deno.test("precedence: flag > env > config file > default", () => {
  const files = { f: "port 1001\npg-port 1002\nnats-port 1003\n" };
  const env = { HA_CONFIG: "f", HA_PORT: "2001", HA_PG_PORT: "2002" };
  const outcome = parseConfig(["--port", "3001"], env, makeIO(files));
  assert.ok(outcome.kind === "run");
  const c = outcome.config;
  assert.equal(c.port, 3001);
  assert.equal(c.pgPort, 2002);
  assert.equal(c.natsPort, 1003);
  assert.equal(c.replicas, 1);
  assert.deepEqual(outcome.sources, {
    configFile: "env",
    port: "flag",
    pgPort: "env",
    natsPort: "file",
  });
  // The -c flag beats HA_CONFIG.
  assert.equal(run(["-c", "g"], { HA_CONFIG: "f" }, { ...files, g: "port 4001" }).port, 4001);
  // A repeated flag: the last wins; lists add up within one source.
  assert.equal(run(["-p", "1", "-p", "2"]).port, 2);
  assert.deepEqual(run(["--extensions", "a", "--extensions", "b,c"]).extensions, ["a", "b", "c"]);
  // A higher source replaces a list entirely.
  assert.deepEqual(run(["--extensions", "x"], { HA_EXTENSIONS: "y" }).extensions, ["x"]);
});

Deno.test("ports", () => {
  assert.equal(run(["--port", "1"]).port, 1);
  assert.equal(run(["--port", "65535"]).port, 65535);
  fails(["--port", "0"], ['invalid value "0" for --port: expected a TCP port 1..65535']);
  fails(["--port", "65536"], ['"65536" for --port', "1..65535"]);
  fails(["--port", "abc"], ['invalid value "abc" for --port: expected a TCP port 1..65535']);
  fails(["--port=-1"], ['"-1" for --port']);
  fails(["--port", "80.5"], ['"80.5" for --port']);
  assert.equal(run(["--nats-port", "0"]).natsPort, 0);
  assert.equal(run(["--pg-port", "0"]).pgPort, 0);
  fails(["--nats-port", "70000"], ['"70000" for --nats-port: expected a TCP port 0..65535']);
  fails(["--pg-port", "x"], ['"x" for --pg-port: expected a TCP port 0..65535 (0 disables)']);
  fails(["--port", "5432"], ["--port and --pg-port are both 5432"]);
  fails(["--pg-port", "4222"], ["--pg-port and --nats-port are both 4222"]);
  const c = run(["--pg-port", "0", "--nats-port", "0"]);
  assert.deepEqual([c.pgPort, c.natsPort], [0, 0]);
});

Deno.test("durations", () => {
  const cases: [string, number][] = [
    ["500ms", 500],
    ["15s", 15_000],
    ["5m", 300_000],
    ["24h", 86_400_000],
    ["1h30m", 5_400_000],
    ["1.5s", 1_500],
    ["2d", 172_800_000],
    ["0", 0],
    ["0s", 0],
  ];
  for (const [text, ms] of cases) {
    assert.equal(parseDuration(text), ms, text);
    assert.equal(run(["--replication-max-age", text]).replicationMaxAgeMs, ms, text);
  }
  assert.equal(run(["--snapshot-interval", "1m"]).snapshotIntervalMs, 60_000);
  assert.equal(run(["--replication-timeout", "500ms"]).replicationTimeoutMs, 500);
  for (const bad of ["15", "abc", "1x", "-5s", "1h 30m", "", "s"]) {
    fails([`--snapshot-interval=${bad}`], [
      `invalid value ${JSON.stringify(bad)} for --snapshot-interval`,
      "expected a duration like 500ms, 15s",
    ]);
  }
  fails(["--replication-timeout", "0s"], [
    '"0s" for --replication-timeout: expected a positive duration',
  ]);
  fails(["--interceptor-timeout", "0"], ['"0" for --interceptor-timeout', "positive"]);
  fails(["--snapshot-interval", "30d"], ['"30d" for --snapshot-interval', "at most 24d"]);
  for (const ms of [0, 500, 15_000, 5_400_000, 86_400_000, 1_500, 3_723_004]) {
    assert.equal(parseDuration(formatDuration(ms)), ms);
  }
  assert.equal(formatDuration(5_400_000), "1h30m");
});

Deno.test("sizes", () => {
  const cases: [string, number][] = [
    ["1024", 1024],
    ["10KB", 10_000],
    ["10KiB", 10_240],
    ["64MB", 64_000_000],
    ["1GiB", 2 ** 30],
    ["32mib", 32 * 2 ** 20],
    ["2M", 2 * 2 ** 20],
    ["1.5KiB", 1536],
    ["100 B", 100],
  ];
  for (const [text, bytes] of cases) {
    assert.equal(parseSize(text), bytes, text);
    assert.equal(run(["--max-body-size", text]).maxBodyBytes, bytes, text);
  }
  for (const bad of ["0", "abc", "10XB", "-1", "1e3", "KB"]) {
    fails(["--max-body-size", bad], [
      `invalid value ${JSON.stringify(bad)} for --max-body-size: expected a size like 1024`,
    ]);
  }
  assert.equal(formatSize(32 * 2 ** 20), "32MiB");
  assert.equal(formatSize(1000), "1000");
});

Deno.test("replication policies", () => {
  assert.deepEqual(run(["--replication-policy", "all"]).replicationPolicy, { kind: "all" });
  assert.deepEqual(run(["--replication-policy", "LAST"]).replicationPolicy, { kind: "last" });
  assert.deepEqual(run(["--replication-policy", "new"]).replicationPolicy, { kind: "new" });
  assert.deepEqual(run(["--replication-policy=by_start_sequence=42"]).replicationPolicy, {
    kind: "by_start_sequence",
    seq: 42,
  });
  const times: [string, string][] = [
    ["2024-05-01 12:00:00", "2024-05-01T12:00:00.000Z"],
    ["2024-05-01T12:00:00Z", "2024-05-01T12:00:00.000Z"],
    ["2024-05-01t12:00:00z", "2024-05-01T12:00:00.000Z"],
    ["2024-05-01T14:30:00+02:30", "2024-05-01T12:00:00.000Z"],
    ["2024-05-01T07:00:00.25-05:00", "2024-05-01T12:00:00.250Z"],
    ["2024-02-29T00:00:00.123456789Z", "2024-02-29T00:00:00.123Z"],
    ["0050-01-01 00:00:00", "0050-01-01T00:00:00.000Z"],
  ];
  for (const [text, iso] of times) {
    const p = run(["--replication-policy", `by_start_time=${text}`]).replicationPolicy;
    assert.ok(p.kind === "by_start_time", text);
    assert.equal(p.time.toISOString(), iso, text);
    assert.equal(parseTimestamp(text).toISOString(), iso);
  }
  for (
    const bad of [
      "2023-02-29 00:00:00",
      "2024-13-01 00:00:00",
      "2024-04-31 00:00:00",
      "2024-05-01 24:00:00",
      "2024-05-01 12:60:00",
      "2024-05-01",
      "yesterday",
      "2024-05-01T12:00:00+25:00",
    ]
  ) {
    fails(["--replication-policy", `by_start_time=${bad}`], [
      `for --replication-policy: expected by_start_time=TIME with TIME an RFC 3339 time or`,
      '"YYYY-MM-DD HH:MM:SS" (UTC)',
    ]);
  }
  for (const bad of ["by_start_sequence=0", "by_start_sequence=x", "by_start_sequence=-1"]) {
    fails(["--replication-policy", bad], [
      `invalid value ${JSON.stringify(bad)} for --replication-policy`,
      "by_start_sequence=N with N an integer >= 1",
    ]);
  }
  fails(["--replication-policy", "first"], [
    'invalid value "first" for --replication-policy: expected one of all, last, new, ' +
    "by_start_sequence=N",
  ]);
  fails(["--replication-policy", "all=1"], ["expected one of all, last, new"]);
  for (
    const text of [
      "all",
      "last",
      "new",
      "by_start_sequence=7",
      "by_start_time=2024-05-01T12:00:00.000Z",
    ]
  ) {
    assert.equal(formatReplicationPolicy(parseReplicationPolicy(text)), text);
  }
});

Deno.test("row identify, log level, replicas, concurrent queries, stream name", () => {
  assert.equal(run(["--row-identify", "rowid"]).rowIdentify, "rowid");
  assert.equal(run(["--row-identify", "Full"]).rowIdentify, "full");
  fails(["--row-identify", "x"], [
    'invalid value "x" for --row-identify: expected one of pk, rowid, full',
  ]);
  assert.equal(run(["--id-scheme", "JS-Safe"]).idScheme, "js-safe");
  assert.equal(run([]).idScheme, "cluster");
  fails(["--id-scheme", "uuid"], [
    'invalid value "uuid" for --id-scheme: expected one of cluster, js-safe, sqlite',
  ]);
  fails(["--log-level", "trace"], [
    'invalid value "trace" for --log-level: expected one of debug, info, warn, error',
  ]);
  assert.equal(run(["--replicas", "5"]).replicas, 5);
  for (const bad of ["0", "6", "x", "2.5"]) {
    fails(["--replicas", bad], [
      `invalid value ${JSON.stringify(bad)} for --replicas: expected an integer 1..5`,
    ]);
  }
  assert.equal(run(["--concurrent-queries", "1"]).concurrentQueries, 1);
  fails(["--concurrent-queries", "0"], ['"0" for --concurrent-queries: expected an integer 1..']);
  assert.equal(run(["--replication-stream", "my-stream_2"]).replicationStream, "my-stream_2");
  for (const bad of ["a b", "a.b", "a*", "a>", "a/b", "a\\b", ""]) {
    fails([`--replication-stream=${bad}`], [
      `invalid value ${JSON.stringify(bad)} for --replication-stream: expected a NATS stream name`,
    ]);
  }
  fails(["--name", ""], ['"" for --name: expected a non-empty node name']);
  fails(["--pg-user", " "], ['" " for --pg-user: expected a non-empty user name']);
});

Deno.test("replication URL list", () => {
  assert.deepEqual(run(["--replication-url", "nats://a:4222, tls://u:p@b:4443,"]).replicationUrl, [
    "nats://a:4222",
    "tls://u:p@b:4443",
  ]);
  assert.deepEqual(run(["--replication-url", "localhost:4222"]).replicationUrl, [
    "nats://localhost:4222",
  ]);
  assert.deepEqual(run(["--replication-url", ""]).replicationUrl, []);
  for (const bad of ["http://a:4222", "nats://", "nats://a:4222/path", "nats://a:99999"]) {
    fails(["--replication-url", `nats://ok:4222,${bad}`], [
      `invalid value ${JSON.stringify(bad)} for --replication-url: expected comma-separated NATS`,
    ]);
  }
});

Deno.test("pairs: nats user/pass and pg cert/key", () => {
  const c = run([
    "--nats-user",
    "u",
    "--nats-pass",
    "p",
    "--pg-cert",
    "c.pem",
    "--pg-key",
    "k.pem",
  ]);
  assert.deepEqual([c.natsUser, c.natsPass, c.pgCert, c.pgKey], ["u", "p", "c.pem", "k.pem"]);
  fails(["--nats-user", "u"], [
    "--nats-user and --nats-pass must be set together: --nats-user is set but --nats-pass is not",
  ]);
  fails([], ["--nats-pass is set but --nats-user is not"], { HA_NATS_PASS: "p" });
  fails(["--pg-cert", "c.pem"], ["--pg-cert and --pg-key must be set together"]);
  fails(["--pg-key", "k.pem"], ["--pg-key is set but --pg-cert is not"]);
});

Deno.test("unknown flags and missing values", () => {
  fails(["--bogus"], ["unknown flag --bogus", "ha --help"]);
  fails(["--prot", "1"], ["unknown flag --prot (did you mean --port?)"]);
  fails(["-x"], ["unknown flag -x"]);
  fails(["--port"], ["missing value for --port"]);
  fails(["--name", "--port", "1"], ["missing value for --name", "--name=VALUE"]);
  fails(["--name", "--"], ["missing value for --name"]);
  // A value that starts with "-" but is no flag is taken as the value.
  fails(["--replicas", "-1"], ['"-1" for --replicas']);
  assert.equal(run(["--pg-pass", "-secret"]).pgPass, "-secret");
  assert.equal(run(["--name=--x"]).name, "--x");
});

Deno.test("help lists every flag and env var, and wins over bad values", () => {
  for (const args of [["--help"], ["-h"], ["--port", "abc", "--help"]]) {
    const o = parseConfig(args, {}, makeIO());
    assert.equal(o.kind, "help");
  }
  const text = helpText();
  for (const f of FLAGS) {
    assert.ok(text.includes(`--${f.long}`), f.long);
    for (const alias of f.aliases) assert.ok(text.includes(`--${alias}`), alias);
    if (f.short) assert.ok(text.includes(`-${f.short}, --${f.long}`), f.short);
    if (f.env) assert.ok(text.includes(f.env), f.env);
    if (f.defaultText) assert.ok(text.includes(f.defaultText), f.defaultText);
    assert.ok(text.includes(f.help), f.help);
  }
  for (const name of ["--from-latest-snapsot", "--nats-server-bin", "--token", "--max-body-size"]) {
    assert.ok(text.includes(name), name);
  }
  assert.equal(FLAGS.find((f) => f.long === "help")?.env, null);
  assert.equal(envName("async-replication-store-dir"), "HA_ASYNC_REPLICATION_STORE_DIR");
  const longs = FLAGS.flatMap((f) => [f.long, ...f.aliases]);
  assert.equal(new Set(longs).size, longs.length, "long names are unique");
});

Deno.test("version from flag, env and file", () => {
  for (
    const [args, env, files] of [
      [["--version"], {}, {}],
      [[], { HA_VERSION: "true" }, {}],
      [["-c", "f"], {}, { f: "version" }],
    ] as [string[], Env, Record<string, string>][]
  ) {
    const o = parseConfig(args, env, makeIO(files));
    assert.ok(o.kind === "version");
    assert.ok(o.text.includes(VERSION));
  }
  assert.equal(VERSION, "0.1.0");
});

Deno.test("loadConfig reads the real process inputs", () => {
  const o = loadConfig(["--version"]);
  assert.equal(o.kind, "version");
  const r = loadConfig(["-n", "loaded", "--nats-port", "0", "x.db"]);
  assert.ok(r.kind === "run");
  assert.equal(r.config.name, "loaded");
  assert.ok(r.config.natsStoreDir.endsWith("/nats/loaded"));
  assert.deepEqual(r.config.dsns, ["x.db"]);
});

Deno.test("HA_TEST_CLOCK_OFFSET_MS (test only): integer offset of the clock, else unset", () => {
  const run = (env: Env) => {
    const o = parseConfig(["-n", "n"], env, makeIO());
    assert.ok(o.kind === "run");
    return o.config.testClockOffsetMs;
  };
  assert.equal(run({}), undefined);
  assert.equal(run({ HA_TEST_CLOCK_OFFSET_MS: "-30000" }), -30000);
  assert.throws(
    () => run({ HA_TEST_CLOCK_OFFSET_MS: "soon" }),
    (e) => e instanceof HaError && /HA_TEST_CLOCK_OFFSET_MS/.test(e.message),
  );
});

Deno.test("--read-only: flag, HA_READ_ONLY and config-file key", () => {
  assert.equal(run(["--read-only"]).readOnly, true);
  assert.equal(run([], { HA_READ_ONLY: "true" }).readOnly, true);
  assert.equal(run(["-c", "f.conf"], {}, { "f.conf": "read-only true\n" }).readOnly, true);
  assert.equal(run(["--read-only=false"], { HA_READ_ONLY: "true" }).readOnly, false);
  fails([], ['"maybe" for --read-only (env HA_READ_ONLY)'], { HA_READ_ONLY: "maybe" });
});
