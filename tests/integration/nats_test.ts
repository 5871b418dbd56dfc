/**
 * The embedded nats-server and NATS connections, against the real nats-server binary.
 * Every process a test starts is stopped by pid; ports are free loopback ports.
 */

import assert from "node:assert/strict";
import { jetstream, jetstreamManager } from "@nats-io/jetstream";
import { HaError } from "../../src/errors/mod.ts";
import { createLogger, type Logger } from "../../src/log/mod.ts";
import {
  connectNats,
  EmbeddedNatsServer,
  type EmbeddedNatsServerOptions,
  findNatsServer,
  NATS_SERVER_NOT_FOUND,
  type NatsClient,
  type NatsServerStatus,
} from "../../src/nats/mod.ts";
import { freePort } from "./helpers/cluster.ts";

const opts = { sanitizeOps: false, sanitizeResources: false };
const ROOT = new URL("../../", import.meta.url);

/** Alive = exists and is not a zombie (Linux `/proc`). */
function pidAlive(pid: number): boolean {
  try {
    const stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
    return stat.slice(stat.lastIndexOf(")") + 2, stat.lastIndexOf(")") + 3) !== "Z";
  } catch {
    return false;
  }
}

async function waitFor(what: string, cond: () => boolean | Promise<boolean>, ms = 10_000) {
  const deadline = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Listens on `port` as soon as the killed server released it. */
async function grab(port: number): Promise<Deno.Listener> {
  let l: Deno.Listener | null = null;
  await waitFor(`port ${port} to be free`, () => {
    try {
      l = Deno.listen({ port, hostname: "127.0.0.1" });
      return true;
    } catch {
      return false;
    }
  }, 2_000);
  return l!;
}

function quietLogger(lines: string[] = []): Logger {
  return createLogger("debug", (l) => lines.push(l));
}

/** Tracks what a test starts so that `cleanup` stops all of it. */
class Scope {
  servers: EmbeddedNatsServer[] = [];
  clients: NatsClient[] = [];
  pids: number[] = [];
  dirs: string[] = [];

  async dir(): Promise<string> {
    const d = await Deno.makeTempDir({ prefix: "ha-nats-test-" });
    this.dirs.push(d);
    return d;
  }

  server(o: Partial<EmbeddedNatsServerOptions> & { port: number }): EmbeddedNatsServer {
    const s = new EmbeddedNatsServer({
      bin: "/usr/sbin/nats-server",
      host: "127.0.0.1",
      serverName: "test",
      logger: quietLogger(),
      ...o,
    });
    this.servers.push(s);
    return s;
  }

  async cleanup(): Promise<void> {
    for (const c of this.clients) await c.close().catch(() => {});
    await Promise.all(this.servers.map((s) => s.stop()));
    for (const pid of this.pids) {
      try {
        Deno.kill(pid, "SIGKILL");
      } catch {
        // gone
      }
    }
    for (const d of this.dirs) await Deno.remove(d, { recursive: true }).catch(() => {});
  }
}

async function publishOnce(client: NatsClient, subject: string, data: string) {
  return await jetstream(client.nc).publish(subject, data);
}

Deno.test("embedded server: start, JetStream stream + publish/ack, stop", opts, async () => {
  const t = new Scope();
  try {
    const lines: string[] = [];
    const statuses: NatsServerStatus[] = [];
    const server = t.server({
      port: freePort(),
      storeDir: `${await t.dir()}/store`,
      serverName: "node 1.example",
      logs: true,
      logger: quietLogger(lines),
      onStatusChange: (s) => statuses.push(s),
    });
    await server.start();
    const st = server.status();
    assert.equal(st.state, "running");
    assert.equal(st.running, true);
    assert.ok(st.pid !== null && pidAlive(st.pid));
    assert.equal(server.serverName, "node_1_example");
    assert.match(server.url!, /^nats:\/\/127\.0\.0\.1:\d+$/);
    assert.ok(
      lines.some((l) => {
        const o = JSON.parse(l);
        return o.component === "nats-server" && o.msg === "Server is ready";
      }),
      "nats-server output is forwarded when logs is on",
    );

    const client = await connectNats({ servers: [server.url!], name: "t", logger: quietLogger() });
    t.clients.push(client);
    assert.equal(client.isConnected(), true);
    const jsm = await jetstreamManager(client.nc);
    await jsm.streams.add({ name: "T", subjects: ["t.>"] });
    const ack = await publishOnce(client, "t.a", "hello");
    assert.equal(ack.stream, "T");
    assert.equal(ack.seq, 1);
    await client.close();
    assert.equal(client.isConnected(), false);

    const pid = st.pid!;
    await server.stop();
    assert.equal(pidAlive(pid), false);
    await server.stop(); // idempotent
    assert.equal(server.status().state, "stopped");
    assert.deepEqual(
      [...new Set(statuses.map((s) => s.state))],
      ["starting", "running", "stopping", "stopped"],
    );
  } finally {
    await t.cleanup();
  }
});

Deno.test(
  "embedded server: user/pass auth, JetStream for that user, URL credentials",
  opts,
  async () => {
    const t = new Scope();
    try {
      const pass = 'p"$#\\w @:/x';
      const server = t.server({
        port: freePort(),
        storeDir: await t.dir(),
        user: "ha",
        pass,
      });
      await server.start();
      const url = server.url!;
      const logger = quietLogger();

      await assert.rejects(
        connectNats({ servers: [url], user: "ha", pass: "wrong", name: "t", logger }),
        (e: unknown) =>
          e instanceof HaError && e.code === "unavailable" && /Authorization/.test(e.message),
      );
      await assert.rejects(connectNats({ servers: [url], name: "t", logger }), /Authorization/);

      const byFlags = await connectNats({ servers: [url], user: "ha", pass, name: "t", logger });
      t.clients.push(byFlags);
      const jsm = await jetstreamManager(byFlags.nc);
      await jsm.streams.add({ name: "A", subjects: ["a.>"] });
      assert.equal((await publishOnce(byFlags, "a.1", "x")).seq, 1);

      const withCreds = url.replace("nats://", `nats://ha:${encodeURIComponent(pass)}@`);
      const byUrl = await connectNats({ servers: [withCreds], name: "t", logger });
      t.clients.push(byUrl);
      assert.deepEqual(byUrl.servers, [url], "credentials are not kept in the URL list");
      assert.equal((await publishOnce(byUrl, "a.2", "y")).seq, 2);
    } finally {
      await t.cleanup();
    }
  },
);

Deno.test("embedded server: restarted after kill -9, clients reconnect", opts, async () => {
  const t = new Scope();
  try {
    const statuses: NatsServerStatus[] = [];
    const server = t.server({
      port: freePort(),
      storeDir: await t.dir(),
      restartDelayMs: 100,
      onStatusChange: (s) => statuses.push(s),
    });
    await server.start();
    const client = await connectNats({
      servers: [server.url!],
      name: "t",
      logger: quietLogger(),
      reconnectTimeWaitMs: 100,
      reconnectJitterMs: 50,
    });
    t.clients.push(client);
    const jsm = await jetstreamManager(client.nc);
    await jsm.streams.add({ name: "R", subjects: ["r.>"] });
    await publishOnce(client, "r.1", "before");

    const oldPid = server.status().pid!;
    Deno.kill(oldPid, "SIGKILL");
    await waitFor("the restart", () => server.status().restarts === 1 && server.status().running);
    const st = server.status();
    assert.ok(st.pid !== null && st.pid !== oldPid && pidAlive(st.pid));
    assert.equal(pidAlive(oldPid), false);
    assert.match(st.lastError ?? "", /killed by SIGKILL/);
    assert.ok(statuses.some((s) => s.state === "restarting" && !s.running));

    const fresh = await connectNats({ servers: [server.url!], name: "t2", logger: quietLogger() });
    t.clients.push(fresh);
    const info = await (await jetstreamManager(fresh.nc)).streams.info("R");
    assert.equal(info.state.messages, 1, "the store dir survived the crash");
    assert.equal((await publishOnce(fresh, "r.2", "after")).seq, 2);

    await waitFor("the old client to reconnect", () => client.isConnected());
    assert.equal((await publishOnce(client, "r.3", "again")).seq, 3);
  } finally {
    await t.cleanup();
  }
});

Deno.test(
  "embedded server: restart retries with backoff, stop() ends a restart loop",
  opts,
  async () => {
    const t = new Scope();
    let blocker: Deno.Listener | null = null;
    try {
      const port = freePort();
      const server = t.server({
        port,
        storeDir: await t.dir(),
        restartDelayMs: 100,
        maxRestartDelayMs: 300,
        readyTimeoutMs: 2_000,
      });
      await server.start();
      Deno.kill(server.status().pid!, "SIGKILL");
      blocker = await grab(port); // the restart finds the port taken
      await waitFor(
        "a failed restart",
        () => /address already in use/.test(server.status().lastError ?? ""),
      );
      assert.equal(server.status().state, "restarting");
      assert.equal(server.status().restarts, 0);
      blocker.close();
      blocker = null;
      await waitFor("the supervisor to recover", () => server.status().running);
      assert.equal(server.status().restarts, 1);

      Deno.kill(server.status().pid!, "SIGKILL");
      blocker = await grab(port);
      await waitFor("restarting again", () => server.status().state === "restarting");
      // The port stays taken, so the loop would retry forever: stop() returning ends it.
      await server.stop();
      assert.equal(server.status().state, "stopped");
    } finally {
      blocker?.close();
      await t.cleanup();
    }
  },
);

Deno.test("nats-server binary: resolution and the missing-binary error", async () => {
  const missing = await findNatsServer({
    flag: null,
    path: "/nonexistent",
    extraDirs: [],
    embedded: null,
  })
    .then(() => null, (e) => e);
  assert.ok(missing instanceof HaError);
  assert.equal(missing.code, "config");
  assert.equal(missing.message, NATS_SERVER_NOT_FOUND);

  await assert.rejects(
    findNatsServer({ flag: "/nonexistent/nats-server" }),
    (e: unknown) =>
      e instanceof HaError && e.code === "config" && /--nats-server-bin/.test(e.message),
  );
  assert.equal(await findNatsServer({ flag: "/usr/sbin/nats-server" }), "/usr/sbin/nats-server");
  assert.equal(
    await findNatsServer({
      flag: null,
      path: "/nonexistent:/usr/sbin",
      extraDirs: [],
      embedded: null, // a vendor/ copy left by `deno task compile` would win
    }),
    "/usr/sbin/nats-server",
  );
  assert.equal(
    await findNatsServer({ flag: null, path: "", embedded: null }),
    "/usr/sbin/nats-server",
    "/usr/sbin is searched even when not on PATH (Debian)",
  );
});

Deno.test("nats-server binary: the copy embedded by deno compile is copied out and runs", async () => {
  const dir = await Deno.makeTempDir({ prefix: "ha-nats-test-" });
  try {
    // In a compiled binary the included file is readable but not executable: simulate with 0644.
    const embedded = `${dir}/vendor/nats-server`;
    await Deno.mkdir(`${dir}/vendor`);
    await Deno.copyFile("/usr/sbin/nats-server", embedded);
    await Deno.chmod(embedded, 0o644);
    const find = () =>
      findNatsServer({
        flag: null,
        path: "",
        extraDirs: [],
        embedded: new URL(`file://${embedded}`),
        compiled: true,
        cacheDir: `${dir}/cache`,
      });
    const bin = await find();
    assert.match(bin, /\/cache\/nats-server-[0-9a-f]{16}$/);
    assert.equal((await Deno.stat(bin)).mode! & 0o777, 0o755);
    assert.equal(await find(), bin, "a second start reuses the copy");
    const out = await new Deno.Command(bin, { args: ["--version"] }).output();
    assert.match(new TextDecoder().decode(out.stdout), /nats-server: v2/);

    // From source, an executable vendor/nats-server is used in place.
    await Deno.chmod(embedded, 0o755);
    assert.equal(
      await findNatsServer({
        flag: null,
        path: "",
        extraDirs: [],
        embedded: new URL(`file://${embedded}`),
        compiled: false,
      }),
      embedded,
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("embedded server: clear errors for a bad binary and a port in use", opts, async () => {
  const t = new Scope();
  const blocker = Deno.listen({ port: 0, hostname: "127.0.0.1" });
  try {
    const badBin = t.server({
      port: freePort(),
      storeDir: await t.dir(),
      bin: "/nonexistent",
    });
    await assert.rejects(badBin.start(), (e: unknown) => {
      return e instanceof HaError && e.code === "unavailable" && /exit code 127/.test(e.message) &&
        /not found/.test(e.message);
    });

    const busy = t.server({ port: (blocker.addr as Deno.NetAddr).port, storeDir: await t.dir() });
    const err = await busy.start().then(() => null, (e) => e);
    assert.ok(err instanceof HaError, String(err));
    assert.match(err.message, /nats-server failed to start/);
    assert.match(err.message, /address already in use/);
    assert.ok(Array.isArray(err.details.logTail));
    assert.doesNotMatch(err.message, /not ready after/, "failed on exit, not on the ready timeout");
    assert.equal(busy.status().running, false);
    assert.equal(busy.status().state, "stopped");
  } finally {
    blocker.close();
    await t.cleanup();
  }
});

Deno.test("embedded server: does not outlive a parent killed with SIGKILL", opts, async () => {
  const t = new Scope();
  try {
    const dir = await t.dir();
    const script = `${dir}/parent.ts`;
    await Deno.writeTextFile(
      script,
      `import { EmbeddedNatsServer } from ${JSON.stringify(new URL("src/nats/mod.ts", ROOT).href)};
import { createLogger } from ${JSON.stringify(new URL("src/log/mod.ts", ROOT).href)};
const server = new EmbeddedNatsServer({
  bin: "/usr/sbin/nats-server", host: "127.0.0.1", port: Number(Deno.args[0]),
  storeDir: Deno.args[1], serverName: "orphan", logger: createLogger("error"),
});
await server.start();
console.log(JSON.stringify({ pid: server.status().pid }));
setInterval(() => {}, 1_000);
`,
    );
    const parent = new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "-A",
        "--config",
        new URL("deno.json", ROOT).pathname,
        script,
        String(freePort()),
        `${dir}/store`,
      ],
      env: { TMPDIR: dir }, // the parent's run dir cannot be removed by a SIGKILLed parent
      stdout: "piped",
      stderr: "inherit",
      stdin: "null",
    }).spawn();
    t.pids.push(parent.pid);
    const reader = parent.stdout.pipeThrough(new TextDecoderStream()).getReader();
    let out = "";
    while (!out.includes("\n")) {
      const { value, done } = await reader.read();
      if (done) break;
      out += value;
    }
    const natsPid: number = JSON.parse(out.split("\n")[0]).pid;
    t.pids.push(natsPid);
    assert.ok(pidAlive(natsPid));

    Deno.kill(parent.pid, "SIGKILL");
    await parent.status;
    reader.releaseLock();
    await parent.stdout.cancel().catch(() => {});
    await waitFor("nats-server to exit after its parent died", () => !pidAlive(natsPid), 5_000);
  } finally {
    await t.cleanup();
  }
});

Deno.test("embedded server: 3-node cluster from --nats-config files", opts, async () => {
  const t = new Scope();
  try {
    const dir = await t.dir();
    const nodes = await Promise.all(
      [1, 2, 3].map((i) => ({ i, client: freePort(), route: freePort() })),
    );
    const servers = await Promise.all(nodes.map(async (n) => {
      const routes = nodes.filter((m) => m !== n).map((m) => `nats://127.0.0.1:${m.route}`);
      const file = `${dir}/n${n.i}.conf`;
      await Deno.writeTextFile(
        file,
        `# node ${n.i}
server_name: n${n.i}
listen: 127.0.0.1:${n.client}
jetstream { store_dir: "${dir}/store${n.i}" }
cluster {
  name: HA
  listen: 127.0.0.1:${n.route}
  routes: [ ${routes.join(", ")} ]
}
`,
      );
      return t.server({ port: 0, configFile: file, serverName: `ignored${n.i}` });
    }));
    await Promise.all(servers.map((s) => s.start()));
    for (const [k, s] of servers.entries()) {
      assert.equal(s.status().running, true);
      assert.equal(s.url, `nats://127.0.0.1:${nodes[k].client}`);
    }

    const client = await connectNats({
      servers: servers.map((s) => s.url!),
      name: "t",
      logger: quietLogger(),
      reconnectTimeWaitMs: 100,
    });
    t.clients.push(client);
    const jsm = await jetstreamManager(client.nc);
    // The meta leader needs every peer before it can place three replicas ("no suitable peers").
    let replicas = 0;
    await waitFor("a stream with 3 replicas", async () => {
      try {
        const info = await jsm.streams.add({ name: "C", subjects: ["c.>"], num_replicas: 3 });
        replicas = info.config.num_replicas;
        return true;
      } catch {
        return false;
      }
    }, 120_000);
    assert.equal(replicas, 3);
    assert.equal((await publishOnce(client, "c.1", "x")).seq, 1);

    // Stop the node the client is not connected to (or any, the client fails over).
    const connected = client.nc.getServer();
    const victim = servers.find((s) => !connected.endsWith(s.url!.split(":").pop()!)) ?? servers[2];
    await victim.stop();
    let seq = 0;
    await waitFor("a publish acked by the 2 remaining replicas", async () => {
      try {
        seq = (await publishOnce(client, "c.2", "y")).seq;
        return true;
      } catch {
        return false;
      }
    }, 120_000);
    assert.equal(seq, 2);
  } finally {
    await t.cleanup();
  }
});

Deno.test(
  "embedded server: --nats-config with TLS and auth, JetStream forced on",
  opts,
  async () => {
    const t = new Scope();
    try {
      const dir = await t.dir();
      const gen = await new Deno.Command("openssl", {
        args: [
          "req",
          "-x509",
          "-newkey",
          "rsa:2048",
          "-nodes",
          "-days",
          "1",
          "-subj",
          "/CN=localhost",
          "-keyout",
          `${dir}/key.pem`,
          "-out",
          `${dir}/cert.pem`,
          "-addext",
          "subjectAltName=IP:127.0.0.1,DNS:localhost",
        ],
        stdout: "null",
        stderr: "null",
      }).output();
      assert.ok(gen.success, "openssl generated a certificate");
      const port = freePort();
      const file = `${dir}/tls.conf`;
      await Deno.writeTextFile(
        file,
        `listen: 127.0.0.1:${port}
tls { cert_file: "${dir}/cert.pem", key_file: "${dir}/key.pem" }
authorization { user: admin, password: s3cret }
`,
      );
      const tls = { caFile: `${dir}/cert.pem` };

      const wrong = t.server({
        port: 0,
        configFile: file,
        storeDir: `${dir}/store`,
        user: "admin",
        pass: "nope",
        tls,
      });
      await assert.rejects(
        wrong.start(),
        (e: unknown) =>
          e instanceof HaError && e.code === "config" && /credentials/.test(e.message),
      );

      const server = t.server({
        port: 0,
        configFile: file,
        storeDir: `${dir}/store`,
        serverName: "tls node",
        user: "admin",
        pass: "s3cret",
        tls,
      });
      await server.start();
      assert.equal(server.url, `tls://127.0.0.1:${port}`, "the ports file reports tls://");
      const client = await connectNats({
        servers: [`nats://admin:s3cret@127.0.0.1:${port}`],
        name: "t",
        logger: quietLogger(),
        tls,
      });
      t.clients.push(client);
      const jsm = await jetstreamManager(client.nc);
      await jsm.streams.add({ name: "S", subjects: ["s.>"] });
      assert.equal((await publishOnce(client, "s.1", "x")).seq, 1);
      assert.ok((await Deno.stat(`${dir}/store/jetstream`)).isDirectory, "-sd storeDir was used");
      const info = await (await jetstreamManager(client.nc)).getAccountInfo();
      assert.equal(info.streams, 1);
    } finally {
      await t.cleanup();
    }
  },
);
