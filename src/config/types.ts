/**
 * The typed result of configuration parsing: {@link Config} and its parts.
 *
 * @example
 * ```ts
 * import type { Config } from "./mod.ts";
 * function httpPort(config: Config): number {
 *   return config.port;
 * }
 * ```
 * @module
 */

import type { LogLevel } from "../log/mod.ts";

/**
 * Where a new durable replication consumer starts reading the stream
 * (`--replication-policy`). Applies only when the consumer is first created.
 *
 * @example
 * ```ts
 * import type { ReplicationPolicy } from "./mod.ts";
 * const p: ReplicationPolicy = { kind: "by_start_sequence", seq: 42 };
 * ```
 */
export type ReplicationPolicy =
  | { readonly kind: "all" }
  | { readonly kind: "last" }
  | { readonly kind: "new" }
  | { readonly kind: "by_start_sequence"; readonly seq: number }
  | { readonly kind: "by_start_time"; readonly time: Date };

/**
 * How replicated rows are identified on other nodes (`--row-identify`):
 * `pk` = declared PRIMARY KEY, else rowid; `rowid`; `full` = every column.
 *
 * @example
 * ```ts
 * import type { RowIdentify } from "./mod.ts";
 * const strategy: RowIdentify = "pk";
 * ```
 */
export type RowIdentify = "pk" | "rowid" | "full";

/**
 * How the database chooses ids of rows inserted without one (`--id-scheme`): `cluster` (63-bit
 * ids unique across nodes), `js-safe` (the same in 53 bits) or `sqlite` (SQLite's own choice).
 *
 * @example
 * ```ts
 * import type { IdScheme } from "./mod.ts";
 * const scheme: IdScheme = "js-safe";
 * ```
 */
export type IdScheme = "cluster" | "js-safe" | "sqlite";

/**
 * The complete, validated configuration of one node. Durations are in
 * milliseconds, sizes in bytes; `null` means "not set".
 *
 * @example
 * ```ts
 * import { parseConfig } from "./mod.ts";
 * const io = { readTextFile: () => "", hostname: () => "box", tmpDir: () => "/tmp" };
 * const outcome = parseConfig(["-n", "node1"], {}, io);
 * if (outcome.kind === "run") console.info(outcome.config.name); // "node1"
 * ```
 */
export interface Config {
  /** `-n/--name`: node name (self-skip, durable consumer name, NATS server name). */
  readonly name: string;
  /** `-p/--port`: HTTP API port, 1..65535; 0 = no HTTP API (only the library sets 0). */
  readonly port: number;
  /** `--http-addr`: interface of the HTTP API. */
  readonly httpAddr: string;
  /** `-m/--memory`: keep databases in memory (a DSN file is loaded into memory). */
  readonly memory: boolean;
  /** `-i/--interceptor`: path of the interceptor module, or null. */
  readonly interceptor: string | null;
  /** `--interceptor-timeout`: time limit of one interceptor hook call, ms (> 0). */
  readonly interceptorTimeoutMs: number;
  /** `--interceptor-memory`: heap limit of the interceptor sandbox process, bytes. */
  readonly interceptorMemoryBytes: number;
  /** `--log-level`. */
  readonly logLevel: LogLevel;
  /** `--from-latest-snapshot` (alias `--from-latest-snapsot`). */
  readonly fromLatestSnapshot: boolean;
  /** `--snapshot-interval`: ms between snapshots, 0 = off. */
  readonly snapshotIntervalMs: number;
  /** `--disable-ddl-sync`: do not publish DDL. */
  readonly disableDdlSync: boolean;
  /** `--nats-logs`: log the embedded nats-server's output. */
  readonly natsLogs: boolean;
  /** `--nats-port`: embedded nats-server port, 0 = no embedded server. */
  readonly natsPort: number;
  /** `--nats-addr`: interface of the embedded nats-server. */
  readonly natsAddr: string;
  /** `--nats-store-dir`: JetStream store directory (default unique per node name). */
  readonly natsStoreDir: string;
  /** `--nats-user`: embedded server user; set together with {@link natsPass}. */
  readonly natsUser: string | null;
  /** `--nats-pass`: embedded server password; set together with {@link natsUser}. */
  readonly natsPass: string | null;
  /** `--nats-config`: nats-server config file (overrides the other nats options). */
  readonly natsConfig: string | null;
  /** `--nats-server-bin`: path of the nats-server binary; null = `nats-server` on PATH. */
  readonly natsServerBin: string | null;
  /** `--pg-port`: PostgreSQL wire port, 0 = disabled. */
  readonly pgPort: number;
  /** `--pg-addr`: interface of the PostgreSQL wire server. */
  readonly pgAddr: string;
  /** `--pg-user`. */
  readonly pgUser: string;
  /** `--pg-pass`. */
  readonly pgPass: string;
  /** `--pg-cert`: TLS certificate file; set together with {@link pgKey}. */
  readonly pgCert: string | null;
  /** `--pg-key`: TLS key file; set together with {@link pgCert}. */
  readonly pgKey: string | null;
  /** `--pg-require-tls`: refuse PostgreSQL connections without TLS. */
  readonly pgRequireTls: boolean;
  /** `--pg-auth-timeout`: ms for TLS handshake, start-up and authentication (> 0). */
  readonly pgAuthTimeoutMs: number;
  /** `--concurrent-queries`: connection pool size per database, >= 1. */
  readonly concurrentQueries: number;
  /** `--extensions`: SQLite extension paths to load, in order. */
  readonly extensions: readonly string[];
  /** `--async-replication`: publish through the durable outbox. */
  readonly asyncReplication: boolean;
  /** `--async-replication-store-dir`: outbox directory (default unique per node name). */
  readonly asyncReplicationStoreDir: string;
  /** `--replicas`: JetStream replicas of the stream and object store, 1..5. */
  readonly replicas: number;
  /** `--replication-timeout`: synchronous publish timeout, ms (> 0). */
  readonly replicationTimeoutMs: number;
  /** `--replication-stream`: JetStream stream name. */
  readonly replicationStream: string;
  /** `--replication-max-age`: stream max age, ms, 0 = unlimited. */
  readonly replicationMaxAgeMs: number;
  /** `--replication-url`: external NATS server URLs; empty = use the embedded server. */
  readonly replicationUrl: readonly string[];
  /** `--replication-policy`: where a new consumer starts (default `all`). */
  readonly replicationPolicy: ReplicationPolicy;
  /** `--row-identify`. */
  readonly rowIdentify: RowIdentify;
  /** `--id-scheme`. */
  readonly idScheme: IdScheme;
  /** `--token`: HTTP auth token, or null for no auth. */
  readonly token: string | null;
  /** `--max-body-size`: maximum HTTP request body, bytes. */
  readonly maxBodyBytes: number;
  /** `--max-connections`: client connections at once, per surface (HTTP, PostgreSQL). */
  readonly maxConnections: number;
  /** `--http-header-timeout`: ms a new connection has to send its first request's headers. */
  readonly httpHeaderTimeoutMs: number;
  /** `--http-body-timeout`: ms to receive a request's body. */
  readonly httpBodyTimeoutMs: number;
  /** `--http-idle-timeout`: ms a keep-alive connection may wait for its next request. */
  readonly httpIdleTimeoutMs: number;
  /** `--insecure`: allow non-loopback listeners without credentials. */
  readonly insecure: boolean;
  /** `--attach-dir`: the only directory client ATTACH / VACUUM INTO may use; null = denied. */
  readonly attachDir: string | null;
  /** `--statement-timeout`: ms a client statement may run (0 = no limit). */
  readonly statementTimeoutMs: number;
  /** `--cluster-key`: HMAC-SHA256 key signing every changeset; null = unsigned. */
  readonly clusterKey: string | null;
  /** `--max-clock-skew`: how far ahead of the local clock a remote HLC may be, ms. */
  readonly maxClockSkewMs: number;
  /** `--nats-tls-cert`: certificate of the embedded server's client port (with the key). */
  readonly natsTlsCert: string | null;
  /** `--nats-tls-key`: its private key. */
  readonly natsTlsKey: string | null;
  /** `--nats-tls-ca`: CA file ha verifies its NATS server with (default: system CAs). */
  readonly natsTlsCa: string | null;
  /**
   * `--read-only`: a follower that applies the cluster's changes and serves reads, refuses
   * client writes, publishes nothing and takes no snapshots.
   */
  readonly readOnly: boolean;
  /** `--nats-cluster-port`: route port of the embedded server, 0 = not clustered. */
  readonly natsClusterPort: number;
  /** `--nats-routes`: route URLs (`nats://host:port`) of the cluster's members (self allowed). */
  readonly natsRoutes: readonly string[];
  /** `--nats-cluster-name`: NATS cluster name, the same on every member. */
  readonly natsClusterName: string;
  /** Positional arguments: DSNs (paths, globs or `file:` URIs), in order. */
  readonly dsns: readonly string[];
  /** `-c/--config`: the config file that was read, or null. */
  readonly configFile: string | null;
  /**
   * TEST ONLY, never a flag: env `HA_TEST_CLOCK_OFFSET_MS` shifts this node's hybrid logical
   * clock by that many ms (the chaos suite's clock jumps). Absent = the real clock.
   */
  readonly testClockOffsetMs?: number;
}

/** A {@link Config} field that is set by a flag (every field but `dsns` and test-only ones). */
export type ConfigField = Exclude<keyof Config, "dsns" | "testClockOffsetMs">;

/**
 * Where a field's value came from; fields absent from
 * {@link ParseOutcome}'s `sources` took their default.
 *
 * @example
 * ```ts
 * import type { ConfigSource } from "./mod.ts";
 * const src: ConfigSource = "env";
 * ```
 */
export type ConfigSource = "flag" | "env" | "file";

/**
 * The outside world parsing needs, passed in so that {@link parseConfig} stays pure.
 *
 * @example
 * ```ts
 * import type { ConfigIO } from "./mod.ts";
 * const io: ConfigIO = {
 *   readTextFile: (path) => Deno.readTextFileSync(path),
 *   hostname: () => "node1",
 *   tmpDir: () => "/tmp",
 * };
 * ```
 */
export interface ConfigIO {
  /** Reads a config file; may throw (the error is reported as a config error). */
  readTextFile(path: string): string;
  /** The machine's hostname, the default node name; only called when no name is given. */
  hostname(): string;
  /** The temporary directory under which default store directories live. */
  tmpDir(): string;
}

/**
 * What the command line asks for: run a node, or print help or the version.
 *
 * @example
 * ```ts
 * import { loadConfig, type ParseOutcome } from "./mod.ts";
 * const outcome: ParseOutcome = loadConfig(Deno.args);
 * if (outcome.kind !== "run") console.info(outcome.text);
 * ```
 */
export type ParseOutcome =
  | {
    readonly kind: "run";
    readonly config: Config;
    /** Fields set explicitly, and by what; a missing field took its default. */
    readonly sources: Readonly<Partial<Record<ConfigField, ConfigSource>>>;
  }
  | { readonly kind: "help"; readonly text: string }
  | { readonly kind: "version"; readonly text: string };
