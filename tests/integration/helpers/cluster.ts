/**
 * Shared helpers for integration tests that run real `ha` processes: free loopback ports, temp
 * dirs, starting and stopping nodes (every process, including each node's nats-server child,
 * is stopped by pid), HTTP queries, waiting for convergence and table checksums.
 *
 * @example
 * ```ts
 * const cluster = new Cluster();
 * try {
 *   const n1 = await cluster.start("node1", { embeddedNats: true });
 *   const n2 = await cluster.start("node2", { natsUrl: n1.natsUrl! });
 *   await n1.sql("CREATE TABLE t(a)");
 *   await cluster.waitConverged([n1, n2], ["t"]);
 * } finally {
 *   await cluster.stop();
 * }
 * ```
 * @module
 */
import { createLogger } from "../../../src/log/mod.ts";
import { EmbeddedNatsServer, findNatsServer } from "../../../src/nats/mod.ts";

const ROOT = new URL("../../../", import.meta.url);

/** A free TCP port on 127.0.0.1. */
export function freePort(): number {
  // Below Linux's ephemeral range (32768–60999): a port the kernel hands out for `port: 0` is also
  // what it gives outgoing connections as their local port, so one could take it between this
  // check and the child's listen (EADDRINUSE under a busy parallel suite). Random, so parallel
  // test processes rarely pick the same; never the same twice from this process.
  for (;;) {
    const port = PORT_MIN + Math.floor(Math.random() * (PORT_MAX - PORT_MIN));
    if (handedOut.has(port)) continue;
    try {
      Deno.listen({ port, hostname: "127.0.0.1" }).close();
    } catch {
      continue;
    }
    handedOut.add(port);
    return port;
  }
}

const PORT_MIN = 10_000;
const PORT_MAX = 32_000;
const handedOut = new Set<number>();

/** Waits until `cond` holds, polling; throws with `what` after `ms`. */
export async function waitFor(
  what: string,
  cond: () => boolean | Promise<boolean>,
  ms = 20_000,
): Promise<void> {
  const end = Date.now() + ms;
  let last: unknown = null;
  while (Date.now() < end) {
    try {
      if (await cond()) return;
    } catch (e) {
      last = e;
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`timed out waiting for ${what}${last ? `: ${last}` : ""}`);
}

/** Pids of every descendant of `pid` (Linux `/proc`). */
export function descendants(pid: number): number[] {
  const children = new Map<number, number[]>();
  for (const e of Deno.readDirSync("/proc")) {
    if (!/^\d+$/.test(e.name)) continue;
    try {
      const stat = Deno.readTextFileSync(`/proc/${e.name}/stat`);
      const ppid = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
      const list = children.get(ppid) ?? [];
      list.push(Number(e.name));
      children.set(ppid, list);
    } catch { /* gone */ }
  }
  const out: number[] = [];
  const walk = (p: number) => {
    for (const c of children.get(p) ?? []) {
      out.push(c);
      walk(c);
    }
  };
  walk(pid);
  return out;
}

/** Alive = exists and is not a zombie. */
/**
 * Appends a child's stdout and stderr to `file` as they come; closes it when both end. Not
 * through `file.writable`, which holds up to 64 KiB: a running process's log would lack its
 * latest lines, the ones a failure report needs.
 */
export function logTo(file: Deno.FsFile, child: Deno.ChildProcess): void {
  const copy = async (s: ReadableStream<Uint8Array>) => {
    for await (let chunk of s) {
      while (chunk.length > 0) {
        chunk = chunk.subarray(await file.write(chunk).catch(() => chunk.length));
      }
    }
  };
  Promise.all([copy(child.stdout), copy(child.stderr)]).finally(() => file.close());
}

export function pidAlive(pid: number): boolean {
  try {
    const stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
    return stat.slice(stat.lastIndexOf(")") + 2, stat.lastIndexOf(")") + 3) !== "Z";
  } catch {
    return false;
  }
}

function killPid(pid: number, sig: Deno.Signal): void {
  try {
    Deno.kill(pid, sig);
  } catch { /* already gone */ }
}

/** Options of {@link Cluster.start}. */
export interface NodeOptions {
  /** Run an embedded nats-server on a free port. */
  embeddedNats?: boolean;
  /** `--replication-url` (comma-separated allowed). */
  natsUrl?: string;
  /** Keep databases in memory (`-m`). Default true. */
  memory?: boolean;
  /** Positional DSNs (paths). */
  dsns?: string[];
  /** More flags. */
  args?: string[];
  /** Reuse ports/dirs of a previous run of the same node (restarts). */
  reuse?: HaNode;
  /** Extra environment variables (added to this process's). */
  env?: Record<string, string>;
  /** Flags for `deno run` itself (e.g. `--cpu-prof`), before `main.ts`. */
  denoFlags?: string[];
  /** Checkout whose `main.ts` runs (a bench's baseline); default this one. */
  checkout?: string;
  /** How long the start may take until `/healthz` answers (ms, default 40 s). */
  startTimeoutMs?: number;
}

/** A running `ha` process. */
export class HaNode {
  constructor(
    readonly name: string,
    readonly port: number,
    readonly natsPort: number,
    readonly dir: string,
    readonly child: Deno.ChildProcess,
    readonly logPath: string,
    readonly options: NodeOptions,
  ) {}

  /** The process id. */
  get pid(): number {
    return this.child.pid;
  }

  /** `nats://127.0.0.1:<port>` of the embedded server, if any. */
  get natsUrl(): string | null {
    return this.natsPort ? `nats://127.0.0.1:${this.natsPort}` : null;
  }

  /** Base URL of the HTTP API. */
  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  /** POSTs a query; resolves to the JSON body, throws on non-2xx with the error. */
  async sql(sql: string, params?: unknown, db?: string): Promise<QueryResult> {
    const path = db ? `/databases/${encodeURIComponent(db)}/query` : "/query";
    const res = await fetch(this.url + path, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify(params === undefined ? { sql } : { sql, params }),
    });
    const body = await res.json();
    if (!res.ok) throw new HttpError(res.status, body.error ?? JSON.stringify(body));
    return body as QueryResult;
  }

  /**
   * Runs a write; a 503 "committed locally" also acknowledges it (JetStream did not confirm in
   * time, e.g. while the stream has no leader: it is published later, as documented).
   */
  async write(sql: string, params?: unknown): Promise<void> {
    try {
      await this.sql(sql, params);
    } catch (e) {
      if (!(e instanceof HttpError && e.status === 503 && /committed locally/.test(e.message))) {
        throw e;
      }
    }
  }

  /** POSTs a batch (one transaction). */
  async batch(stmts: { sql: string; params?: unknown }[]): Promise<unknown> {
    const res = await fetch(this.url + "/query", {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify(stmts),
    });
    const body = await res.json();
    if (!res.ok) throw new HttpError(res.status, body.error ?? JSON.stringify(body));
    return body;
  }

  /** GET a path, JSON. */
  async get(path: string): Promise<{ status: number; body: unknown }> {
    const res = await fetch(this.url + path);
    return { status: res.status, body: await res.json().catch(() => null) };
  }

  /**
   * A checksum of a table's content, exact per storage class: every column as
   * `typeof(c)`/`quote(c)`, rows ordered by their full quoted image. Missing table → "missing".
   * `byName`: columns in name order, so a table whose columns were added in another order (two
   * nodes' concurrent ALTER TABLE ADD COLUMN) compares by content.
   */
  async checksum(table: string, byName = false): Promise<string> {
    const cols = (await this.sql(
      `SELECT name FROM pragma_table_info(?)${byName ? " ORDER BY name" : ""}`,
      [table],
    )).rows;
    if (cols.length === 0) return "missing";
    const qi = (s: string) => `"${s.replaceAll('"', '""')}"`;
    const expr = cols.map((c) => `typeof(${qi(String(c[0]))}) || ':' || quote(${qi(String(c[0]))})`)
      .join(" || '|' || ");
    const r = await this.sql(`SELECT ${expr} AS r FROM ${qi(table)} ORDER BY 1`);
    const text = r.rows.map((x) => String(x[0])).join("\n");
    const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(text));
    return `${r.rows.length}:` +
      [...new Uint8Array(digest)].slice(0, 8).map((b) => b.toString(16).padStart(2, "0")).join("");
  }

  /** The process's log so far. */
  log(): string {
    try {
      return Deno.readTextFileSync(this.logPath);
    } catch {
      return "";
    }
  }
}

/** `{"columns", "rows"}` of one statement. */
export interface QueryResult {
  columns: string[];
  rows: unknown[][];
}

/** A non-2xx HTTP answer. */
export class HttpError extends Error {
  constructor(readonly status: number, message: string) {
    super(`HTTP ${status}: ${message}`);
  }
}

/** A set of `ha` processes started by a test; {@link Cluster.stop} ends them all by pid. */
export class Cluster {
  readonly nodes: HaNode[] = [];
  readonly root = Deno.makeTempDirSync({ prefix: "ha-it-" });

  /** A nats-server (not started) on 127.0.0.1:`port`, its store under this cluster's root. */
  async natsServer(name: string, port: number): Promise<EmbeddedNatsServer> {
    return new EmbeddedNatsServer({
      bin: await findNatsServer({ flag: null }),
      host: "127.0.0.1",
      port,
      storeDir: `${this.root}/${name}`,
      serverName: name,
      logger: createLogger("error"),
    });
  }

  /** Starts a node and waits for `/healthz`. */
  async start(name: string, o: NodeOptions = {}): Promise<HaNode> {
    const prev = o.reuse;
    const port = prev?.port ?? freePort();
    const natsPort = prev?.natsPort ?? (o.embeddedNats ? freePort() : 0);
    const dir = prev?.dir ?? `${this.root}/${name}`;
    Deno.mkdirSync(dir, { recursive: true });
    const args = [
      "run",
      "-A",
      "--unstable-worker-options",
      ...(o.denoFlags ?? []),
      "main.ts",
      "-n",
      name,
      ...(o.memory ?? true ? ["-m"] : []),
      "--port",
      String(port),
      "--pg-port",
      "0",
      "--nats-port",
      String(natsPort),
      "--nats-store-dir",
      `${dir}/nats`,
      "--async-replication-store-dir",
      `${dir}/outbox`,
      ...(o.natsUrl ? ["--replication-url", o.natsUrl] : []),
      ...(o.args ?? []),
      ...(o.dsns ?? []),
    ];
    const logPath = `${dir}/ha-${Date.now()}.log`;
    const file = await Deno.open(logPath, { write: true, create: true, append: true });
    const child = new Deno.Command(Deno.execPath(), {
      args,
      cwd: o.checkout ?? ROOT,
      env: o.env,
      stdout: "piped",
      stderr: "piped",
      stdin: "null",
    }).spawn();
    logTo(file, child);
    const node = new HaNode(name, port, natsPort, dir, child, logPath, o);
    this.nodes.push(node);
    await waitFor(`${name} /healthz`, async () => {
      if (!pidAlive(child.pid)) throw new Error(`${name} exited:\n${node.log()}`);
      const r = await fetch(`${node.url}/healthz`).catch(() => null);
      await r?.body?.cancel();
      return r?.ok ?? false;
    }, o.startTimeoutMs ?? 40_000).catch((e) => {
      if (!pidAlive(child.pid)) throw e; // its log is in the message already
      // A start that never became healthy is diagnosed by what the node logged meanwhile.
      throw new Error(`${(e as Error).message}\n${name}'s log:\n${node.log().slice(-4000)}`);
    });
    return node;
  }

  /** Sends `sig` to a node (SIGKILL also kills its descendants, like a machine crash). */
  async kill(node: HaNode, sig: Deno.Signal = "SIGTERM"): Promise<void> {
    const kids = sig === "SIGKILL" ? descendants(node.pid) : [];
    killPid(node.pid, sig);
    for (const k of kids) killPid(k, "SIGKILL");
    await node.child.status;
    await waitFor(`${node.name} children gone`, () => kids.every((k) => !pidAlive(k)), 10_000)
      .catch(() => {});
  }

  /** Stops every node (SIGTERM, then SIGKILL after 10 s) and removes the temp dir. */
  async stop(): Promise<void> {
    await Promise.all(this.nodes.map(async (n) => {
      const kids = descendants(n.pid);
      if (pidAlive(n.pid)) {
        killPid(n.pid, "SIGTERM");
        const t = setTimeout(() => killPid(n.pid, "SIGKILL"), 10_000);
        await n.child.status;
        clearTimeout(t);
      }
      for (const k of kids) if (pidAlive(k)) killPid(k, "SIGKILL");
    }));
    if (!Deno.env.get("HA_IT_KEEP")) {
      await Deno.remove(this.root, { recursive: true }).catch(() => {});
    }
  }

  /** Waits until every node has the same checksum of every table. */
  async waitConverged(nodes: HaNode[], tables: string[], ms = 30_000): Promise<string[]> {
    let last: string[] = [];
    await waitFor(`convergence of ${tables.join(", ")}`, async () => {
      last = [];
      for (const n of nodes) {
        const parts = [];
        for (const t of tables) parts.push(await n.checksum(t));
        last.push(parts.join(","));
      }
      return last.every((x) => x === last[0] && !x.includes("missing"));
    }, ms).catch(async (e) => {
      const states = await Promise.all(nodes.map((n) => replicationState(n)));
      throw new Error(
        `${(e as Error).message}; checksums: ${JSON.stringify(last)}; replication: ` +
          JSON.stringify(Object.fromEntries(nodes.map((n, i) => [n.name, states[i]]))),
      );
    });
    return last;
  }
}

/**
 * What a convergence failure report needs of a node's replication (`GET /replications`): per
 * database, the publisher's backlog and error and the subscriber's positions and restarts.
 */
async function replicationState(n: HaNode): Promise<unknown> {
  try {
    const { body } = await n.get("/replications");
    const status = (body as { status?: Record<string, unknown>[] } | null)?.status ?? [];
    return status.map((s) => {
      const p = s.publisher as Record<string, unknown> | undefined;
      const sub = s.subscriber as Record<string, unknown> | null | undefined;
      return {
        db: s.database,
        publisher: p && { pending: p.pending, lastError: p.lastError },
        subscriber: sub && {
          running: sub.running,
          receivedSeq: sub.receivedSeq,
          appliedSeq: sub.appliedSeq,
          restarts: sub.restarts,
          lastRestart: sub.lastRestart,
          stalls: sub.stalls,
          failing: sub.failing,
        },
      };
    });
  } catch (e) {
    return String(e);
  }
}

/** Options of {@link withCluster}. */
export interface ClusterOptions {
  /** Flags of every node. */
  args?: string[];
}

/**
 * Runs `body` on `n` nodes named `node1`…`nodeN`: `node1` runs an embedded nats-server, the
 * others replicate through it. Every process is stopped and the temp dir removed afterwards,
 * whatever `body` does.
 *
 * @example
 * ```ts
 * await withCluster(2, async ([n1, n2], cluster) => {
 *   await n1.sql("CREATE TABLE t(a)");
 *   await cluster.waitConverged([n1, n2], ["t"]);
 * });
 * ```
 */
export async function withCluster<T>(
  n: number,
  body: (nodes: HaNode[], cluster: Cluster) => Promise<T>,
  o: ClusterOptions = {},
): Promise<T> {
  const cluster = new Cluster();
  try {
    const first = await cluster.start("node1", { embeddedNats: true, args: o.args });
    const nodes = [first];
    for (let i = 2; i <= n; i++) {
      nodes.push(await cluster.start(`node${i}`, { natsUrl: first.natsUrl!, args: o.args }));
    }
    return await body(nodes, cluster);
  } finally {
    await cluster.stop();
  }
}
