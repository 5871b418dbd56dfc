/**
 * Locating the `nats-server` executable that ha supervises.
 *
 * Resolution order:
 * 1. an explicit path (`--nats-server-bin` / `HA_NATS_SERVER_BIN`, resolved by the caller);
 * 2. a copy embedded in the ha binary: `deno compile --include vendor/nats-server main.ts` puts the
 *    file in the binary's read-only virtual file system, where it cannot be executed, so it is
 *    copied once to a private cache directory (`$XDG_CACHE_HOME/ha` or `~/.cache/ha`, named by its
 *    SHA-256) with mode 0755. Run from source, an executable `vendor/nats-server` is used in place;
 * 3. `PATH`, then a few well-known directories (`/usr/sbin` is where Debian puts it, and it is not on
 *    a normal user's `PATH`).
 *
 * @module
 */

import { HaError } from "../errors/mod.ts";

/** The single message users see when no `nats-server` can be found. */
export const NATS_SERVER_NOT_FOUND =
  "nats-server not found: install it (Debian/Ubuntu: apt-get install nats-server; or download " +
  "from the NATS releases) or pass --nats-server-bin PATH, or use --replication-url to connect " +
  "to an external NATS server, or --nats-port 0 to run without replication";

/** Directories searched after `PATH`. */
export const WELL_KNOWN_DIRS: readonly string[] = [
  "/usr/local/sbin",
  "/usr/local/bin",
  "/usr/sbin",
  "/usr/bin",
  "/opt/homebrew/bin",
];

/** Where `deno compile --include vendor/nats-server` makes the embedded copy readable. */
export const EMBEDDED_NATS_SERVER_URL: URL = new URL("../../vendor/nats-server", import.meta.url);

/** Options of {@link findNatsServer}. */
export interface FindNatsServerOptions {
  /** Explicit path from `--nats-server-bin` / `HA_NATS_SERVER_BIN`; `null` when not set. */
  flag: string | null;
  /** Value used instead of the `PATH` environment variable (tests). */
  path?: string;
  /** Directories searched after `PATH`. Default {@link WELL_KNOWN_DIRS}. */
  extraDirs?: readonly string[];
  /** Location of the embedded copy; `null` disables that step. Default {@link EMBEDDED_NATS_SERVER_URL}. */
  embedded?: URL | null;
  /** Treat the embedded copy as inside a compiled binary (copy it out). Default: detected. */
  compiled?: boolean;
  /** Where the embedded copy is written. Default `$XDG_CACHE_HOME/ha` or `~/.cache/ha`. */
  cacheDir?: string;
}

/**
 * Returns the absolute path of a runnable `nats-server`, or throws `HaError("config")` with
 * {@link NATS_SERVER_NOT_FOUND}.
 *
 * @example
 * ```ts
 * const bin = await findNatsServer({ flag: Deno.env.get("HA_NATS_SERVER_BIN") ?? null });
 * ```
 */
export async function findNatsServer(opts: FindNatsServerOptions): Promise<string> {
  if (opts.flag !== null && opts.flag !== "") {
    if (await isExecutable(opts.flag)) return opts.flag;
    throw new HaError(
      "config",
      `--nats-server-bin ${opts.flag}: not found or not an executable file`,
      { path: opts.flag },
    );
  }
  const embedded = opts.embedded === undefined ? EMBEDDED_NATS_SERVER_URL : opts.embedded;
  if (embedded !== null) {
    const found = await fromEmbedded(embedded, opts.compiled ?? isCompiled(), opts.cacheDir);
    if (found !== null) return found;
  }
  const pathVar = opts.path ?? Deno.env.get("PATH") ?? "";
  const dirs = [
    ...pathVar.split(":").filter((d) => d !== ""),
    ...(opts.extraDirs ?? WELL_KNOWN_DIRS),
  ];
  for (const dir of dirs) {
    const candidate = `${dir.replace(/\/+$/, "")}/nats-server`;
    if (await isExecutable(candidate)) return candidate;
  }
  throw new HaError("config", NATS_SERVER_NOT_FOUND);
}

/** Whether `path` is a regular file with an execute bit set. */
async function isExecutable(path: string): Promise<boolean> {
  try {
    const st = await Deno.stat(path);
    return st.isFile && (st.mode === null || (st.mode & 0o111) !== 0);
  } catch {
    return false;
  }
}

/** Whether this code runs inside a `deno compile`d binary. */
function isCompiled(): boolean {
  return import.meta.url.includes("/deno-compile-");
}

async function fromEmbedded(
  url: URL,
  compiled: boolean,
  cacheDirOverride?: string,
): Promise<string | null> {
  if (url.protocol !== "file:") return null;
  const path = decodeURIComponent(url.pathname);
  if (!compiled) return (await isExecutable(path)) ? path : null;
  let bytes: Uint8Array;
  try {
    bytes = await Deno.readFile(path);
  } catch {
    return null;
  }
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", bytes as BufferSource));
  const hash = Array.from(digest.slice(0, 8), (b) => b.toString(16).padStart(2, "0")).join("");
  let dir = cacheDirOverride ?? cacheDir();
  try {
    await Deno.mkdir(dir, { recursive: true, mode: 0o700 });
  } catch {
    dir = await Deno.makeTempDir({ prefix: "ha-nats-bin-" }); // e.g. a read-only home
  }
  const target = `${dir}/nats-server-${hash}`;
  if (await isExecutable(target)) {
    const existing = await Deno.readFile(target).catch(() => null);
    if (existing !== null && sameBytes(existing, bytes)) return target;
  }
  // Write beside the target and rename: concurrent starts never see a half-written file.
  const tmp = `${target}.${Deno.pid}.tmp`;
  await Deno.writeFile(tmp, bytes, { mode: 0o755 });
  await Deno.chmod(tmp, 0o755);
  await Deno.rename(tmp, target);
  return target;
}

function cacheDir(): string {
  const home = Deno.env.get("HOME");
  const base = Deno.env.get("XDG_CACHE_HOME") ?? (home ? `${home}/.cache` : Deno.makeTempDirSync());
  return `${base}/ha`;
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}
