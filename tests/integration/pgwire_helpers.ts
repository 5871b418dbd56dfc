/**
 * Support for the pgwire integration tests: a server to test (the real `ha`
 * CLI with `--pg-port`, or an in-process PgServer where the CLI cannot be
 * configured, e.g. md5/cleartext), runners for psql/pgbench/python, and a raw
 * protocol v3 client (SCRAM included) for byte-level tests.
 */
import { openEngine } from "../../src/engine/mod.ts";
import { createLogger } from "../../src/log/mod.ts";
import { type AuthMethod, PgServer } from "../../src/pgwire/mod.ts";
import { md5Response, saltedPassword } from "../../src/pgwire/auth.ts";
import { freePort, startHa } from "./helpers/ha.ts";

export { freePort };

/** A server under test. */
export interface PgTarget {
  port: number;
  kind: "cli" | "inprocess";
  output(): string;
  stop(): Promise<void>;
}

/** Options of {@link startPg}. */
export interface PgTargetOptions {
  cert?: string;
  key?: string;
  /** Anything but SCRAM has no CLI flag: runs in-process. */
  authMethod?: AuthMethod;
  /** Force an in-process server. */
  inProcess?: boolean;
}

async function canConnect(port: number): Promise<boolean> {
  try {
    const c = await Deno.connect({ hostname: "127.0.0.1", port });
    c.close();
    return true;
  } catch {
    return false;
  }
}

/** Starts `ha -m --pg-port <free>` (or an in-process server) and waits until it accepts. */
export async function startPg(opts: PgTargetOptions = {}): Promise<PgTarget> {
  if (!opts.inProcess && (opts.authMethod ?? "scram-sha-256") === "scram-sha-256") {
    const port = freePort();
    const args = ["-n", "pgtest", "-m", "--nats-port", "0", "--pg-port", String(port)];
    if (opts.cert && opts.key) args.push("--pg-cert", opts.cert, "--pg-key", opts.key);
    const ha = await startHa({ args });
    for (let i = 0; i < 30 && !(await canConnect(port)); i++) {
      await new Promise((r) => setTimeout(r, 100));
    }
    if (await canConnect(port)) {
      return {
        port,
        kind: "cli",
        output: () => ha.output(),
        stop: async () => {
          await ha.stop();
        },
      };
    }
    await ha.stop();
    throw new Error(`ha --pg-port ${port} does not accept connections:\n${ha.output()}`);
  }
  return await startInProcess(opts);
}

async function startInProcess(opts: PgTargetOptions): Promise<PgTarget> {
  let out = "";
  const logger = createLogger("warn", (line) => out += line + "\n");
  const engine = await openEngine({ dsns: [], memory: true, concurrentQueries: 64, logger });
  const server = new PgServer({
    engine,
    port: 0,
    hostname: "127.0.0.1",
    user: "ha",
    password: "ha",
    cert: opts.cert,
    key: opts.key,
    authMethod: opts.authMethod,
    logger,
  });
  await server.start();
  return {
    port: server.port,
    kind: "inprocess",
    output: () => out,
    stop: async () => {
      await server.stop();
      await engine.close();
    },
  };
}

/** Result of running a command. */
export interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs a program to completion (stdin text optional), killing it after `timeoutMs`. */
export async function run(
  cmd: string,
  args: string[],
  opts: { env?: Record<string, string>; stdin?: string; timeoutMs?: number } = {},
): Promise<RunResult> {
  const child = new Deno.Command(cmd, {
    args,
    env: { PGPASSWORD: "ha", PGCONNECT_TIMEOUT: "10", ...opts.env },
    stdin: opts.stdin !== undefined ? "piped" : "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  if (opts.stdin !== undefined) {
    const w = child.stdin.getWriter();
    await w.write(new TextEncoder().encode(opts.stdin));
    await w.close();
  }
  const timer = setTimeout(() => {
    try {
      child.kill("SIGKILL");
    } catch { /* gone */ }
  }, opts.timeoutMs ?? 30_000);
  const r = await child.output();
  clearTimeout(timer);
  const dec = new TextDecoder();
  return { code: r.code, stdout: dec.decode(r.stdout), stderr: dec.decode(r.stderr) };
}

/** psql against `port` as user ha (`-X`: no psqlrc; `-v ON_ERROR_STOP=1` is up to the caller). */
export function psql(
  port: number,
  args: string[],
  opts: { stdin?: string; env?: Record<string, string> } = {},
) {
  return run(
    "/usr/bin/psql",
    ["-X", "-h", "127.0.0.1", "-p", String(port), "-U", "ha", ...args],
    opts,
  );
}

/** Debian's python3 (with psycopg 3) running `code`. */
export function python(code: string, env: Record<string, string> = {}) {
  return run("/usr/bin/python3", ["-c", code], { env });
}

// ------------------------------------------------------------------ raw client

const enc = new TextEncoder();
const dec = new TextDecoder();

/** A backend message. */
export interface Msg {
  type: string;
  body: Uint8Array;
}

/** Builds a frontend message. */
export function msg(type: string, ...parts: (Uint8Array | string | number[])[]): Uint8Array {
  const bytes = parts.map((p) =>
    typeof p === "string" ? enc.encode(p + "\0") : p instanceof Uint8Array ? p : new Uint8Array(p)
  );
  const len = bytes.reduce((n, b) => n + b.length, 4);
  const out = new Uint8Array(len + (type ? 1 : 0));
  let o = 0;
  if (type) out[o++] = type.charCodeAt(0);
  new DataView(out.buffer).setInt32(o, len);
  o += 4;
  for (const b of bytes) {
    out.set(b, o);
    o += b.length;
  }
  return out;
}

/** Big-endian int16 / int32 bytes. */
export const i16 = (v: number) => [(v >> 8) & 255, v & 255];
export const i32 = (v: number) => [(v >>> 24) & 255, (v >>> 16) & 255, (v >>> 8) & 255, v & 255];

/** Frontend messages of the extended protocol. */
export const fe = {
  query: (sql: string) => msg("Q", sql),
  parse: (name: string, sql: string, oids: number[] = []) =>
    msg("P", name, sql, i16(oids.length), oids.flatMap(i32)),
  bind: (
    portal: string,
    stmt: string,
    params: (string | Uint8Array | null)[] = [],
    paramFormats: number[] = [],
    resultFormats: number[] = [],
  ) => {
    const ps = params.flatMap((p) => {
      if (p === null) return i32(-1);
      const b = typeof p === "string" ? enc.encode(p) : p;
      return [...i32(b.length), ...b];
    });
    return msg(
      "B",
      portal,
      stmt,
      i16(paramFormats.length),
      paramFormats.flatMap(i16),
      i16(params.length),
      ps,
      i16(resultFormats.length),
      resultFormats.flatMap(i16),
    );
  },
  describe: (kind: "S" | "P", name: string) => msg("D", [kind.charCodeAt(0)], name),
  execute: (portal: string, maxRows = 0) => msg("E", portal, i32(maxRows)),
  close: (kind: "S" | "P", name: string) => msg("C", [kind.charCodeAt(0)], name),
  sync: () => msg("S"),
  flush: () => msg("H"),
  terminate: () => msg("X"),
};

/** Reads fields of an ErrorResponse / DataRow etc. */
export function errorFields(m: Msg): Record<string, string> {
  const out: Record<string, string> = {};
  let i = 0;
  while (i < m.body.length && m.body[i] !== 0) {
    const code = String.fromCharCode(m.body[i]);
    const end = m.body.indexOf(0, i + 1);
    out[code] = dec.decode(m.body.subarray(i + 1, end));
    i = end + 1;
  }
  return out;
}

/** The text values of a DataRow (null for NULL). */
export function dataRow(m: Msg): (string | null)[] {
  const dv = new DataView(m.body.buffer, m.body.byteOffset, m.body.byteLength);
  const n = dv.getInt16(0);
  const out: (string | null)[] = [];
  let o = 2;
  for (let i = 0; i < n; i++) {
    const len = dv.getInt32(o);
    o += 4;
    if (len < 0) out.push(null);
    else {
      out.push(dec.decode(m.body.subarray(o, o + len)));
      o += len;
    }
  }
  return out;
}

/** A protocol v3 client speaking raw messages. */
export class RawClient {
  private buf = new Uint8Array(0);
  /** BackendKeyData received at start-up. */
  keys = { pid: 0, secret: 0 };

  private constructor(readonly conn: Deno.Conn) {}

  /** Opens a TCP connection without any start-up. */
  static async open(port: number): Promise<RawClient> {
    return new RawClient(await Deno.connect({ hostname: "127.0.0.1", port }));
  }

  /** Connects and authenticates (SCRAM, md5 or cleartext, as the server asks). */
  static async connect(
    port: number,
    params: Record<string, string> = {},
    password = "ha",
  ): Promise<RawClient> {
    const c = await RawClient.open(port);
    const user = params.user ?? "ha";
    const kv = Object.entries({ user, ...params }).flatMap(([k, v]) => [k, v]);
    await c.send(msg("", i32(196608), ...kv, ""));
    await c.authenticate(user, password);
    return c;
  }

  private async authenticate(user: string, password: string): Promise<void> {
    let clientFirstBare = "";
    let serverFirst = "";
    for (;;) {
      const m = await this.read();
      if (m.type === "E") throw new Error(errorFields(m).M);
      if (m.type === "Z") return;
      if (m.type === "K") {
        const dv = new DataView(m.body.buffer, m.body.byteOffset);
        this.keys = { pid: dv.getInt32(0), secret: dv.getInt32(4) };
      }
      if (m.type !== "R") continue;
      const kind = new DataView(m.body.buffer, m.body.byteOffset).getInt32(0);
      if (kind === 3) await this.send(msg("p", password));
      if (kind === 5) await this.send(msg("p", md5Response(user, password, m.body.slice(4, 8))));
      if (kind === 10) {
        clientFirstBare = `n=,r=${btoa(String(Math.random())).replace(/=/g, "")}`;
        const data = enc.encode(`n,,${clientFirstBare}`);
        await this.send(msg("p", "SCRAM-SHA-256", i32(data.length), data));
      }
      if (kind === 11) {
        serverFirst = dec.decode(m.body.subarray(4));
        await this.send(
          msg("p", enc.encode(await scramFinal(password, serverFirst, clientFirstBare))),
        );
      }
    }
  }

  /** Writes bytes. */
  async send(...msgs: Uint8Array[]): Promise<void> {
    for (const m of msgs) {
      for (let o = 0; o < m.length;) o += await this.conn.write(m.subarray(o));
    }
  }

  /** Reads exactly `n` bytes, or fewer at end of stream. */
  async readBytes(n: number): Promise<Uint8Array> {
    while (this.buf.length < n) {
      const chunk = new Uint8Array(65536);
      let r: number | null;
      try {
        r = await this.conn.read(chunk);
      } catch {
        r = null;
      }
      if (r === null) break;
      const next = new Uint8Array(this.buf.length + r);
      next.set(this.buf);
      next.set(chunk.subarray(0, r), this.buf.length);
      this.buf = next;
    }
    const out = this.buf.slice(0, n);
    this.buf = this.buf.slice(out.length);
    return out;
  }

  /** Reads one backend message (type "" at end of stream). */
  async read(): Promise<Msg> {
    const head = await this.readBytes(5);
    if (head.length < 5) return { type: "", body: new Uint8Array() };
    const len = new DataView(head.buffer).getInt32(1);
    return { type: String.fromCharCode(head[0]), body: await this.readBytes(len - 4) };
  }

  /** Reads messages up to and including the next of `type` (default ReadyForQuery). */
  async until(type = "Z"): Promise<Msg[]> {
    const out: Msg[] = [];
    for (;;) {
      const m = await this.read();
      out.push(m);
      if (m.type === type || m.type === "") return out;
    }
  }

  close(): void {
    try {
      this.conn.close();
    } catch { /* closed */ }
  }
}

async function scramFinal(password: string, serverFirst: string, clientFirstBare: string) {
  const attrs = Object.fromEntries(serverFirst.split(",").map((p) => [p[0], p.slice(2)]));
  const salt = Uint8Array.from(atob(attrs.s), (c) => c.charCodeAt(0));
  const salted = await saltedPassword(password, salt, Number(attrs.i));
  const hmac = async (k: Uint8Array, s: string) => {
    const key = await crypto.subtle.importKey(
      "raw",
      k as Uint8Array<ArrayBuffer>,
      { name: "HMAC", hash: "SHA-256" },
      false,
      ["sign"],
    );
    return new Uint8Array(await crypto.subtle.sign("HMAC", key, enc.encode(s)));
  };
  const clientKey = await hmac(salted, "Client Key");
  const storedKey = new Uint8Array(await crypto.subtle.digest("SHA-256", clientKey));
  const withoutProof = `c=biws,r=${attrs.r}`;
  const sig = await hmac(storedKey, `${clientFirstBare},${serverFirst},${withoutProof}`);
  const proof = clientKey.map((b, i) => b ^ sig[i]);
  return `${withoutProof},p=${btoa(String.fromCharCode(...proof))}`;
}

/** A self-signed certificate for localhost and 127.0.0.1, and its key, in a temp dir (openssl). */
export async function selfSignedCert(): Promise<{ dir: string; cert: string; key: string }> {
  const dir = await Deno.makeTempDir({ prefix: "ha-pg-tls-" });
  const cert = `${dir}/cert.pem`;
  const key = `${dir}/key.pem`;
  const r = await run("openssl", [
    "req",
    "-x509",
    "-newkey",
    "rsa:2048",
    "-nodes",
    "-subj",
    "/CN=localhost",
    "-days",
    "1",
    "-keyout",
    key,
    "-out",
    cert,
    "-addext",
    "subjectAltName=IP:127.0.0.1,DNS:localhost",
  ]);
  if (r.code !== 0) throw new Error(`openssl failed: ${r.stderr}`);
  return { dir, cert, key };
}
