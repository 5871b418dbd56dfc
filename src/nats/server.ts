/**
 * The embedded nats-server: configured by ha, started as a child process, supervised (restarted
 * with backoff when it dies) and stopped with ha.
 *
 * @module
 */

import { errors, type NatsConnection, type TlsOptions } from "@nats-io/transport-node";
import { jetstreamManager } from "@nats-io/jetstream";
import { HaError } from "../errors/mod.ts";
import type { Logger } from "../log/mod.ts";
import { findNatsServer } from "./find.ts";
import { parseNatsLogLine } from "./log_lines.ts";
import {
  type ClusterOptions,
  inspectUserConfig,
  normaliseServerName,
  pickClientUrl,
  renderServerConfig,
  serverArgs,
} from "./server_config.ts";
import { rawConnect } from "./transport.ts";
import { describeExit, WatchedProcess, within } from "./watchdog.ts";
import { Backoff } from "../retry/mod.ts";

/** Options of {@link EmbeddedNatsServer}. */
export interface EmbeddedNatsServerOptions {
  /** Path of nats-server. Default: {@link findNatsServer} without an explicit path. */
  bin?: string;
  /** Client port (`--nats-port`); `-1` lets nats-server pick a free one. Ignored with `configFile`. */
  port: number;
  /** Interface to listen on. Default `127.0.0.1` (`--nats-addr`). Ignored with `configFile`. */
  host?: string;
  /**
   * JetStream store directory (`--nats-store-dir`); created if missing. Required without
   * `configFile`; with one, used only when the file does not configure JetStream.
   */
  storeDir?: string;
  /**
   * `--nats-user`/`--nats-pass`: the only user of the generated config (account `app`, JetStream
   * enabled). With `configFile`: the credentials ha uses to reach that server.
   */
  user?: string;
  /** Password of `user`. */
  pass?: string;
  /** With `configFile` only: a token ha uses to reach that server. */
  token?: string;
  /**
   * With a `configFile` that enables TLS, or `tlsCert`: how ha's readiness check connects (CA,
   * client cert). The server is reached at a loopback address, so its certificate must be valid
   * for it.
   */
  tls?: TlsOptions;
  /**
   * `--nats-cluster-port`/`--nats-routes`/`--nats-cluster-name`: the generated config joins a
   * cluster (JetStream answers once a quorum of members has met). Ignored with `configFile`.
   */
  cluster?: ClusterOptions;
  /** `--nats-tls-cert`/`--nats-tls-key`: the generated config requires TLS. */
  tlsCert?: { certFile: string; keyFile: string };
  /**
   * `--nats-config`: the user's own nats-server config (cluster, TLS, accounts...). It replaces the
   * generated one; ha still forces JetStream on and sets `server_name` when the file does not.
   */
  configFile?: string;
  /** Node name; becomes `server_name` after {@link normaliseServerName}. */
  serverName: string;
  /** `--nats-logs`: forward nats-server output to `logger` (`component: "nats-server"`). */
  logs?: boolean;
  /** Where ha's own lines about the server go. */
  logger: Logger;
  /** HTTP monitoring port; 0 or absent = off. Ignored with `configFile`. */
  monitorPort?: number;
  /**
   * `max_payload` in bytes: the largest message, so the largest replicated transaction.
   * Default {@link DEFAULT_MAX_PAYLOAD} (nats-server's own default is 1 MiB). Ignored with
   * `configFile`.
   */
  maxPayload?: number;
  /**
   * How long to wait for JetStream to answer at start and after a restart. Default
   * {@link DEFAULT_READY_TIMEOUT_MS}, {@link DEFAULT_READY_TIMEOUT_CLUSTER_MS} with `configFile`
   * or `cluster` (a cluster needs a quorum of peers before JetStream answers).
   */
  readyTimeoutMs?: number;
  /** Grace between SIGTERM and SIGKILL at stop. Default {@link DEFAULT_STOP_TIMEOUT_MS}. */
  stopTimeoutMs?: number;
  /**
   * First restart delay after a crash, doubling up to `maxRestartDelayMs`. Default
   * {@link DEFAULT_RESTART_DELAY_MS}.
   */
  restartDelayMs?: number;
  /** Upper bound of the restart delay. Default {@link DEFAULT_MAX_RESTART_DELAY_MS}. */
  maxRestartDelayMs?: number;
  /** Called with the new status whenever it changes (for `/readyz`). */
  onStatusChange?: (status: NatsServerStatus) => void;
}

/** Lifecycle states of {@link EmbeddedNatsServer}. */
export type NatsServerState =
  | "idle"
  | "starting"
  | "running"
  | "restarting"
  | "stopping"
  | "stopped";

/** A snapshot of the embedded server's health. */
export interface NatsServerStatus {
  /** Where the lifecycle is. */
  state: NatsServerState;
  /** nats-server runs and JetStream answered. */
  running: boolean;
  /** nats-server's pid while it runs. */
  pid: number | null;
  /** How many times the supervisor restarted it successfully. */
  restarts: number;
  /** The last failure (unexpected exit, failed restart; first line only), or `null`. */
  lastError: string | null;
  /** Client URL ha connects to, e.g. `nats://127.0.0.1:4222`, once known. */
  url: string | null;
}

/** `max_payload` of the generated config: 8 MiB, the most nats-server accepts without warning. */
export const DEFAULT_MAX_PAYLOAD = 8 * 1024 * 1024;

/** The server ran this long before dying: restart backoff starts over. */
const STABLE_MS = 30_000;
/** Default {@link EmbeddedNatsServerOptions.readyTimeoutMs} of a server ha configures itself. */
export const DEFAULT_READY_TIMEOUT_MS = 20_000;
/** Default readiness timeout with `--nats-config` (a cluster needs a quorum of peers first). */
export const DEFAULT_READY_TIMEOUT_CLUSTER_MS = 60_000;
/** Default {@link EmbeddedNatsServerOptions.stopTimeoutMs}. */
export const DEFAULT_STOP_TIMEOUT_MS = 10_000;
/** Default {@link EmbeddedNatsServerOptions.restartDelayMs}. */
export const DEFAULT_RESTART_DELAY_MS = 250;
/** Default {@link EmbeddedNatsServerOptions.maxRestartDelayMs}. */
export const DEFAULT_MAX_RESTART_DELAY_MS = 5_000;

/**
 * Runs nats-server as a supervised child process.
 *
 * @example
 * ```ts
 * const server = new EmbeddedNatsServer({
 *   port: 4222, host: "127.0.0.1", storeDir: "/data/nats", serverName: "node1", logger,
 * });
 * await server.start();              // resolves when JetStream answers
 * const client = await connectNats({ servers: [server.url!], name: "node1", logger });
 * // ...
 * await client.close();
 * await server.stop();
 * ```
 */
export class EmbeddedNatsServer {
  readonly #o: EmbeddedNatsServerOptions;
  readonly #log: Logger;
  readonly #serverLog: Logger;
  readonly #serverName: string;
  #bin: string | null = null;
  #args: string[] = [];
  #runDir: string | null = null;
  #proc: WatchedProcess | null = null;
  #state: NatsServerState = "idle";
  #restarts = 0;
  #lastError: string | null = null;
  #url: string | null = null;
  #readyAt = 0;
  readonly #restartBackoff: Backoff;
  #stopping = false;
  #wake = new AbortController();
  #startPromise: Promise<void> | null = null;
  #stopPromise: Promise<void> | null = null;
  #supervising: Promise<void> | null = null;

  constructor(options: EmbeddedNatsServerOptions) {
    this.#o = options;
    this.#serverName = normaliseServerName(options.serverName);
    this.#log = options.logger.child({ component: "nats" });
    this.#serverLog = options.logger.child({ component: "nats-server" });
    this.#restartBackoff = new Backoff({
      initialMs: options.restartDelayMs ?? DEFAULT_RESTART_DELAY_MS,
      maxMs: options.maxRestartDelayMs ?? DEFAULT_MAX_RESTART_DELAY_MS,
    });
  }

  /** The current status. */
  status(): NatsServerStatus {
    return {
      state: this.#state,
      running: this.#state === "running",
      pid: this.#state === "running" ? this.#proc?.runningPid ?? null : null,
      restarts: this.#restarts,
      lastError: this.#lastError,
      url: this.#url,
    };
  }

  /** Client URL of the running server (`nats://127.0.0.1:<port>`), `null` before start. */
  get url(): string | null {
    return this.#url;
  }

  /** The `server_name` in use (the normalised node name, unless `configFile` sets its own). */
  get serverName(): string {
    return this.#serverName;
  }

  /**
   * Starts nats-server and resolves once it accepts a NATS connection and JetStream answers.
   * Rejects with `HaError("unavailable")` carrying the server's last output lines when it exits or
   * is not ready within `readyTimeoutMs`, with `HaError("config")` for unusable options.
   * Calling it again returns the same promise.
   */
  start(): Promise<void> {
    this.#startPromise ??= this.#start();
    return this.#startPromise;
  }

  /** Stops nats-server (SIGTERM, SIGKILL after the grace) and awaits its exit. Idempotent. */
  stop(): Promise<void> {
    this.#stopPromise ??= this.#stop();
    return this.#stopPromise;
  }

  async #start(): Promise<void> {
    if (this.#stopping) throw new HaError("unavailable", "nats-server: start after stop");
    this.#setState("starting");
    let proc: WatchedProcess | null = null;
    try {
      await this.#prepare();
      if (this.#stopping) throw new HaError("unavailable", "nats-server: stopped while starting");
      proc = this.#launch();
      await this.#waitReady(proc);
      this.#running(proc);
      this.#log.info("nats-server ready", { pid: proc.runningPid, url: this.#url });
    } catch (e) {
      await proc?.terminate(this.#stopGrace());
      await this.#removeRunDir();
      this.#lastError = firstLine(e);
      this.#setState(this.#stopping ? "stopping" : "stopped");
      throw e;
    }
  }

  async #stop(): Promise<void> {
    this.#stopping = true;
    this.#wake.abort();
    if (this.#state === "idle") {
      this.#setState("stopped");
      return;
    }
    this.#setState("stopping");
    const proc = this.#proc;
    if (proc !== null) {
      this.#log.info("stopping nats-server", { pid: proc.runningPid });
      await proc.terminate(this.#stopGrace());
    }
    await this.#startPromise?.catch(() => {});
    await this.#supervising;
    if (this.#proc !== null && this.#proc !== proc) await this.#proc.terminate(this.#stopGrace());
    await this.#removeRunDir();
    this.#setState("stopped");
  }

  /** Resolves the binary, writes the config file, computes the command line. */
  async #prepare(): Promise<void> {
    const o = this.#o;
    this.#bin = o.bin ?? await findNatsServer({ flag: null });
    this.#runDir = await Deno.makeTempDir({ prefix: "ha-nats-" });
    const portsDir = `${this.#runDir}/ports`;
    await Deno.mkdir(portsDir);
    if (o.configFile !== undefined) {
      let text: string;
      try {
        text = await Deno.readTextFile(o.configFile);
      } catch (e) {
        throw new HaError("config", `--nats-config ${o.configFile}: ${(e as Error).message}`);
      }
      if (o.storeDir) await this.#mkStoreDir(o.storeDir);
      this.#args = serverArgs({
        configFile: o.configFile,
        portsDir,
        user: {
          facts: inspectUserConfig(text),
          serverName: this.#serverName,
          storeDir: o.storeDir,
        },
      });
      return;
    }
    if (!o.storeDir) throw new HaError("config", "nats-server: a JetStream store dir is required");
    await this.#mkStoreDir(o.storeDir);
    const config = renderServerConfig({
      serverName: this.#serverName,
      host: o.host ?? "127.0.0.1",
      port: o.port,
      storeDir: o.storeDir,
      user: o.user,
      pass: o.pass,
      monitorPort: o.monitorPort,
      maxPayload: o.maxPayload ?? DEFAULT_MAX_PAYLOAD,
      tls: o.tlsCert,
      cluster: o.cluster,
    });
    const configFile = `${this.#runDir}/nats-server.conf`;
    await Deno.writeTextFile(configFile, config, { mode: 0o600 });
    this.#args = serverArgs({ configFile, portsDir });
  }

  async #mkStoreDir(dir: string): Promise<void> {
    try {
      await Deno.mkdir(dir, { recursive: true });
    } catch (e) {
      throw new HaError("config", `--nats-store-dir ${dir}: ${(e as Error).message}`);
    }
  }

  /**
   * nats-server runs with one Go processor (`GOMAXPROCS=1`) unless ha's environment sets
   * `GOMAXPROCS`: beside ha, Go's idle processors spin looking for work after every message,
   * CPU that ha's threads then lack (docs/perf.md section 9).
   */
  #launch(): WatchedProcess {
    const proc = WatchedProcess.spawn(this.#bin!, this.#args, (line) => {
      if (!this.#o.logs) return;
      const { level, msg } = parseNatsLogLine(line);
      this.#serverLog[level](msg);
    }, { GOMAXPROCS: Deno.env.get("GOMAXPROCS") ?? "1" });
    this.#proc = proc;
    return proc;
  }

  /** Waits until `proc` accepts a NATS connection and JetStream answers; sets {@link url}. */
  async #waitReady(proc: WatchedProcess): Promise<void> {
    const timeoutMs = this.#o.readyTimeoutMs ??
      (this.#o.configFile || this.#o.cluster
        ? DEFAULT_READY_TIMEOUT_CLUSTER_MS
        : DEFAULT_READY_TIMEOUT_MS);
    const deadline = Date.now() + timeoutMs;
    const fail = (reason: string, code: "unavailable" | "config" = "unavailable") => {
      const tail = proc.tail.lines();
      // The first line says why: the last error nats-server logged, or its last words.
      const errLine = tail.findLast((l) => parseNatsLogLine(l).level === "error");
      const why = errLine !== undefined
        ? parseNatsLogLine(errLine).msg
        : proc.exitStatus !== null
        ? tail.at(-1)
        : undefined;
      const output = tail.length > 0 ? `\n--- last nats-server output ---\n${tail.join("\n")}` : "";
      const first = why ? `${reason}: ${why}` : reason;
      return new HaError(code, `nats-server failed to start: ${first}${output}`, {
        logTail: tail,
      });
    };
    let pid: number;
    try {
      pid = await proc.pid;
    } catch {
      throw fail(`could not run ${this.#bin}`);
    }
    let nc: NatsConnection | null = null;
    let last = "client port not open yet";
    try {
      while (true) {
        if (this.#stopping) throw new HaError("unavailable", "nats-server: stopped while starting");
        const exit = proc.exitStatus;
        if (exit !== null) throw fail(describeExit(exit));
        const remaining = deadline - Date.now();
        if (remaining <= 0) throw fail(`not ready after ${timeoutMs} ms (${last})`);
        try {
          const url = await this.#readUrl(pid);
          if (url !== null) {
            if (nc === null || nc.isClosed()) {
              nc = await rawConnect({
                servers: [url],
                reconnect: false,
                timeout: Math.min(2_000, remaining),
                name: `ha-readiness-${this.#serverName}`,
                ...(this.#o.tls ? { tls: this.#o.tls } : {}),
                ...this.#auth(),
              });
            }
            const jsm = await jetstreamManager(nc, {
              timeout: Math.min(2_000, remaining),
              checkAPI: false,
            });
            await jsm.getAccountInfo();
            this.#url = url;
            return;
          }
        } catch (e) {
          if (e instanceof errors.AuthorizationError) {
            throw fail(
              "it rejected ha's credentials (Authorization Violation): set --nats-user and " +
                "--nats-pass to a user with JetStream access",
              "config",
            );
          }
          last = e instanceof Error ? e.message : String(e);
        }
        await within(proc.status, 150);
      }
    } finally {
      await nc?.close().catch(() => {});
    }
  }

  #auth(): { user?: string; pass?: string; token?: string } {
    const { user, pass, token } = this.#o;
    if (user) return { user, pass };
    return token ? { token } : {};
  }

  /** The client URL from nats-server's ports file (`<exe>_<pid>.ports`), once it is written. */
  async #readUrl(pid: number): Promise<string | null> {
    const dir = `${this.#runDir}/ports`;
    for await (const entry of Deno.readDir(dir)) {
      if (!entry.name.endsWith(`_${pid}.ports`)) continue;
      const text = await Deno.readTextFile(`${dir}/${entry.name}`).catch(() => "");
      return pickClientUrl(text);
    }
    return null;
  }

  #running(proc: WatchedProcess): void {
    this.#readyAt = Date.now();
    this.#setState("running");
    proc.status.then(() => {
      if (this.#proc !== proc || this.#stopping) return;
      this.#supervising = this.#supervise(proc);
    });
  }

  /** nats-server died on its own: restart it with backoff until it runs again or ha stops. */
  async #supervise(dead: WatchedProcess): Promise<void> {
    const reason = `nats-server ${describeExit(dead.exitStatus!)} unexpectedly`;
    this.#lastError = reason;
    this.#setState("restarting");
    if (Date.now() - this.#readyAt >= STABLE_MS) this.#restartBackoff.reset();
    this.#log.warn(reason + "; restarting", {
      retryInMs: this.#restartBackoff.peek(),
      lastOutput: dead.tail.lines().slice(-10),
    });
    await dead.terminate(this.#stopGrace());
    while (!this.#stopping) {
      await this.#sleep(this.#restartBackoff.next());
      if (this.#stopping) return;
      let proc: WatchedProcess | null = null;
      try {
        proc = this.#launch();
        await this.#waitReady(proc);
      } catch (e) {
        await proc?.terminate(this.#stopGrace());
        if (this.#stopping) return;
        this.#lastError = firstLine(e);
        const tail = e instanceof HaError ? e.details.logTail : undefined;
        this.#log.warn("nats-server restart failed", {
          error: this.#lastError,
          retryInMs: this.#restartBackoff.peek(),
          lastOutput: Array.isArray(tail) ? tail.slice(-10) : undefined,
        });
        this.#notify();
        continue;
      }
      this.#restarts++;
      this.#log.info("nats-server restarted", { pid: proc.runningPid, restarts: this.#restarts });
      this.#running(proc);
      return;
    }
  }

  /** Sleeps `ms`, or less when {@link stop} is called. */
  async #sleep(ms: number): Promise<void> {
    const signal = this.#wake.signal;
    if (signal.aborted) return;
    let timer: ReturnType<typeof setTimeout> | undefined;
    let onAbort = () => {};
    await new Promise<void>((res) => {
      timer = setTimeout(res, ms);
      onAbort = () => res();
      signal.addEventListener("abort", onAbort, { once: true });
    });
    clearTimeout(timer);
    signal.removeEventListener("abort", onAbort);
  }

  #stopGrace(): number {
    return this.#o.stopTimeoutMs ?? DEFAULT_STOP_TIMEOUT_MS;
  }

  async #removeRunDir(): Promise<void> {
    if (this.#runDir === null) return;
    await Deno.remove(this.#runDir, { recursive: true }).catch(() => {});
    this.#runDir = null;
  }

  #setState(state: NatsServerState): void {
    this.#state = state;
    this.#notify();
  }

  #notify(): void {
    try {
      this.#o.onStatusChange?.(this.status());
    } catch (e) {
      this.#log.error("onStatusChange failed", { error: e });
    }
  }
}

/** The first line of an error's message (the reason, without the output tail). */
function firstLine(e: unknown): string {
  return (e instanceof Error ? e.message : String(e)).split("\n")[0];
}
