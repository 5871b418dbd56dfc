/**
 * Finding `ha_interrupt.so`, the SQLite extension that makes statements stoppable.
 *
 * Run from source it is `vendor/ha_interrupt.so`, built by `scripts/build-extension.sh`. In a
 * binary made by `deno compile --include vendor/ha_interrupt.so` (scripts/compile.sh) the file sits
 * in the binary's read-only virtual file system, which neither SQLite nor `Deno.dlopen` can load:
 * it is copied once to `$XDG_CACHE_HOME/ha/<sha256>/ha_interrupt.so` (or `~/.cache/ha/…`). The
 * directory carries the hash because SQLite derives the entry point from the file name.
 *
 * @module
 */

/** Where a source checkout and a compiled binary keep the extension. */
export const EXTENSION_URL: URL = new URL("../../../vendor/ha_interrupt.so", import.meta.url);

/** How to get the extension when it is missing. */
export const BUILD_HINT = "build it with `bash scripts/build-extension.sh` (needs gcc and npm; " +
  "./install.sh does it)";

/**
 * The path SQLite and FFI can load the extension from, or null when it is not there.
 * `compiled`: copy it out of a compiled binary; `cacheDir`: where to (default `…/.cache/ha`).
 */
export async function findInterruptExtension(
  url: URL = EXTENSION_URL,
  compiled = import.meta.url.includes("/deno-compile-"),
  cacheDir?: string,
): Promise<string | null> {
  const path = decodeURIComponent(url.pathname);
  let bytes: Uint8Array;
  try {
    if (!compiled) return (await Deno.stat(path)).isFile ? path : null;
    bytes = await Deno.readFile(path);
  } catch {
    return null;
  }
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", bytes as BufferSource));
  const hash = Array.from(digest.slice(0, 8), (b) => b.toString(16).padStart(2, "0")).join("");
  const root = cacheDir ?? defaultCacheDir();
  let dir = root ? `${root}/${hash}` : null;
  try {
    if (dir) await Deno.mkdir(dir, { recursive: true, mode: 0o700 });
  } catch {
    dir = null; // e.g. a read-only home
  }
  dir ??= await Deno.makeTempDir({ prefix: "ha-ext-" });
  const target = `${dir}/ha_interrupt.so`;
  const existing = await Deno.readFile(target).catch(() => null);
  if (existing !== null && sameBytes(existing, bytes)) return target;
  // Write beside the target and rename: concurrent starts never load a half-written file.
  const tmp = `${target}.${Deno.pid}.tmp`;
  await Deno.writeFile(tmp, bytes, { mode: 0o755 });
  await Deno.rename(tmp, target);
  return target;
}

function defaultCacheDir(): string | null {
  const home = Deno.env.get("HOME");
  const base = Deno.env.get("XDG_CACHE_HOME") ?? (home ? `${home}/.cache` : null);
  return base ? `${base}/ha` : null;
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}
