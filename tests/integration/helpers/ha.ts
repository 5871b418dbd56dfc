/**
 * Starts real `ha` processes for integration tests: free loopback ports,
 * a temp working directory, readiness wait, and cleanup by the process's own
 * pid (never by name).
 */

import { freePort } from "./cluster.ts";

export { freePort };

const ROOT = new URL("../../../", import.meta.url).pathname;

/** A running ha process. */
export interface HaProcess {
  pid: number;
  port: number;
  url: string;
  cwd: string;
  /** Everything the process wrote to stderr/stdout so far. */
  output(): string;
  /** SIGTERM, wait for exit; returns the exit code. SIGKILL after `graceMs`. */
  stop(graceMs?: number): Promise<number>;
  /** SIGKILL at once. */
  kill(): Promise<void>;
  status: Promise<Deno.CommandStatus>;
}

/** Options to start a node. */
export interface StartOptions {
  /** Extra CLI arguments (DSNs included). `--port` is added unless given. */
  args?: string[];
  cwd?: string;
  env?: Record<string, string>;
  /** Wait until `/healthz` answers (default true). */
  wait?: boolean;
  timeoutMs?: number;
  /** Extra flags for `deno run` (e.g. `--cpu-prof` in benchmarks). */
  denoFlags?: string[];
}

/** Runs `deno run … main.ts <args>` as `deno task ha` does. */
export async function startHa(opts: StartOptions = {}): Promise<HaProcess> {
  const args = [...(opts.args ?? [])];
  let port: number;
  const i = args.findIndex((a) => a === "--port" || a === "-p");
  if (i >= 0) port = Number(args[i + 1]);
  else {
    port = freePort();
    args.push("--port", String(port));
  }
  const cwd = opts.cwd ?? await Deno.makeTempDir({ prefix: "ha-test-" });
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "-A",
      "--unstable-worker-options",
      ...(opts.denoFlags ?? []),
      `${ROOT}main.ts`,
      ...args,
    ],
    cwd,
    env: opts.env,
    stdout: "piped",
    stderr: "piped",
    stdin: "null",
  }).spawn();
  let out = "";
  const dec = new TextDecoder();
  const drain = async (s: ReadableStream<Uint8Array>) => {
    for await (const chunk of s) out += dec.decode(chunk, { stream: true });
  };
  const drained = Promise.all([drain(child.stdout), drain(child.stderr)]);
  const status = child.status.then(async (s) => {
    await drained.catch(() => {});
    return s;
  });
  const proc: HaProcess = {
    pid: child.pid,
    port,
    url: `http://127.0.0.1:${port}`,
    cwd,
    output: () => out,
    status,
    async stop(graceMs = 10_000) {
      try {
        child.kill("SIGTERM");
      } catch { /* already gone */ }
      const timer = setTimeout(() => {
        try {
          child.kill("SIGKILL");
        } catch { /* gone */ }
      }, graceMs);
      const s = await status;
      clearTimeout(timer);
      return s.code;
    },
    async kill() {
      try {
        child.kill("SIGKILL");
      } catch { /* gone */ }
      await status;
    },
  };
  if (opts.wait ?? true) {
    const deadline = Date.now() + (opts.timeoutMs ?? 120_000); // a busy machine starts slowly
    let exited = false;
    status.then(() => exited = true);
    for (;;) {
      if (exited) {
        throw new Error(`ha exited before becoming healthy:\n${out}`);
      }
      try {
        const r = await fetch(`${proc.url}/healthz`);
        await r.body?.cancel();
        if (r.ok) break;
      } catch { /* not listening yet */ }
      if (Date.now() > deadline) {
        await proc.kill();
        throw new Error(`ha did not become healthy in time:\n${out}`);
      }
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  return proc;
}

/** Runs ha to completion (for CLI error tests). */
export async function runHa(
  args: string[],
  opts: { cwd?: string; env?: Record<string, string> } = {},
): Promise<{ code: number; stdout: string; stderr: string }> {
  const r = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "--unstable-worker-options", `${ROOT}main.ts`, ...args],
    cwd: opts.cwd,
    env: opts.env,
    stdout: "piped",
    stderr: "piped",
    stdin: "null",
  }).output();
  const dec = new TextDecoder();
  return { code: r.code, stdout: dec.decode(r.stdout), stderr: dec.decode(r.stderr) };
}

/** POSTs a JSON body (string or value) and returns status and parsed body. */
export async function post(
  url: string,
  body: unknown,
  headers: Record<string, string> = {},
  // deno-lint-ignore no-explicit-any
): Promise<{ status: number; body: any; text: string }> {
  const r = await fetch(url, {
    method: "POST",
    body: typeof body === "string" ? body : JSON.stringify(body),
    headers: { "content-type": "application/json", ...headers },
  });
  const text = await r.text();
  let parsed: unknown = undefined;
  try {
    parsed = JSON.parse(text);
  } catch { /* not JSON */ }
  return { status: r.status, body: parsed, text };
}
