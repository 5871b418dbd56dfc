/**
 * Database sources: file paths, globs and `file:` URIs with the README's
 * `_journal`/`_busy_timeout` parameters, in memory or on disk.
 *
 * @example
 * ```ts
 * parseDsn("file:my.db?_journal=WAL&_busy_timeout=500", false);
 * // { id: "my.db", path: "my.db", memory: false, uriParams: "", pragmas: [["journal_mode","WAL"],["busy_timeout","500"]] }
 * ```
 */
import { HaError } from "../errors/mod.ts";

/** A resolved database source. */
export interface DatabaseSource {
  /** Database id: the file's base name (`mydatabase.db`). */
  id: string;
  /** File path (relative paths resolve against the working directory). */
  path: string;
  /** Keep the database in memory (`-m`); `path` is then only loaded if it exists. */
  memory: boolean;
  /** SQLite-native URI parameters kept for the open (`mode=ro&cache=...`), without `?`. */
  uriParams: string;
  /** PRAGMAs to run after opening, in order. */
  pragmas: [string, string][];
}

/** Defaults applied to file databases unless the DSN says otherwise. */
const FILE_DEFAULTS: [string, string][] = [
  ["journal_mode", "WAL"],
  ["busy_timeout", "5000"],
  ["synchronous", "NORMAL"],
];

/** Our underscore parameters (as in the original's drivers) and the PRAGMA each sets. */
const PARAM_PRAGMAS: Record<string, string> = {
  _journal: "journal_mode",
  _journal_mode: "journal_mode",
  _busy_timeout: "busy_timeout",
  _timeout: "busy_timeout",
  _sync: "synchronous",
  _synchronous: "synchronous",
  _fk: "foreign_keys",
  _foreign_keys: "foreign_keys",
  _cache_size: "cache_size",
  _auto_vacuum: "auto_vacuum",
  _vacuum: "auto_vacuum",
  _locking_mode: "locking_mode",
  _locking: "locking_mode",
  _recursive_triggers: "recursive_triggers",
  _secure_delete: "secure_delete",
};

const SAFE_PRAGMA_VALUE = /^[A-Za-z0-9_\-]+$/;

/** Parses one DSN (a path or a `file:` URI). */
export function parseDsn(dsn: string, memory: boolean): DatabaseSource {
  let path = dsn;
  let query = "";
  if (dsn.startsWith("file:")) {
    const rest = dsn.slice("file:".length);
    const q = rest.indexOf("?");
    path = q < 0 ? rest : rest.slice(0, q);
    query = q < 0 ? "" : rest.slice(q + 1);
    if (path.startsWith("//")) path = path.slice(2); // file://host/path → /path (host ignored)
    path = decodeURIComponent(path);
  }
  if (path === "" || path === ":memory:") {
    throw new HaError("config", `invalid database "${dsn}": expected a file path or file: URI`);
  }
  const pragmas = new Map<string, string>(memory ? [] : FILE_DEFAULTS);
  const native: string[] = [];
  for (const part of query.split("&").filter(Boolean)) {
    const eq = part.indexOf("=");
    const key = decodeURIComponent(eq < 0 ? part : part.slice(0, eq));
    const value = decodeURIComponent(eq < 0 ? "" : part.slice(eq + 1));
    if (key === "_pragma") {
      const m = /^(\w+)\(([^)]*)\)$/.exec(value) ?? /^(\w+)=(.*)$/.exec(value);
      if (!m) throw badParam(dsn, key, value, "name(value)");
      pragmas.set(m[1].toLowerCase(), checkValue(dsn, key, m[2]));
    } else if (key in PARAM_PRAGMAS) {
      pragmas.set(PARAM_PRAGMAS[key], checkValue(dsn, key, value));
    } else if (key.startsWith("_")) {
      throw new HaError(
        "config",
        `invalid database "${dsn}": unknown parameter ${key} (known: ${
          Object.keys(PARAM_PRAGMAS).join(", ")
        }, _pragma=name(value))`,
      );
    } else native.push(part);
  }
  if (memory) pragmas.delete("journal_mode");
  return {
    id: basename(path),
    path,
    memory,
    uriParams: native.join("&"),
    pragmas: [...pragmas.entries()],
  };
}

function checkValue(dsn: string, key: string, value: string): string {
  if (!SAFE_PRAGMA_VALUE.test(value)) throw badParam(dsn, key, value, "a word or number");
  return value;
}

function badParam(dsn: string, key: string, value: string, expected: string): HaError {
  return new HaError(
    "config",
    `invalid database "${dsn}": bad value "${value}" for ${key} (expected ${expected})`,
  );
}

/** The last path segment. */
export function basename(path: string): string {
  const parts = path.split(/[\\/]/).filter(Boolean);
  return parts[parts.length - 1] ?? path;
}

/** True when `s` contains glob metacharacters. */
export function isGlob(s: string): boolean {
  return /[*?[]/.test(s) && !s.startsWith("file:");
}

/** Expands a glob (`*.db`, `data/*.sqlite`, `db[12].db`) into sorted existing files. */
export function expandGlob(pattern: string): string[] {
  const segments = pattern.split("/");
  let bases: string[] = [pattern.startsWith("/") ? "/" : "."];
  const rest = pattern.startsWith("/") ? segments.slice(1) : segments;
  for (let i = 0; i < rest.length; i++) {
    const seg = rest[i];
    const last = i === rest.length - 1;
    const next: string[] = [];
    for (const base of bases) {
      if (!isGlob(seg)) {
        next.push(join(base, seg));
        continue;
      }
      const re = globToRegExp(seg);
      let entries: Deno.DirEntry[] = [];
      try {
        entries = [...Deno.readDirSync(base)];
      } catch {
        continue;
      }
      for (const e of entries) {
        if (!re.test(e.name) || (e.name.startsWith(".") && !seg.startsWith("."))) continue;
        if (last ? e.isFile || e.isSymlink : e.isDirectory) next.push(join(base, e.name));
      }
    }
    bases = next;
  }
  return bases.filter((p) => {
    try {
      return Deno.statSync(p).isFile;
    } catch {
      return false;
    }
  }).sort();
}

function join(base: string, name: string): string {
  if (base === ".") return name;
  return base.endsWith("/") ? base + name : `${base}/${name}`;
}

function globToRegExp(seg: string): RegExp {
  let re = "";
  for (let i = 0; i < seg.length; i++) {
    const c = seg[i];
    if (c === "*") re += "[^/]*";
    else if (c === "?") re += "[^/]";
    else if (c === "[") {
      const close = seg.indexOf("]", i + 1);
      if (close < 0) re += "\\[";
      else {
        let body = seg.slice(i + 1, close);
        if (body.startsWith("!")) body = "^" + body.slice(1);
        re += `[${body.replace(/\\/g, "\\\\")}]`;
        i = close;
      }
    } else re += c.replace(/[.+^${}()|\\]/g, "\\$&");
  }
  return new RegExp(`^${re}$`);
}

/**
 * Resolves the command line's DSNs into sources: globs expanded, the default
 * `ha.db` when none is given, duplicate ids refused.
 */
export function resolveSources(dsns: string[], memory: boolean): DatabaseSource[] {
  const list: string[] = [];
  for (const dsn of dsns.length ? dsns : ["ha.db"]) {
    if (isGlob(dsn)) {
      const files = expandGlob(dsn);
      if (files.length === 0) {
        throw new HaError("config", `no database file matches "${dsn}"`);
      }
      list.push(...files);
    } else list.push(dsn);
  }
  const sources = list.map((d) => parseDsn(d, memory));
  const seen = new Set<string>();
  for (const s of sources) {
    if (seen.has(s.id)) {
      throw new HaError("config", `two databases have the same id "${s.id}" (ids are file names)`);
    }
    seen.add(s.id);
  }
  return sources;
}
