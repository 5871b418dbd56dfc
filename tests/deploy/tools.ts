/**
 * What the deployment tests need from the machine: podman (with runc, a containers.conf and the
 * debian:bookworm-slim base image: scripts/setup-containers.sh), podman-compose and helm. A
 * missing tool skips its tests with a loud warning, unless HA_DEPLOY_REQUIRE=1 (CI) makes it a
 * failure.
 */
import { waitFor } from "../integration/helpers/cluster.ts";

const ROOT = new URL("../../", import.meta.url).pathname;

/** The repository root, with a trailing slash. */
export const REPO = ROOT;

/** The image the tests build and run. */
export const IMAGE = "localhost/ha:deploy-test";

/** Runs a command; returns exit code and output (never throws for a non-zero exit). */
export async function sh(
  cmd: string,
  args: string[],
  opts: { cwd?: string; env?: Record<string, string> } = {},
): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const r = await new Deno.Command(cmd, {
      args,
      cwd: opts.cwd ?? ROOT,
      env: opts.env,
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).output();
    const dec = new TextDecoder();
    return { code: r.code, stdout: dec.decode(r.stdout), stderr: dec.decode(r.stderr) };
  } catch (e) {
    return { code: 127, stdout: "", stderr: `${cmd}: ${(e as Error).message}` };
  }
}

/** Like {@link sh}, but throws with the output on a non-zero exit. */
export async function must(
  cmd: string,
  args: string[],
  opts: { cwd?: string; env?: Record<string, string> } = {},
): Promise<string> {
  const r = await sh(cmd, args, opts);
  if (r.code !== 0) {
    throw new Error(`${cmd} ${args.join(" ")} failed (${r.code}):\n${r.stdout}\n${r.stderr}`);
  }
  return r.stdout;
}

/** helm: on PATH, else where scripts/setup-containers.sh puts it. */
export function helmBin(): string {
  const local = `${ROOT}.tmp/bin/helm`;
  try {
    Deno.statSync(local);
    return local;
  } catch {
    return "helm";
  }
}

/**
 * Why `tool` cannot run here (null when it can): the test is then skipped with a warning, or
 * fails when HA_DEPLOY_REQUIRE=1.
 */
export async function unavailable(tool: "podman" | "podman-compose" | "helm"): Promise<
  string | null
> {
  let why: string | null = null;
  if (tool === "helm") {
    const r = await sh(helmBin(), ["version", "--short"]);
    if (r.code !== 0) why = `helm does not run: ${r.stderr.trim()}`;
  } else {
    const r = await sh(tool, ["--version"]);
    if (r.code !== 0) why = `${tool} does not run: ${r.stderr.trim()}`;
    else if (tool === "podman") {
      const base = await sh("podman", [
        "image",
        "exists",
        "docker.io/library/debian:bookworm-slim",
      ]);
      if (base.code !== 0) why = "the base image debian:bookworm-slim is missing";
    }
  }
  if (why === null) return null;
  const message = `${why} (run scripts/setup-containers.sh)`;
  if (Deno.env.get("HA_DEPLOY_REQUIRE") === "1") throw new Error(message);
  console.warn(`\n!!! DEPLOYMENT TEST SKIPPED: ${message} !!!\n`);
  return message;
}

/** Builds {@link IMAGE} (cached layers make a rebuild quick); returns the seconds it took. */
export async function buildImage(): Promise<number> {
  const t0 = performance.now();
  await must("podman", ["build", "--format", "docker", ...await caArgs(), "-t", IMAGE, "."]);
  return (performance.now() - t0) / 1000;
}

/**
 * The machine's own CA certificates (/usr/local/share/ca-certificates, e.g. of a TLS-intercepting
 * egress proxy) for the build's npm and deno downloads.
 */
async function caArgs(): Promise<string[]> {
  const pems: string[] = [];
  try {
    for await (const e of Deno.readDir("/usr/local/share/ca-certificates")) {
      if (e.isFile && e.name.endsWith(".crt")) {
        pems.push(await Deno.readTextFile(`/usr/local/share/ca-certificates/${e.name}`));
      }
    }
  } catch { /* none */ }
  return pems.length ? ["--build-arg", `EXTRA_CA_CERTS=${pems.join("\n")}`] : [];
}

/** Polls `cond` until it holds; containers start slowly, so the bound is generous. */
export function poll(what: string, cond: () => Promise<boolean>, ms = 180_000): Promise<void> {
  return waitFor(what, cond, ms);
}

/** A free TCP port on 127.0.0.1. */
export function freePort(): number {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (l.addr as Deno.NetAddr).port;
  l.close();
  return port;
}

/** POSTs SQL with a bearer token; returns the status and JSON body. */
export async function query(
  base: string,
  token: string,
  sql: string,
  params?: unknown[],
): Promise<{ status: number; body: { rows?: unknown[][]; error?: string } }> {
  const r = await fetch(`${base}/query`, {
    method: "POST",
    headers: { "content-type": "application/json", authorization: `Bearer ${token}` },
    body: JSON.stringify(params ? { sql, params } : { sql }),
  });
  return { status: r.status, body: await r.json() };
}
