/**
 * Where a memory database (`-m`) lives: a SQLite file in a fresh directory on a RAM-backed
 * filesystem (`/dev/shm`, else the system temp dir). A file lets it use WAL, so readers never
 * wait for a writer (SQLite's memdb VFS has no WAL: one open write transaction made every read
 * wait for the busy timeout), while it stays as volatile as memdb: a new directory for every
 * open, removed at close, and directories left behind by processes that died removed at the
 * next open.
 */

const PREFIX = "ha-mem-";
const RAM_BASE = "/dev/shm";

/** Creates the directory for one memory database; `${dir}/${id}` is its file. */
export function createMemoryDir(): string {
  try {
    if (Deno.statSync(RAM_BASE).isDirectory) {
      removeStale(RAM_BASE);
      return Deno.makeTempDirSync({ dir: RAM_BASE, prefix: `${PREFIX}${Deno.pid}-` });
    }
  } catch { /* no usable /dev/shm: the temp dir below */ }
  const dir = Deno.makeTempDirSync({ prefix: `${PREFIX}${Deno.pid}-` });
  removeStale(dir.slice(0, dir.lastIndexOf("/")));
  return dir;
}

/** Removes a memory database's directory (its file, WAL and shared-memory index). */
export function removeMemoryDir(dir: string): void {
  try {
    Deno.removeSync(dir, { recursive: true });
  } catch { /* already gone */ }
}

/** Removes the memory directories of processes that no longer run (Linux: /proc tells). */
function removeStale(base: string): void {
  if (!exists("/proc/self")) return;
  try {
    for (const e of Deno.readDirSync(base)) {
      const pid = Number(e.name.slice(PREFIX.length).split("-")[0]);
      if (!e.name.startsWith(PREFIX) || !Number.isInteger(pid) || pid === Deno.pid) continue;
      if (!exists(`/proc/${pid}`)) removeMemoryDir(`${base}/${e.name}`);
    }
  } catch { /* an unreadable base: nothing to clean */ }
}

function exists(path: string): boolean {
  try {
    Deno.statSync(path);
    return true;
  } catch {
    return false;
  }
}
