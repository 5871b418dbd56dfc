/**
 * What client SQL may do on the shared connections (the writer every client uses, the readers):
 * nothing that reaches the filesystem or changes the connection for other clients.
 *
 * - `ATTACH` and `VACUUM INTO` (which attaches its target) are denied unless the file is a plain
 *   path inside `--attach-dir`; `DETACH` and `load_extension()` are always denied (extensions are
 *   loaded with `--extensions`).
 * - PRAGMAs are allow-listed: schema and header reads, reads of settings, and the few writes that
 *   only concern the application's data or the running transaction (`user_version`,
 *   `application_id`, `defer_foreign_keys`, `optimize`). `synchronous=`, `max_page_count=`,
 *   `query_only=`, `journal_mode=`, `writable_schema=`… are denied.
 *
 * The node's own statements (replication apply, capture, snapshots, backups) run outside client
 * mode and are not checked (see `Connection`).
 *
 * @example
 * ```ts
 * clientDenial({ code: Action.PRAGMA, arg1: "synchronous", arg2: "OFF", db: null, trigger: null },
 *   { attachDir: null }); // "PRAGMA synchronous = OFF is not allowed: …"
 * ```
 * @module
 */
import { Action } from "./authorizer.ts";
import type { AuthAction } from "./plugin.ts";

/** The client SQL policy of a connection (structured-cloneable). */
export interface SqlPolicy {
  /** `--attach-dir`: the only directory ATTACH and VACUUM INTO may use; null = denied. */
  attachDir: string | null;
}

/** `SQLITE_AUTH`: the extended code carried by policy errors (SQLSTATE 42501 on PG). */
export const SQLITE_AUTH = 23;

/**
 * PRAGMAs whose argument names a table or index, or a row limit: they only read, and only what
 * every connection sees alike (the schema), so a reader answers them as the writer would.
 */
export const ARGUMENT_READS: ReadonlySet<string> = new Set([
  "table_info",
  "table_xinfo",
  "table_list",
  "index_info",
  "index_xinfo",
  "index_list",
  "foreign_key_list",
  "foreign_key_check",
  "integrity_check",
  "quick_check",
]);

/** PRAGMAs that may be read (without a value). */
const READABLE = new Set([
  ...ARGUMENT_READS,
  "application_id",
  "auto_vacuum",
  "automatic_index",
  "busy_timeout",
  "cache_size",
  "cache_spill",
  "cell_size_check",
  "collation_list",
  "compile_options",
  "data_version",
  "database_list",
  "defer_foreign_keys",
  "encoding",
  "foreign_keys",
  "freelist_count",
  "function_list",
  "journal_mode",
  "journal_size_limit",
  "locking_mode",
  "max_page_count",
  "mmap_size",
  "module_list",
  "page_count",
  "page_size",
  "pragma_list",
  "query_only",
  "recursive_triggers",
  "schema_version",
  "secure_delete",
  "synchronous",
  "temp_store",
  "trusted_schema",
  "user_version",
  "wal_autocheckpoint",
]);

/** PRAGMAs that may be set: application data in the header, or per transaction/maintenance. */
const SETTABLE = new Set(["user_version", "application_id", "defer_foreign_keys", "optimize"]);

/** Why a client may not do `a`, or null when it may. */
export function clientDenial(a: AuthAction, policy: SqlPolicy): string | null {
  switch (a.code) {
    case Action.PRAGMA:
      return pragmaDenial(a);
    case Action.ATTACH:
      return attachDenial(a.arg1, policy);
    case Action.DETACH:
      return "DETACH is not allowed";
    case Action.FUNCTION:
      if (a.arg2?.toLowerCase() === "load_extension") {
        return "load_extension() is not allowed from SQL (use --extensions)";
      }
      // Switches replication capture off for the connection (ha_interrupt.c): ha's own.
      return a.arg2?.toLowerCase() === "ha_capture" ? "ha_capture() is internal to ha" : null;
    default:
      return null;
  }
}

function pragmaDenial(a: AuthAction): string | null {
  const name = (a.arg1 ?? "").toLowerCase();
  if (ARGUMENT_READS.has(name)) return null;
  if (a.arg2 === null ? READABLE.has(name) : SETTABLE.has(name)) return null;
  const shown = a.arg2 === null ? `PRAGMA ${name}` : `PRAGMA ${name} = ${a.arg2}`;
  return `${shown} is not allowed: it would change the database or connection for every ` +
    "client (allowed: reading settings and the schema, and setting user_version, " +
    "application_id, defer_foreign_keys, optimize)";
}

function attachDenial(file: string | null, policy: SqlPolicy): string | null {
  // A temporary or in-memory database touches no file you name (plain VACUUM attaches one).
  if (file === "" || file === ":memory:") return null;
  if (policy.attachDir === null) {
    return "ATTACH and VACUUM INTO are not allowed (start ha with --attach-dir DIR to allow " +
      "files in DIR)";
  }
  if (file === null || /^file:/i.test(file)) {
    return `ATTACH and VACUUM INTO need a literal file path inside --attach-dir ${policy.attachDir}`;
  }
  return insideDir(file, policy.attachDir)
    ? null
    : `${file} is outside --attach-dir ${policy.attachDir}`;
}

/** Whether `file` (existing or not, symlinks resolved) lies inside `dir`. */
export function insideDir(file: string, dir: string): boolean {
  let root: string;
  try {
    root = Deno.realPathSync(dir);
  } catch {
    return false;
  }
  const abs = file.startsWith("/") ? file : `${Deno.cwd()}/${file}`;
  let real: string;
  try {
    real = Deno.realPathSync(abs);
  } catch {
    const slash = abs.lastIndexOf("/");
    const base = abs.slice(slash + 1);
    if (base === "" || base === "." || base === "..") return false;
    try {
      real = `${Deno.realPathSync(abs.slice(0, slash) || "/")}/${base}`;
    } catch {
      return false;
    }
  }
  return real.startsWith(root.endsWith("/") ? root : `${root}/`);
}
