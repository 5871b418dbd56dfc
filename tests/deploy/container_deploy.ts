/**
 * The Dockerfile, built and run with podman: the image's promises (non-root user, /data volume,
 * ports, health check, HA_* configuration), one container queried over HTTP and psql, the clear
 * refusal without credentials, then compose.yaml's 3-node cluster losing one container.
 * Builds reuse cached layers; the build time and image size are printed.
 */
import assert from "node:assert/strict";
import { parse, stringify } from "npm:yaml@^2";
import { buildImage, freePort, IMAGE, must, poll, query, REPO, sh, unavailable } from "./tools.ts";

const skip = await unavailable("podman");
const skipCompose = skip ?? await unavailable("podman-compose");
const TOKEN = "deploy-test-token";
const PG_PASS = "deploy-test-pg";

let built: Promise<number> | null = null;
/** Builds the image once per run. */
function image(): Promise<number> {
  built ??= buildImage();
  return built;
}

Deno.test({ name: "image: build, metadata and size", ignore: skip !== null }, async () => {
  const seconds = await image();
  const [info] = JSON.parse(await must("podman", ["image", "inspect", IMAGE]));
  const cfg = info.Config;
  assert.equal(cfg.User, "ha");
  assert.deepEqual(Object.keys(cfg.Volumes), ["/data"]);
  assert.deepEqual(Object.keys(cfg.ExposedPorts).sort(), [
    "4222/tcp",
    "5432/tcp",
    "6222/tcp",
    "8080/tcp",
  ]);
  // podman reports it beside Config, docker inside.
  assert.match((info.Healthcheck ?? cfg.Healthcheck).Test.join(" "), /\/healthz/);
  assert.ok(cfg.Env.includes("HA_HTTP_ADDR=0.0.0.0"), cfg.Env.join(" "));
  assert.ok(!cfg.Env.some((e: string) => e.startsWith("HA_INSECURE")), "never --insecure");
  // The uid and gid the chart's securityContext names.
  const id = await must("podman", ["run", "--rm", "--entrypoint", "id", IMAGE]);
  assert.match(id, /^uid=10001\(ha\) gid=10001\(ha\)/);
  const version = await must("podman", ["run", "--rm", IMAGE, "--version"]);
  assert.match(version, /0\.1\.0/);
  const deno = await must("podman", ["run", "--rm", "--entrypoint", "deno", IMAGE, "--version"]);
  const pinned = /DENO_VERSION=(\S+)/.exec(await Deno.readTextFile(`${REPO}install.sh`))![1];
  assert.match(deno, new RegExp(`^deno ${pinned.replaceAll(".", "\\.")} `));
  console.info(`image ${IMAGE}: ${(info.Size / 1e6).toFixed(0)} MB, build ${seconds.toFixed(0)} s`);
});

Deno.test({
  name: "image: without credentials the node refuses to listen on 0.0.0.0, and says why",
  ignore: skip !== null,
}, async () => {
  await image();
  const r = await sh("podman", ["run", "--rm", "-e", "HA_MEMORY=true", IMAGE]);
  assert.notEqual(r.code, 0);
  assert.match(r.stdout + r.stderr, /listening beyond loopback without credentials: set --token/);
});

Deno.test({
  name: "image: one container serves HTTP and psql with HA_TOKEN and HA_PG_PASS",
  ignore: skip !== null,
}, async () => {
  await image();
  const http = freePort();
  const pg = freePort();
  const id = (await must("podman", [
    "run",
    "-d",
    "-e",
    "HA_MEMORY=true",
    "-e",
    `HA_TOKEN=${TOKEN}`,
    "-e",
    `HA_PG_PASS=${PG_PASS}`,
    "-p",
    `127.0.0.1:${http}:8080`,
    "-p",
    `127.0.0.1:${pg}:5432`,
    IMAGE,
  ])).trim();
  try {
    const base = `http://127.0.0.1:${http}`;
    await poll("the container's /readyz", async () => (await fetch(`${base}/readyz`)).ok);
    assert.equal((await query(base, "wrong", "SELECT 1")).status, 401);
    assert.equal(
      (await query(base, TOKEN, "CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT)")).status,
      200,
    );
    assert.equal((await query(base, TOKEN, "INSERT INTO t VALUES (1, 'from http')")).status, 200);
    const psql = await must("psql", [
      "-X",
      "-At",
      "-h",
      "127.0.0.1",
      "-p",
      String(pg),
      "-U",
      "ha",
      "-c",
      "INSERT INTO t VALUES (2, 'from psql')",
      "-c",
      "SELECT id, v FROM t ORDER BY id",
    ], { env: { PGPASSWORD: PG_PASS, PGDATABASE: "ha" } });
    assert.deepEqual(psql.trim().split("\n"), ["INSERT 0 1", "1|from http", "2|from psql"]);
    await poll("podman's health check to pass", async () => {
      return (await sh("podman", ["healthcheck", "run", id])).code === 0;
    });
  } finally {
    await sh("podman", ["rm", "-f", "-v", id]);
  }
});

/** compose.yaml with free host ports, the test image and container names of this run. */
async function composeFile(project: string, dir: string): Promise<string[]> {
  const doc = parse(await Deno.readTextFile(`${REPO}compose.yaml`), { merge: true });
  const bases: string[] = [];
  for (const [name, svc] of Object.entries(doc.services) as [string, Record<string, unknown>][]) {
    const http = freePort();
    delete svc.build;
    delete svc.restart; // a killed container stays down until the test starts it again
    svc.image = IMAGE;
    svc.container_name = `${project}-${name}`;
    svc.ports = [`127.0.0.1:${http}:8080`];
    bases.push(`http://127.0.0.1:${http}`);
  }
  // Resolved merge keys: podman-compose gets a plain file.
  const text = stringify(doc, { aliasDuplicateObjects: false });
  await Deno.writeTextFile(`${dir}/compose.yaml`, text);
  return bases;
}

Deno.test({
  name: "compose.yaml: 3 nodes in one NATS cluster; one container dies, the others go on",
  ignore: skipCompose !== null,
}, async () => {
  await image();
  const project = `hadeploy${Date.now()}`;
  const dir = await Deno.makeTempDir({ prefix: "ha-compose-" });
  const compose = (...args: string[]) =>
    must("podman-compose", ["-p", project, "-f", `${dir}/compose.yaml`, ...args], { cwd: dir });
  const token = "demo-token"; // compose.yaml's demo default
  try {
    const [b1, b2, b3] = await composeFile(project, dir);
    await compose("up", "-d");
    for (const b of [b1, b2, b3]) {
      await poll(`${b}/readyz`, async () => (await fetch(`${b}/readyz`)).ok);
    }
    const ok = async (b: string, sql: string, params?: unknown[]) => {
      const r = await query(b, token, sql, params);
      assert.equal(r.status, 200, JSON.stringify(r.body));
      return r.body.rows;
    };
    await ok(b1, "CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT)");
    await ok(b1, "INSERT INTO t VALUES (1, 'before')");
    const rowsOn = (b: string) => async () =>
      JSON.stringify((await query(b, token, "SELECT id, v FROM t ORDER BY id")).body.rows);
    await poll("node3 has row 1", async () => (await rowsOn(b3)()) === '[[1,"before"]]');

    await must("podman", ["kill", `${project}-node1`]);
    const state = await must("podman", ["inspect", "-f", "{{.State.Running}}", `${project}-node1`]);
    assert.equal(state.trim(), "false");
    // node2 writes while node1 is gone: a 503 "committed locally" (no stream leader for a
    // moment) is stored and published later; anything else fails.
    const w = await query(b2, token, "INSERT INTO t VALUES (2, 'after')");
    assert.ok(
      w.status === 200 || (w.status === 503 && /committed locally/.test(w.body.error ?? "")),
      JSON.stringify(w),
    );
    const want = '[[1,"before"],[2,"after"]]';
    await poll("node3 has row 2 without node1", async () => (await rowsOn(b3)()) === want);
    assert.equal(await rowsOn(b2)(), want);
    // Back on its volume, node1 catches up.
    await must("podman", ["start", `${project}-node1`]);
    await poll("node1 catches up", async () => (await rowsOn(b1)()) === want);
  } finally {
    await sh("podman-compose", ["-p", project, "-f", `${dir}/compose.yaml`, "down", "-v"], {
      cwd: dir,
    });
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
});
