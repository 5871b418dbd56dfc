/**
 * The options of `openDatabase()` and their translation into the CLI's flags: the library parses
 * them with the command line's own parser, so every default, check and error message is the
 * CLI's (one source of truth, `src/config`).
 *
 * @example
 * ```ts
 * import { configOf } from "./options.ts";
 * const { config } = await configOf({ path: ":memory:", name: "app" });
 * config.memory; // true
 * ```
 * @module
 */
import { tmpdir } from "node:os";
import { type Config, type IdScheme, parseConfig, type RowIdentify } from "../config/mod.ts";
import { HaError } from "../errors/mod.ts";
import type { LogLevel } from "../log/mod.ts";

/**
 * An embedded nats-server started (as a child process) and stopped with the database: other
 * nodes connect to it with `--replication-url nats://host:port`.
 *
 * @example
 * ```ts
 * const nats: EmbeddedNatsOptions = { port: 4222, storeDir: "/var/lib/app/nats" };
 * ```
 */
export interface EmbeddedNatsOptions {
  /** Client port (`--nats-port`). */
  port: number;
  /** Interface (`--nats-addr`); default `127.0.0.1`. */
  host?: string;
  /** JetStream store directory (`--nats-store-dir`); default `<tmp>/nats/<name>`. */
  storeDir?: string;
  /** Credentials clients must present (`--nats-user`, `--nats-pass`), set together. */
  user?: string;
  /** See {@link EmbeddedNatsOptions.user}. */
  pass?: string;
  /** A complete nats-server config file (`--nats-config`) instead of the options above. */
  configFile?: string;
  /** The nats-server binary (`--nats-server-bin`); default `nats-server` on `PATH`. */
  serverBin?: string;
}

/**
 * The HTTP API, served only when asked for.
 *
 * @example
 * ```ts
 * const http: HttpOptions = { port: 8080 }; // curl -d '{"sql": "SELECT 1"}' localhost:8080
 * ```
 */
export interface HttpOptions {
  /** TCP port (`--port`). */
  port: number;
  /** Interface (`--http-addr`); default `127.0.0.1`. */
  hostname?: string;
  /** Bearer token required by every request (`--token`). */
  token?: string;
}

/**
 * The PostgreSQL wire server, served only when asked for.
 *
 * @example
 * ```ts
 * const pg: PgOptions = { port: 5432, user: "app", password: "secret" }; // psql -h localhost -U app
 * ```
 */
export interface PgOptions {
  /** TCP port (`--pg-port`). */
  port: number;
  /** Interface (`--pg-addr`); default `127.0.0.1`. */
  hostname?: string;
  /** User name (`--pg-user`); default `ha`. */
  user?: string;
  /** Password (`--pg-pass`); default `ha`. */
  password?: string;
}

/**
 * What {@link openDatabase} runs. Everything not given takes the `ha` command's default; the
 * options without a CLI counterpart are `path` (one database), `http`/`pg` (off unless given)
 * and `logLevel` (default `warn`: a library stays quiet).
 *
 * @example
 * ```ts
 * const options: OpenOptions = {
 *   path: "data/app.db",
 *   name: "app-1",
 *   replicationUrl: ["nats://10.0.0.5:4222", "nats://10.0.0.6:4222"],
 *   asyncReplication: true,
 *   flags: ["--replication-timeout", "5s"],
 * };
 * ```
 */
export interface OpenOptions {
  /**
   * The database: a file path (`app.db`), a `file:` URI with ha's DSN parameters, or
   * `":memory:"` for a database that lives only in this process (and in the cluster).
   */
  path: string;
  /**
   * The database's id in the cluster when `path` is `":memory:"` (default `ha.db`). Nodes
   * replicate the databases with the same id, a file's being its base name (`app.db`).
   */
  database?: string;
  /** The node's name (`-n`), unique in the cluster; default: the host name. */
  name?: string;
  /**
   * NATS server(s) to replicate through (`--replication-url`), e.g. `nats://10.0.0.5:4222` or
   * `nats://user:pass@host:4222`. Without it and without {@link OpenOptions.nats}, nothing is
   * replicated.
   */
  replicationUrl?: string | string[];
  /** Run an embedded nats-server (ignored for the connection when `replicationUrl` is set). */
  nats?: EmbeddedNatsOptions;
  /**
   * Acknowledge writes once committed locally (with a durable outbox) instead of once stored by
   * JetStream (`--async-replication`); `{ storeDir }` also sets the outbox directory.
   */
  asyncReplication?: boolean | { storeDir: string };
  /** Path of an interceptor module (`-i`), see `interceptors/types.ts`. */
  interceptor?: string;
  /** How replicated rows are identified (`--row-identify`): `pk` (default), `rowid`, `full`. */
  rowIdentify?: RowIdentify;
  /** Ids of rows inserted without one (`--id-scheme`): `cluster` (default), `js-safe`, `sqlite`. */
  idScheme?: IdScheme;
  /**
   * A read-only follower (`--read-only`): applies the cluster's changes, refuses writes (SQLSTATE
   * 25006), publishes nothing.
   */
  readOnly?: boolean;
  /** Shared secret signing changesets (`--cluster-key`), the same on every node. */
  clusterKey?: string;
  /** Serve the HTTP API of `ha` too. */
  http?: HttpOptions;
  /** Serve the PostgreSQL wire protocol too. */
  pg?: PgOptions;
  /** Log level of the JSON lines written to stderr; default `warn`. */
  logLevel?: LogLevel;
  /**
   * Any other `ha` flags, as on the command line, e.g.
   * `["--replication-timeout", "5s", "--snapshot-interval", "1h"]`. Environment variables
   * (`HA_*`) are not read: the options are the whole configuration.
   */
  flags?: string[];
  /**
   * INTEGER values as `bigint` always (as the interceptor API hands them), instead of `number`
   * when they fit in 53 bits and `bigint` beyond. Default false.
   */
  bigints?: boolean;
}

/**
 * The node configuration of `options`, and a private directory removed at close (or null).
 *
 * @example
 * ```ts
 * const { config, tempDir }: LibraryConfig = await configOf({ path: "app.db" });
 * ```
 */
export interface LibraryConfig {
  config: Config;
  /** Holds the never-loaded file path of a `":memory:"` database. */
  tempDir: string | null;
}

/**
 * Builds and validates the configuration, as the CLI would for the equivalent flags.
 *
 * @example
 * ```ts
 * const { config } = await configOf({ path: "app.db", readOnly: true });
 * config.readOnly; // true
 * ```
 */
export async function configOf(options: OpenOptions): Promise<LibraryConfig> {
  if (typeof options?.path !== "string" || options.path.trim() === "") {
    throw new HaError(
      "config",
      'openDatabase: "path" must be a file path, file: URI or ":memory:"',
    );
  }
  const memory = options.path === ":memory:";
  if (options.database !== undefined && !memory) {
    throw new HaError("config", 'openDatabase: "database" only applies to path ":memory:"');
  }
  const args: string[] = [...(options.flags ?? [])];
  const flag = (name: string, value: string | number | undefined) => {
    if (value !== undefined) args.push(`--${name}=${value}`);
  };
  flag("name", options.name);
  flag("log-level", options.logLevel ?? "warn");
  const urls = options.replicationUrl;
  flag("replication-url", Array.isArray(urls) ? urls.join(",") : urls);
  const nats = options.nats;
  flag("nats-port", nats ? nats.port : 0);
  flag("nats-addr", nats?.host);
  flag("nats-store-dir", nats?.storeDir);
  flag("nats-user", nats?.user);
  flag("nats-pass", nats?.pass);
  flag("nats-config", nats?.configFile);
  flag("nats-server-bin", nats?.serverBin);
  const async = options.asyncReplication;
  if (async) args.push("--async-replication");
  if (typeof async === "object") flag("async-replication-store-dir", async.storeDir);
  flag("interceptor", options.interceptor);
  flag("row-identify", options.rowIdentify);
  flag("id-scheme", options.idScheme);
  if (options.readOnly) args.push("--read-only");
  flag("cluster-key", options.clusterKey);
  // Without `http` a placeholder the listener checks accept (no other port may equal it).
  const taken = [options.pg?.port, nats?.port];
  flag("port", options.http?.port ?? [8080, 8081, 8082].find((p) => !taken.includes(p)));
  flag("http-addr", options.http?.hostname);
  flag("token", options.http?.token);
  flag("pg-port", options.pg ? options.pg.port : 0);
  flag("pg-addr", options.pg?.hostname);
  flag("pg-user", options.pg?.user);
  flag("pg-pass", options.pg?.password);
  let tempDir: string | null = null;
  let dsn = options.path;
  if (memory) {
    // `-m` loads an existing file of the DSN's name: point it where no file can be.
    tempDir = await Deno.makeTempDir({ prefix: "ha-memory-" });
    dsn = `${tempDir}/${options.database ?? "ha.db"}`;
    args.push("--memory");
  }
  args.push("--", dsn);
  try {
    const outcome = parseConfig(args, {}, {
      readTextFile: (path) => Deno.readTextFileSync(path),
      hostname: () => Deno.hostname(),
      tmpDir: () => tmpdir(),
    });
    if (outcome.kind !== "run") {
      throw new HaError("config", "openDatabase: --help and --version are not options");
    }
    // No HTTP API unless asked for (the CLI always serves one).
    const config = options.http ? outcome.config : { ...outcome.config, port: 0 };
    return { config, tempDir };
  } catch (e) {
    if (tempDir) await Deno.remove(tempDir, { recursive: true }).catch(() => {});
    throw e;
  }
}
