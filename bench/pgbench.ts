/**
 * pgbench custom scripts (`bench/pgbench/select.sql`: point select by primary
 * key; `insert.sql`: single-row insert) against ha's PostgreSQL wire protocol
 * and against a real PostgreSQL 15 started here, in each protocol mode
 * (simple, extended, prepared). Prints tps and the ratio ha/PostgreSQL.
 *
 * ha runs from the CLI (`main.ts … --pg-port`, file database in WAL mode, no
 * NATS). PostgreSQL runs with
 * `synchronous_commit=off`, the closest match to SQLite WAL with
 * `synchronous=NORMAL` (no fsync per commit on either side).
 *
 * Run: `deno task bench pgbench` or `deno run -A --unstable-worker-options bench/pgbench.ts`.
 * Env: BENCH_SECONDS (default 5), BENCH_CLIENTS (default 8), BENCH_ROWS (default 100000),
 * BENCH_RATE (pgbench `-R`: a fixed rate instead of as fast as possible), BENCH_GC_LOG=file
 * (ha's output written there when it stops, e.g. with `--v8-flags=--trace-gc`).
 */
import { freePort, startHa } from "../tests/integration/helpers/ha.ts";
import { table } from "./stats.ts";

export const SECONDS = Number(Deno.env.get("BENCH_SECONDS") ?? 5);
const CLIENTS = Number(Deno.env.get("BENCH_CLIENTS") ?? 8);
const ROWS = Number(Deno.env.get("BENCH_ROWS") ?? 100_000);
const PG_BIN = "/usr/lib/postgresql/15/bin";
const SCRIPTS = ["select", "insert"];
const MODES = ["simple", "extended", "prepared"];
const HERE = new URL(".", import.meta.url).pathname;

/** A PostgreSQL-protocol server under test. */
export interface Target {
  name: string;
  port: number;
  user: string;
  password: string;
  note: string;
  stop(): Promise<void>;
}

async function exec(cmd: string, args: string[], env: Record<string, string> = {}) {
  const r = await new Deno.Command(cmd, { args, env, stdout: "piped", stderr: "piped" }).output();
  const dec = new TextDecoder();
  const out = { code: r.code, stdout: dec.decode(r.stdout), stderr: dec.decode(r.stderr) };
  if (out.code !== 0) {
    throw new Error(`${cmd} ${args.join(" ")} failed:\n${out.stderr}${out.stdout}`);
  }
  return out;
}

async function listening(port: number): Promise<boolean> {
  try {
    (await Deno.connect({ hostname: "127.0.0.1", port })).close();
    return true;
  } catch {
    return false;
  }
}

/**
 * ha: the real CLI serving PostgreSQL on a free port, with a file database (WAL); with
 * `replicate`, an embedded NATS server and synchronous replication (the default mode).
 */
export async function startHaTarget(
  dir: string,
  replicate = false,
  denoFlags: string[] = [],
): Promise<Target & { pid: number; url: string }> {
  const port = freePort();
  const node = await startHa({
    cwd: dir,
    denoFlags,
    args: [
      "-n",
      "pgbench",
      "--nats-port",
      replicate ? String(freePort()) : "0",
      "--nats-store-dir",
      `${dir}/nats`,
      "--pg-port",
      String(port),
      "--log-level",
      "warn",
      "bench.db",
    ],
  });
  for (let i = 0; i < 30 && !(await listening(port)); i++) {
    await new Promise((r) => setTimeout(r, 100));
  }
  if (await listening(port)) {
    return {
      name: "ha",
      port,
      pid: node.pid,
      url: node.url,
      user: "ha",
      password: "ha",
      note: `ha CLI, file database (WAL), ${replicate ? "sync replication" : "no replication"}`,
      stop: async () => {
        await node.stop();
        const f = Deno.env.get("BENCH_GC_LOG");
        if (f) Deno.writeTextFileSync(f, node.output());
      },
    };
  }
  await node.stop();
  throw new Error(`ha --pg-port ${port} does not accept connections:\n${node.output()}`);
}

/**
 * PostgreSQL 15: initdb into a temp dir (as user postgres when run as root), pg_ctl start.
 * `asyncCommit`: synchronous_commit=off (else PostgreSQL's default, on).
 */
export async function startPostgres(dir: string, asyncCommit = true): Promise<Target> {
  const port = freePort();
  const data = `${dir}/pgdata`;
  const asRoot = Deno.uid() === 0;
  if (asRoot) await exec("chown", ["postgres", dir]);
  const run = (bin: string, args: string[]) =>
    asRoot
      ? exec("runuser", ["-u", "postgres", "--", `${PG_BIN}/${bin}`, ...args])
      : exec(`${PG_BIN}/${bin}`, args);
  await run("initdb", ["-D", data, "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync"]);
  const opts = `-p ${port} -k ${dir} -c listen_addresses=127.0.0.1` +
    (asyncCommit
      ? " -c synchronous_commit=off -c max_connections=200 -c shared_buffers=128MB"
      : "");
  await run("pg_ctl", ["-D", data, "-o", opts, "-l", `${dir}/pg.log`, "-w", "start"]);
  return {
    name: "postgres",
    port,
    user: "postgres",
    password: "",
    note: asyncCommit
      ? "PostgreSQL 15, synchronous_commit=off"
      : "PostgreSQL 15, default configuration",
    stop: async () => void (await run("pg_ctl", ["-D", data, "-m", "fast", "-w", "stop"])),
  };
}

export function psql(t: Target, sql: string) {
  return exec("/usr/bin/psql", [
    "-X",
    "-q",
    "-v",
    "ON_ERROR_STOP=1",
    "-h",
    "127.0.0.1",
    "-p",
    String(t.port),
    "-U",
    t.user,
    "-d",
    t.name === "ha" ? "ha" : "postgres",
    "-c",
    sql,
  ], { PGPASSWORD: t.password });
}

/** Creates and fills `accounts` (ROWS rows) and an empty `history`. */
export async function setup(t: Target): Promise<void> {
  if (t.name === "ha") {
    await psql(t, "CREATE TABLE accounts(aid INTEGER PRIMARY KEY, abalance INTEGER, filler TEXT)");
    // In chunks: a replicated transaction's changeset must fit NATS max_payload.
    for (let from = 1; from <= ROWS; from += 5000) {
      const to = Math.min(ROWS, from + 4999);
      await psql(
        t,
        `WITH RECURSIVE c(x) AS (SELECT ${from} UNION ALL SELECT x + 1 FROM c WHERE x < ${to}) ` +
          "INSERT INTO accounts SELECT x, 0, printf('%-84s', 'filler') FROM c",
      );
    }
    await psql(t, "CREATE TABLE history(id INTEGER PRIMARY KEY, aid INTEGER, delta INTEGER)");
  } else {
    await psql(t, "CREATE TABLE accounts(aid INTEGER PRIMARY KEY, abalance INTEGER, filler TEXT)");
    await psql(
      t,
      `INSERT INTO accounts SELECT x, 0, rpad('filler', 84) FROM generate_series(1, ${ROWS}) x`,
    );
    await psql(t, "CREATE TABLE history(id BIGSERIAL PRIMARY KEY, aid INTEGER, delta INTEGER)");
    await psql(t, "VACUUM ANALYZE");
  }
}

/** Runs one pgbench script in one protocol mode; returns tps. */
export async function pgbench(t: Target, script: string, mode: string): Promise<number> {
  const r = await exec("/usr/bin/pgbench", [
    "-h",
    "127.0.0.1",
    "-p",
    String(t.port),
    "-U",
    t.user,
    "-n",
    "-M",
    mode,
    "-c",
    String(CLIENTS),
    "-j",
    String(Math.min(CLIENTS, 4)),
    "-T",
    String(SECONDS),
    "-D",
    `rows=${ROWS}`,
    "-f",
    `${HERE}pgbench/${script}.sql`,
    ...(Deno.env.get("BENCH_RATE") ? ["-R", Deno.env.get("BENCH_RATE")!] : []),
    t.name === "ha" ? "ha" : "postgres",
  ], { PGPASSWORD: t.password });
  const tps = /tps = ([\d.]+)/.exec(r.stdout);
  if (!tps) throw new Error(`no tps in pgbench output:\n${r.stdout}`);
  return Number(tps[1]);
}

/** Runs the benchmark and prints the table. */
export async function main(): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "ha-pgbench-" });
  await Deno.chmod(dir, 0o755);
  const targets: Target[] = [];
  try {
    const haDir = `${dir}/ha`;
    const pgDir = `${dir}/pg`;
    await Deno.mkdir(haDir);
    await Deno.mkdir(pgDir);
    targets.push(await startHaTarget(haDir));
    targets.push(await startPostgres(pgDir));
    for (const t of targets) await setup(t);
    const rows: (string | number)[][] = [];
    for (const script of SCRIPTS) {
      for (const mode of MODES) {
        const [ha, pg] = [
          await pgbench(targets[0], script, mode),
          await pgbench(targets[1], script, mode),
        ];
        rows.push([script, mode, ha, pg, ha / pg]);
      }
    }
    console.log(`pgbench -c ${CLIENTS} -T ${SECONDS}, ${ROWS} accounts`);
    for (const t of targets) console.log(`  ${t.name}: ${t.note}`);
    table(["script", "mode", "ha tps", "postgres tps", "ha/pg"], rows);
  } finally {
    for (const t of targets) await t.stop().catch((e) => console.error(`stop ${t.name}: ${e}`));
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
}

if (import.meta.main) await main();
