/**
 * The one schema of every flag: long and short name, aliases, `HA_*` environment variable,
 * config-file key, default, value parser and help text. Parsing ({@link parseConfig}) and
 * help ({@link helpText}) are both driven by {@link FLAGS}; nothing else lists flags.
 *
 * @example
 * ```ts
 * import { FLAGS } from "./schema.ts";
 * const port = FLAGS.find((f) => f.long === "port");
 * port?.env; // "HA_PORT"
 * ```
 * @module
 */

import { LOG_LEVELS, type LogLevel } from "../log/mod.ts";
import { parseIdScheme, parseReplicationPolicy, parseRowIdentify } from "./policy.ts";
import type { Config, ConfigField } from "./types.ts";
import {
  MAX_TIMER_MS,
  parseBoolean,
  parseDuration,
  parseInteger,
  parseList,
  parsePort,
  parseSize,
  ValueError,
} from "./values.ts";

/** Everything a flag can set: the {@link Config} fields plus `help` and `version`. */
export interface Settings extends Omit<Config, "dsns"> {
  /** `-h/--help`: print help and exit. */
  readonly help: boolean;
  /** `--version`: print the version and exit. */
  readonly version: boolean;
}

/** A field of {@link Settings} set by a flag. */
export type FlagField = ConfigField | "help" | "version";

/**
 * What a default may depend on: the host and the (already resolved) node name.
 *
 * @example
 * ```ts
 * import type { DefaultContext } from "./schema.ts";
 * const ctx: DefaultContext = { hostname: () => "h", tmpDir: () => "/tmp", name: () => "n1" };
 * ```
 */
export interface DefaultContext {
  /** The machine's hostname. */
  hostname(): string;
  /** The temporary directory (never empty, no trailing separator). */
  tmpDir(): string;
  /** The resolved `--name`. */
  name(): string;
}

/**
 * One flag. `metavar === null` marks a boolean switch (`--flag`, `--flag=false`).
 *
 * @example
 * ```ts
 * import { FLAGS } from "./schema.ts";
 * for (const f of FLAGS) console.info(`--${f.long}`, f.env ?? "", f.defaultText);
 * ```
 */
export interface FlagSpec<K extends FlagField = FlagField> {
  /** The field of {@link Settings} this flag sets. */
  readonly field: K;
  /** Long name without dashes (`nats-port`). */
  readonly long: string;
  /** Other accepted long names (also config-file keys), e.g. the README's misspelling. */
  readonly aliases: readonly string[];
  /** One-letter short name without dash, or null. */
  readonly short: string | null;
  /** Environment variable (`HA_` + upper(long), `-` → `_`), or null when none. */
  readonly env: string | null;
  /** Whether the flag may be set in a config file. */
  readonly inFile: boolean;
  /** Placeholder of the value in help (`PORT`), or null for a boolean switch. */
  readonly metavar: string | null;
  /** Whether repeated occurrences in one source add up (comma lists). */
  readonly repeatable: boolean;
  /** One-line description. */
  readonly help: string;
  /** The default as shown in help. */
  readonly defaultText: string;
  /** Computes the default. */
  readonly default: (ctx: DefaultContext) => Settings[K];
  /** Parses a raw value; throws {@link ValueError}. */
  readonly parse: (raw: string) => Settings[K];
}

/** Declaration form of {@link FlagSpec}: derived parts are optional. */
interface FlagDecl<K extends FlagField> {
  field: K;
  long: string;
  aliases?: readonly string[];
  short?: string;
  /** false = no environment variable. */
  env?: false;
  inFile?: boolean;
  metavar: string | null;
  repeatable?: boolean;
  help: string;
  defaultText: string;
  default: (ctx: DefaultContext) => NoInfer<Settings[K]>;
  parse: (raw: string) => NoInfer<Settings[K]>;
}

/**
 * The environment variable of a long flag name: `HA_` + upper(long), `-` → `_`.
 *
 * @example
 * ```ts
 * import { envName } from "./schema.ts";
 * envName("nats-store-dir"); // "HA_NATS_STORE_DIR"
 * ```
 */
export function envName(long: string): string {
  return "HA_" + long.toUpperCase().replaceAll("-", "_");
}

function flag<K extends FlagField>(d: FlagDecl<K>): FlagSpec<K> {
  return {
    field: d.field,
    long: d.long,
    aliases: d.aliases ?? [],
    short: d.short ?? null,
    env: d.env === false ? null : envName(d.long),
    inFile: d.inFile ?? true,
    metavar: d.metavar,
    repeatable: d.repeatable ?? false,
    help: d.help,
    defaultText: d.defaultText,
    default: d.default,
    parse: d.parse,
  };
}

type BoolField = { [K in FlagField]: Settings[K] extends boolean ? K : never }[FlagField];

function boolFlag<K extends BoolField>(
  field: K,
  long: string,
  help: string,
  extra: Partial<FlagDecl<K>> = {},
): FlagSpec<K> {
  return flag<K>({
    field,
    long,
    metavar: null,
    help,
    defaultText: "false",
    default: () => false as Settings[K],
    parse: (raw) => parseBoolean(raw) as Settings[K],
    ...extra,
  });
}

/** A string that must not be empty. */
function nonEmpty(expected: string): (raw: string) => string {
  return (raw) => {
    const t = raw.trim();
    if (t === "") throw new ValueError(expected);
    return t;
  };
}

/** An optional string: empty means not set. */
function optional(raw: string): string | null {
  return raw === "" ? null : raw;
}

/** An optional path: trimmed, empty means not set. */
function optionalPath(raw: string): string | null {
  const t = raw.trim();
  return t === "" ? null : t;
}

function parseLogLevel(raw: string): LogLevel {
  const t = raw.trim().toLowerCase();
  const level = t === "warning" ? "warn" : t;
  const found = LOG_LEVELS.find((l) => l === level);
  if (!found) throw new ValueError(`one of ${LOG_LEVELS.join(", ")}`);
  return found;
}

const STREAM_NAME = /^[A-Za-z0-9_-]+$/;

/**
 * A JetStream stream name usable also in the object store bucket `<stream>_SNAPSHOTS`:
 * letters, digits, `_` and `-` (so no spaces, `.`, `*`, `>` or path separators).
 */
function parseStreamName(raw: string): string {
  const t = raw.trim();
  if (!STREAM_NAME.test(t) || t.length > 200) {
    throw new ValueError(
      "a NATS stream name of letters, digits, _ and - (no spaces, '.', '*', '>', '/' or '\\')",
    );
  }
  return t;
}

const URL_SCHEMES = new Set(["nats:", "tls:"]);

/**
 * Comma-separated NATS server URLs (`nats://host:port`, `tls://host:port`, credentials
 * allowed); a URL without scheme (`host:4222`) is read as `nats://`.
 */
function parseNatsUrls(raw: string): string[] {
  const expected = "comma-separated NATS URLs like nats://host:4222 or tls://user:pass@host:4222";
  const items = parseList(raw);
  if (items.length === 0) return [];
  return items.map((item) => {
    const text = item.includes("://") ? item : `nats://${item}`;
    let url: URL;
    try {
      url = new URL(text);
    } catch {
      throw new ValueError(expected, item);
    }
    const pathOk = url.pathname === "" || url.pathname === "/";
    if (
      !URL_SCHEMES.has(url.protocol) || url.hostname === "" || !pathOk || url.search ||
      url.hash
    ) {
      throw new ValueError(expected, item);
    }
    return text;
  });
}

function parseNodeName(raw: string): string {
  const t = raw.trim();
  // deno-lint-ignore no-control-regex
  if (t === "" || /[\x00-\x1f\x7f]/.test(t)) {
    throw new ValueError("a non-empty node name without control characters");
  }
  return t;
}

/**
 * An interface to listen on: an IP address or a host name, without port (ports have their
 * own flags).
 */
function parseListenAddress(raw: string): string {
  const t = raw.trim().replace(/^\[(.*)\]$/, "$1");
  const expected = "an IP address or host name without port, e.g. 127.0.0.1, 0.0.0.0 or ::";
  if (t === "" || /[\s/]/.test(t) || /^[^:]*:\d*$/.test(t)) throw new ValueError(expected);
  return t;
}

/** A file-name-safe form of a node name for default directories. */
export function pathSegment(name: string): string {
  const s = name.replace(/[^A-Za-z0-9._-]/g, "_");
  return /^\.*$/.test(s) ? `_${s}` : s;
}

const LIMIT_TIMER = { maxMs: MAX_TIMER_MS };

/**
 * Every flag, in help order. `name` comes first: other defaults depend on it.
 *
 * @example
 * ```ts
 * import { FLAGS } from "./schema.ts";
 * FLAGS.map((f) => f.long).includes("replication-policy"); // true
 * ```
 */
export const FLAGS: readonly FlagSpec[] = [
  flag({
    field: "name",
    long: "name",
    short: "n",
    metavar: "NAME",
    help: "Node name, unique in the cluster",
    defaultText: "$HOSTNAME",
    default: (ctx) => ctx.hostname(),
    parse: parseNodeName,
  }),
  flag({
    field: "port",
    long: "port",
    short: "p",
    metavar: "PORT",
    help: "HTTP API TCP port",
    defaultText: "8080",
    default: () => 8080,
    parse: (raw) => parsePort(raw, 1),
  }),
  flag({
    field: "httpAddr",
    long: "http-addr",
    metavar: "ADDR",
    help: "Interface the HTTP API listens on (0.0.0.0 = all; needs --token or --insecure)",
    defaultText: "127.0.0.1",
    default: () => "127.0.0.1",
    parse: parseListenAddress,
  }),
  boolFlag("memory", "memory", "Store databases in memory (a DSN file is loaded into memory)", {
    short: "m",
  }),
  flag({
    field: "interceptor",
    long: "interceptor",
    short: "i",
    metavar: "FILE",
    help: "TypeScript/JavaScript module customizing replication (conflict resolution)",
    defaultText: "",
    default: () => null,
    parse: optionalPath,
  }),
  flag({
    field: "interceptorTimeoutMs",
    long: "interceptor-timeout",
    metavar: "DURATION",
    help: "Time limit of one interceptor hook call",
    defaultText: "5s",
    default: () => 5_000,
    parse: (raw) => parseDuration(raw, { allowZero: false, ...LIMIT_TIMER }),
  }),
  flag({
    field: "interceptorMemoryBytes",
    long: "interceptor-memory",
    metavar: "SIZE",
    help: "Heap limit of the interceptor sandbox process (as much again outside the heap)",
    defaultText: "256MiB",
    default: () => 256 * 2 ** 20,
    parse: (raw) => {
      const bytes = parseSize(raw);
      if (bytes < 16 * 2 ** 20) throw new ValueError("a size of at least 16MiB");
      return bytes;
    },
  }),
  flag({
    field: "logLevel",
    long: "log-level",
    metavar: "LEVEL",
    help: `Log level (${LOG_LEVELS.join(", ")})`,
    defaultText: "info",
    default: () => "info",
    parse: parseLogLevel,
  }),
  boolFlag(
    "fromLatestSnapshot",
    "from-latest-snapshot",
    "Restore databases from the latest snapshot in the NATS object store at start",
    { aliases: ["from-latest-snapsot"] },
  ),
  flag({
    field: "snapshotIntervalMs",
    long: "snapshot-interval",
    metavar: "DURATION",
    help: "Interval between snapshots to the NATS object store (0 disables)",
    defaultText: "0s",
    default: () => 0,
    parse: (raw) => parseDuration(raw, { zeroMeans: "disables", ...LIMIT_TIMER }),
  }),
  boolFlag("disableDdlSync", "disable-ddl-sync", "Do not publish DDL statements"),
  boolFlag("natsLogs", "nats-logs", "Log the embedded NATS server's output"),
  flag({
    field: "natsPort",
    long: "nats-port",
    metavar: "PORT",
    help: "Embedded NATS server port (0 disables the embedded server)",
    defaultText: "4222",
    default: () => 4222,
    parse: (raw) => parsePort(raw, 0),
  }),
  flag({
    field: "natsAddr",
    long: "nats-addr",
    metavar: "ADDR",
    help: "Interface the embedded NATS server listens on (beyond loopback: needs --nats-user)",
    defaultText: "127.0.0.1",
    default: () => "127.0.0.1",
    parse: parseListenAddress,
  }),
  flag({
    field: "natsStoreDir",
    long: "nats-store-dir",
    metavar: "DIR",
    help: "Embedded NATS server JetStream store directory",
    defaultText: "<tmp>/nats/<name>",
    default: (ctx) => `${ctx.tmpDir()}/nats/${pathSegment(ctx.name())}`,
    parse: nonEmpty("a directory path"),
  }),
  flag({
    field: "natsUser",
    long: "nats-user",
    metavar: "USER",
    help: "Embedded NATS server user (with --nats-pass)",
    defaultText: "",
    default: () => null,
    parse: optional,
  }),
  flag({
    field: "natsPass",
    long: "nats-pass",
    metavar: "PASS",
    help: "Embedded NATS server password (with --nats-user)",
    defaultText: "",
    default: () => null,
    parse: optional,
  }),
  flag({
    field: "natsConfig",
    long: "nats-config",
    metavar: "FILE",
    help: "nats-server config file (overrides the other nats options)",
    defaultText: "",
    default: () => null,
    parse: optionalPath,
  }),
  flag({
    field: "natsServerBin",
    long: "nats-server-bin",
    metavar: "FILE",
    help: "nats-server binary to run (default: nats-server on PATH)",
    defaultText: "",
    default: () => null,
    parse: optionalPath,
  }),
  flag({
    field: "pgPort",
    long: "pg-port",
    metavar: "PORT",
    help: "PostgreSQL wire protocol port (0 disables)",
    defaultText: "5432",
    default: () => 5432,
    parse: (raw) => parsePort(raw, 0),
  }),
  flag({
    field: "pgAddr",
    long: "pg-addr",
    metavar: "ADDR",
    help: "Interface the PostgreSQL wire server listens on (beyond loopback: needs --pg-pass)",
    defaultText: "127.0.0.1",
    default: () => "127.0.0.1",
    parse: parseListenAddress,
  }),
  flag({
    field: "pgUser",
    long: "pg-user",
    metavar: "USER",
    help: "PostgreSQL auth user",
    defaultText: "ha",
    default: () => "ha",
    parse: nonEmpty("a non-empty user name"),
  }),
  flag({
    field: "pgPass",
    long: "pg-pass",
    metavar: "PASS",
    help: "PostgreSQL auth password",
    defaultText: "ha",
    default: () => "ha",
    parse: (raw) => raw,
  }),
  flag({
    field: "pgCert",
    long: "pg-cert",
    metavar: "FILE",
    help: "PostgreSQL TLS certificate file (with --pg-key)",
    defaultText: "",
    default: () => null,
    parse: optionalPath,
  }),
  flag({
    field: "pgKey",
    long: "pg-key",
    metavar: "FILE",
    help: "PostgreSQL TLS key file (with --pg-cert)",
    defaultText: "",
    default: () => null,
    parse: optionalPath,
  }),
  boolFlag(
    "pgRequireTls",
    "pg-require-tls",
    "Refuse PostgreSQL connections without TLS (needs --pg-cert and --pg-key)",
  ),
  flag({
    field: "pgAuthTimeoutMs",
    long: "pg-auth-timeout",
    metavar: "DURATION",
    help: "Time limit of a PostgreSQL TLS handshake, start-up and authentication",
    defaultText: "60s",
    default: () => 60_000,
    parse: (raw) => parseDuration(raw, { allowZero: false, ...LIMIT_TIMER }),
  }),
  flag({
    field: "concurrentQueries",
    long: "concurrent-queries",
    metavar: "N",
    help: "Concurrent queries per database (connection pool size)",
    defaultText: "50",
    default: () => 50,
    parse: (raw) => parseInteger(raw, 1, 100_000, "an integer 1..100000"),
  }),
  flag({
    field: "extensions",
    long: "extensions",
    metavar: "LIST",
    repeatable: true,
    help: "Comma-separated SQLite extension paths to load",
    defaultText: "",
    default: () => [],
    parse: parseList,
  }),
  boolFlag(
    "asyncReplication",
    "async-replication",
    "Publish replication messages asynchronously through a durable outbox",
  ),
  flag({
    field: "asyncReplicationStoreDir",
    long: "async-replication-store-dir",
    metavar: "DIR",
    help: "Outbox directory of asynchronous replication",
    defaultText: "<tmp>/ha-outbox/<name>",
    default: (ctx) => `${ctx.tmpDir()}/ha-outbox/${pathSegment(ctx.name())}`,
    parse: nonEmpty("a directory path"),
  }),
  flag({
    field: "replicas",
    long: "replicas",
    metavar: "N",
    help: "Replicas of the stream and object store in clustered JetStream",
    defaultText: "1",
    default: () => 1,
    parse: (raw) => parseInteger(raw, 1, 5, "an integer 1..5"),
  }),
  flag({
    field: "replicationTimeoutMs",
    long: "replication-timeout",
    metavar: "DURATION",
    help: "Replication publisher timeout",
    defaultText: "15s",
    default: () => 15_000,
    parse: (raw) => parseDuration(raw, { allowZero: false, ...LIMIT_TIMER }),
  }),
  flag({
    field: "replicationStream",
    long: "replication-stream",
    metavar: "NAME",
    help: "Replication stream name",
    defaultText: "ha_replication",
    default: () => "ha_replication",
    parse: parseStreamName,
  }),
  flag({
    field: "replicationMaxAgeMs",
    long: "replication-max-age",
    metavar: "DURATION",
    help: "Replication stream max age (0 = unlimited)",
    defaultText: "24h",
    default: () => 86_400_000,
    parse: (raw) => parseDuration(raw, { zeroMeans: "= unlimited" }),
  }),
  flag({
    field: "replicationUrl",
    long: "replication-url",
    metavar: "URLS",
    repeatable: true,
    help: "Comma-separated external NATS URLs (default: the embedded server)",
    defaultText: "",
    default: () => [],
    parse: parseNatsUrls,
  }),
  flag({
    field: "replicationPolicy",
    long: "replication-policy",
    metavar: "POLICY",
    help: "Delivery policy of a new subscriber: all, last, new, by_start_sequence=N, " +
      "by_start_time=TIME",
    defaultText: "all",
    default: () => ({ kind: "all" }),
    parse: parseReplicationPolicy,
  }),
  flag({
    field: "rowIdentify",
    long: "row-identify",
    metavar: "STRATEGY",
    help: "How replicated rows are identified: pk (primary key, else rowid), rowid or full",
    defaultText: "pk",
    default: () => "pk",
    parse: parseRowIdentify,
  }),
  flag({
    field: "idScheme",
    long: "id-scheme",
    metavar: "SCHEME",
    help: "Ids of rows inserted without one: cluster (63-bit, unique across nodes), js-safe " +
      "(53-bit) or sqlite (SQLite's own, for a single writer)",
    defaultText: "cluster",
    default: () => "cluster",
    parse: parseIdScheme,
  }),
  flag({
    field: "token",
    long: "token",
    metavar: "TOKEN",
    help: "HTTP auth token (Authorization: Bearer TOKEN); empty = no auth",
    defaultText: "",
    default: () => null,
    parse: optional,
  }),
  flag({
    field: "maxBodyBytes",
    long: "max-body-size",
    metavar: "SIZE",
    help: "Maximum HTTP request body size",
    defaultText: "32MiB",
    default: () => 32 * 2 ** 20,
    parse: parseSize,
  }),
  flag({
    field: "maxConnections",
    long: "max-connections",
    metavar: "N",
    help: "Client connections at once, for HTTP and for PostgreSQL each",
    defaultText: "500",
    default: () => 500,
    parse: (raw) => parseInteger(raw, 1, 100_000, "an integer 1..100000"),
  }),
  flag({
    field: "httpHeaderTimeoutMs",
    long: "http-header-timeout",
    metavar: "DURATION",
    help: "Time limit to receive an HTTP request's headers",
    defaultText: "10s",
    default: () => 10_000,
    parse: (raw) => parseDuration(raw, { allowZero: false, ...LIMIT_TIMER }),
  }),
  flag({
    field: "httpBodyTimeoutMs",
    long: "http-body-timeout",
    metavar: "DURATION",
    help: "Time limit to receive an HTTP request's body",
    defaultText: "60s",
    default: () => 60_000,
    parse: (raw) => parseDuration(raw, { allowZero: false, ...LIMIT_TIMER }),
  }),
  flag({
    field: "httpIdleTimeoutMs",
    long: "http-idle-timeout",
    metavar: "DURATION",
    help: "An HTTP keep-alive connection without a request is closed after this time",
    defaultText: "60s",
    default: () => 60_000,
    parse: (raw) => parseDuration(raw, { allowZero: false, ...LIMIT_TIMER }),
  }),
  boolFlag(
    "insecure",
    "insecure",
    "Allow listening beyond loopback without credentials (HTTP, PostgreSQL, NATS)",
  ),
  flag({
    field: "attachDir",
    long: "attach-dir",
    metavar: "DIR",
    help: "Directory where client ATTACH and VACUUM INTO may create files (default: denied)",
    defaultText: "",
    default: () => null,
    parse: optionalPath,
  }),
  flag({
    field: "statementTimeoutMs",
    long: "statement-timeout",
    metavar: "DURATION",
    help: "A client statement running longer is stopped (HTTP 504, PG 57014); PG sessions " +
      "may lower it with SET statement_timeout",
    defaultText: "30s",
    default: () => 30_000,
    // The extension takes an int32 of ms: 24 days fit.
    parse: (raw) => parseDuration(raw, { zeroMeans: "disables", ...LIMIT_TIMER }),
  }),
  flag({
    field: "clusterKey",
    long: "cluster-key",
    metavar: "KEY",
    help: "Shared secret signing changesets (HMAC-SHA256); unsigned ones are refused",
    defaultText: "",
    default: () => null,
    parse: optional,
  }),
  flag({
    field: "maxClockSkewMs",
    long: "max-clock-skew",
    metavar: "DURATION",
    help: "How far ahead of the local clock a replicated change's clock may be",
    defaultText: "1m",
    default: () => 60_000,
    parse: (raw) => parseDuration(raw, { allowZero: false, ...LIMIT_TIMER }),
  }),
  flag({
    field: "natsTlsCert",
    long: "nats-tls-cert",
    metavar: "FILE",
    help: "TLS certificate of the embedded NATS server (with --nats-tls-key): TLS required",
    defaultText: "",
    default: () => null,
    parse: optionalPath,
  }),
  flag({
    field: "natsTlsKey",
    long: "nats-tls-key",
    metavar: "FILE",
    help: "TLS key of the embedded NATS server (with --nats-tls-cert)",
    defaultText: "",
    default: () => null,
    parse: optionalPath,
  }),
  flag({
    field: "natsTlsCa",
    long: "nats-tls-ca",
    metavar: "FILE",
    help: "CA certificate(s) ha verifies its NATS server with (default: system CAs, or " +
      "--nats-tls-cert itself)",
    defaultText: "",
    default: () => null,
    parse: optionalPath,
  }),
  flag({
    field: "configFile",
    long: "config",
    short: "c",
    metavar: "FILE",
    inFile: false,
    help: "Config file: one 'flag value' per line, # comments",
    defaultText: "",
    default: () => null,
    parse: optionalPath,
  }),
  boolFlag(
    "readOnly",
    "read-only",
    "Read-only follower: apply the cluster's changes, serve reads, refuse client writes",
  ),
  boolFlag("help", "help", "Print this help and exit", { short: "h", env: false, inFile: false }),
  boolFlag("version", "version", "Print version information and exit"),
];
