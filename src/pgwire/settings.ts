/**
 * A PostgreSQL session's settings (`SET`/`SHOW`/`RESET`, ParameterStatus): the values reported
 * at start-up, the read-only ones, and what a read-only follower reports.
 *
 * @module
 */
import { PgError } from "./errors.ts";
import { formatTimeout, parseTimeout, STATEMENT_TIMEOUT } from "./statement_timeout.ts";

/** The server version reported to clients. */
export const SERVER_VERSION = "15.0 (ha)";
/** `server_version_num` matching {@link SERVER_VERSION}. */
export const SERVER_VERSION_NUM = "150000";

/** Parameters reported with ParameterStatus at start-up and when SET changes them. */
export const REPORTED = [
  "application_name",
  "client_encoding",
  "DateStyle",
  "default_transaction_read_only",
  "in_hot_standby",
  "integer_datetimes",
  "IntervalStyle",
  "is_superuser",
  "server_encoding",
  "server_version",
  "session_authorization",
  "standard_conforming_strings",
  "TimeZone",
] as const;

/**
 * What a read-only follower reports, as a PostgreSQL hot standby does: libpq's
 * `target_session_attrs=read-write` then skips it, `=standby` / `prefer-standby` pick it.
 */
export const FOLLOWER_SETTINGS: Readonly<Record<string, string>> = {
  default_transaction_read_only: "on",
  transaction_read_only: "on",
  in_hot_standby: "on",
};

/** Default values of the settings this server knows (canonical names). */
function defaults(user: string): Record<string, string> {
  return {
    application_name: "",
    bytea_output: "hex",
    client_encoding: "UTF8",
    client_min_messages: "notice",
    DateStyle: "ISO, MDY",
    default_transaction_deferrable: "off",
    default_transaction_isolation: "serializable",
    default_transaction_read_only: "off",
    extra_float_digits: "1",
    idle_in_transaction_session_timeout: "0",
    in_hot_standby: "off",
    integer_datetimes: "on",
    IntervalStyle: "postgres",
    is_superuser: "on",
    lc_collate: "C",
    lc_ctype: "C",
    lc_messages: "C",
    lc_monetary: "C",
    lc_numeric: "C",
    lc_time: "C",
    lock_timeout: "0",
    max_connections: "100",
    max_identifier_length: "63",
    search_path: '"$user", public',
    server_encoding: "UTF8",
    server_version: SERVER_VERSION,
    server_version_num: SERVER_VERSION_NUM,
    session_authorization: user,
    standard_conforming_strings: "on",
    statement_timeout: "0",
    TimeZone: "UTC",
    transaction_deferrable: "off",
    transaction_isolation: "serializable",
    transaction_read_only: "off",
  };
}

/** Settings a client may not change. */
const READ_ONLY = new Set([
  "server_version",
  "server_version_num",
  "server_encoding",
  "integer_datetimes",
  "is_superuser",
  "lc_collate",
  "lc_ctype",
  "max_connections",
  "max_identifier_length",
  "in_hot_standby",
  "ssl",
]);

const UTF8_NAMES = new Set(["UTF8", "UTF-8", "UNICODE", "SQL_ASCII"]);

/** One session's settings (case-insensitive names, canonical spelling kept). */
export class Settings {
  private readonly canonical = new Map<string, string>();
  private readonly values = new Map<string, string>();
  private readonly initial: Record<string, string>;

  /**
   * @param user the authenticated user
   * @param startup the StartupMessage parameters (applied like SET, errors ignored)
   * @param fixed connection facts shown by SHOW (e.g. `ssl`)
   */
  constructor(
    user: string,
    startup: Record<string, string> = {},
    fixed: Record<string, string> = {},
  ) {
    this.initial = { ...defaults(user), ...fixed };
    for (const [k, v] of Object.entries(this.initial)) {
      this.canonical.set(k.toLowerCase(), k);
      this.values.set(k.toLowerCase(), v);
    }
    for (const [k, v] of Object.entries(startup)) {
      if (["user", "database", "options", "replication"].includes(k) || k.startsWith("_pq_.")) {
        continue;
      }
      try {
        this.set(k, v);
      } catch {
        // an unchangeable or unsupported start-up setting is ignored, as harmless
      }
    }
    // RESET returns to the values the session started with
    for (const [k, v] of this.values) this.initial[this.nameOf(k)] = v;
  }

  /** The value of a setting, or undefined when unknown. */
  get(name: string): string | undefined {
    return this.values.get(name.toLowerCase());
  }

  /** The canonical spelling of a setting's name. */
  nameOf(name: string): string {
    return this.canonical.get(name.toLowerCase()) ?? name.toLowerCase();
  }

  /** Sets a value; returns the ParameterStatus to report, if any. */
  set(name: string, value: string | null): [string, string] | null {
    const key = name.toLowerCase();
    const canon = this.nameOf(name);
    if (READ_ONLY.has(canon)) {
      throw new PgError("55P02", `parameter "${canon}" cannot be changed`);
    }
    if (!this.canonical.has(key) && !key.includes(".")) {
      // PostgreSQL rejects unknown names; accepting them keeps odd clients working.
      this.canonical.set(key, key);
    }
    let v = value ?? this.initial[canon] ?? "";
    if (key === "client_encoding") {
      if (!UTF8_NAMES.has(v.toUpperCase())) {
        throw new PgError("0A000", `client_encoding "${v}" is not supported: ha speaks UTF8`);
      }
      v = "UTF8";
    }
    if (key === "timezone" && /^(utc|gmt|z|etc\/utc|00:00|\+00|0)$/i.test(v)) v = "UTC";
    if (key === STATEMENT_TIMEOUT) v = formatTimeout(parseTimeout(v));
    this.values.set(key, v);
    return (REPORTED as readonly string[]).includes(canon) ? [canon, v] : null;
  }

  /** Resets every setting to its default; returns the ParameterStatus messages to send. */
  resetAll(): [string, string][] {
    const out: [string, string][] = [];
    for (const key of [...this.values.keys()]) {
      const canon = this.nameOf(key);
      if (READ_ONLY.has(canon)) continue;
      const r = this.set(canon, null);
      if (r) out.push(r);
    }
    return out;
  }

  /** All settings, sorted by name (for `SHOW ALL`). */
  all(): [string, string][] {
    return [...this.values.entries()].map(([k, v]) => [this.nameOf(k), v] as [string, string])
      .sort((a, b) => a[0].localeCompare(b[0]));
  }
}
