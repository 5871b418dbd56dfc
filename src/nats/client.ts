/**
 * Connecting to NATS (the embedded server or `--replication-url`), reconnecting forever, and
 * reporting connection state.
 *
 * @module
 */

import type { NatsConnection, Status, TlsOptions } from "@nats-io/transport-node";
import { HaError } from "../errors/mod.ts";
import type { Logger } from "../log/mod.ts";
import { rawConnect } from "./transport.ts";

/** Default {@link ConnectNatsOptions.reconnectTimeWaitMs}. */
export const DEFAULT_RECONNECT_WAIT_MS = 1_000;
/** Default {@link ConnectNatsOptions.reconnectJitterMs}. */
export const DEFAULT_RECONNECT_JITTER_MS = 500;
/** Default {@link ConnectNatsOptions.pingIntervalMs}. */
export const DEFAULT_PING_INTERVAL_MS = 20_000;
/** Unanswered pings after which the connection counts as dead (and reconnects). */
export const MAX_PINGS_OUT = 3;
/** While the first connection is awaited, "still waiting" is logged this often. */
const WAITING_LOG_INTERVAL_MS = 10_000;

/** Options of {@link connectNats}. */
export interface ConnectNatsOptions {
  /**
   * Server URLs: `nats://host:4222`, `host:4222`, also comma-separated lists as given in
   * `--replication-url`. Credentials may be in a URL: `nats://user:pass@host:4222` or
   * `nats://token@host:4222`.
   */
  servers: string[];
  /** User (`--nats-user`); wins over credentials in a URL. */
  user?: string;
  /** Password of `user`. */
  pass?: string;
  /** Token; wins over a token in a URL. */
  token?: string;
  /** Connection name shown by the server's monitoring (for instance the node name). */
  name: string;
  /** Where connection events are logged (`component: "nats-client"`). */
  logger: Logger;
  /** Wait between reconnect attempts. Default {@link DEFAULT_RECONNECT_WAIT_MS}. */
  reconnectTimeWaitMs?: number;
  /**
   * Random extra wait up to this, so that nodes do not reconnect in lockstep. Default
   * {@link DEFAULT_RECONNECT_JITTER_MS}.
   */
  reconnectJitterMs?: number;
  /**
   * Client ping interval; {@link MAX_PINGS_OUT} unanswered pings mean a dead connection.
   * Default {@link DEFAULT_PING_INTERVAL_MS}.
   */
  pingIntervalMs?: number;
  /**
   * TLS settings (`caFile`, `certFile`, `keyFile`...). Without them, TLS is still used when the
   * server requires it, verified against the system's CAs.
   */
  tls?: TlsOptions;
  /**
   * Gives up waiting for the first connection (the node stops before NATS was ever reached):
   * the promise rejects with `HaError("unavailable")`, a connection made later is closed.
   */
  signal?: AbortSignal;
}

/** A NATS connection that reconnects forever and knows whether it is connected. */
export interface NatsClient {
  /** The underlying connection (JetStream, object store... take it from here). */
  readonly nc: NatsConnection;
  /** The servers connected to, credentials removed. */
  readonly servers: readonly string[];
  /** `true` while the connection is up (not while it is reconnecting, nor after close). */
  isConnected(): boolean;
  /**
   * Calls `listener` after every reconnection (what the server sent while the connection was
   * down is lost). Returns its removal.
   */
  onReconnect(listener: () => void): () => void;
  /** Drains subscriptions and closes. */
  drain(): Promise<void>;
  /** Closes now. Idempotent. */
  close(): Promise<void>;
}

/** Server URLs without credentials, and the credentials found in them. */
export interface ParsedServers {
  /** URLs as given, credentials removed. */
  servers: string[];
  /** From `user:pass@`. */
  user?: string;
  /** From `user:pass@`. */
  pass?: string;
  /** From `token@`. */
  token?: string;
}

/**
 * Splits comma-separated lists and takes credentials out of URLs (the nats.js client ignores
 * them). The first URL with credentials provides them.
 *
 * @example
 * ```ts
 * parseServers(["nats://a:b@h1:4222,h2:4222"]);
 * // { servers: ["nats://h1:4222", "h2:4222"], user: "a", pass: "b" }
 * ```
 */
export function parseServers(servers: readonly string[]): ParsedServers {
  const out: ParsedServers = { servers: [] };
  let found = false;
  for (const raw of servers.flatMap((s) => s.split(","))) {
    const s = raw.trim();
    if (s === "") continue;
    const m = /^([A-Za-z][A-Za-z0-9+.-]*:\/\/)?(?:([^@/]*)@)?(.*)$/.exec(s)!;
    const [, scheme = "", userinfo, rest] = m;
    out.servers.push(scheme + rest);
    if (userinfo === undefined || found) continue;
    found = true;
    const colon = userinfo.indexOf(":");
    if (colon >= 0) {
      out.user = decode(userinfo.slice(0, colon));
      out.pass = decode(userinfo.slice(colon + 1));
    } else {
      out.token = decode(userinfo);
    }
  }
  return out;
}

function decode(s: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    return s;
  }
}

/**
 * Connects to NATS. Waits (retrying forever) until a first connection succeeds, then reconnects
 * forever; logs disconnects and reconnects. Rejects at once when the server rejects the
 * credentials (`HaError("unavailable")`).
 *
 * Every NATS connection in ha must be made here (see `transport.ts`).
 *
 * @example
 * ```ts
 * const client = await connectNats({
 *   servers: ["nats://user:secret@127.0.0.1:4222"], name: "node1", logger,
 * });
 * const js = jetstream(client.nc);
 * // ...
 * await client.close();
 * ```
 */
export async function connectNats(opts: ConnectNatsOptions): Promise<NatsClient> {
  const parsed = parseServers(opts.servers);
  if (parsed.servers.length === 0) throw new HaError("config", "no NATS server URL given");
  const log = opts.logger.child({ component: "nats-client" });
  const optUser = opts.user || undefined;
  const optToken = opts.token || undefined;
  const user = optUser ?? (optToken === undefined ? parsed.user : undefined);
  const pass = optUser !== undefined ? opts.pass : user !== undefined ? parsed.pass : undefined;
  const token = user === undefined ? optToken ?? parsed.token : undefined;
  const auth = user !== undefined ? { user, pass } : token !== undefined ? { token } : {};
  log.debug("connecting to NATS", { servers: parsed.servers });
  const started = Date.now();
  const waiting = setInterval(() => {
    log.warn("still waiting for NATS", {
      servers: parsed.servers,
      waitedMs: Date.now() - started,
    });
  }, WAITING_LOG_INTERVAL_MS);
  let nc: NatsConnection;
  const aborted = Promise.withResolvers<never>();
  const onAbort = () => aborted.reject(new Error("stopped before NATS was reached"));
  if (opts.signal?.aborted) onAbort();
  opts.signal?.addEventListener("abort", onAbort, { once: true });
  try {
    const connecting = rawConnect({
      servers: parsed.servers,
      name: opts.name,
      maxReconnectAttempts: -1,
      reconnectTimeWait: opts.reconnectTimeWaitMs ?? DEFAULT_RECONNECT_WAIT_MS,
      reconnectJitter: opts.reconnectJitterMs ?? DEFAULT_RECONNECT_JITTER_MS,
      waitOnFirstConnect: true,
      noAsyncTraces: true,
      pingInterval: opts.pingIntervalMs ?? DEFAULT_PING_INTERVAL_MS,
      maxPingOut: MAX_PINGS_OUT,
      ...(opts.tls ? { tls: opts.tls } : {}),
      ...auth,
    });
    // A connection made after the abort is closed at once.
    aborted.promise.catch(() => connecting.then((c) => c.close()).catch(() => {}));
    nc = await Promise.race([connecting, aborted.promise]);
  } catch (e) {
    const msg = e instanceof Error ? e.message : String(e);
    throw new HaError("unavailable", `cannot connect to NATS ${parsed.servers.join(",")}: ${msg}`, {
      servers: parsed.servers,
    }, { cause: e });
  } finally {
    clearInterval(waiting);
    opts.signal?.removeEventListener("abort", onAbort);
  }
  log.info("connected to NATS", { server: nc.getServer() });
  return new Client(nc, parsed.servers, log);
}

class Client implements NatsClient {
  #connected = true;
  #events: Promise<void>;
  readonly #reconnectListeners = new Set<() => void>();

  constructor(readonly nc: NatsConnection, readonly servers: readonly string[], log: Logger) {
    this.#events = (async () => {
      for await (const s of nc.status()) this.#onStatus(s, log);
    })().catch((e) => log.error("NATS status loop failed", { error: e }));
    nc.closed().then((err) => {
      this.#connected = false;
      if (err) log.error("NATS connection closed with an error", { error: err });
      else log.info("NATS connection closed");
    });
  }

  #onStatus(s: Status, log: Logger): void {
    switch (s.type) {
      case "disconnect":
        this.#connected = false;
        log.warn("disconnected from NATS", { server: s.server });
        break;
      case "reconnect":
        this.#connected = true;
        log.info("reconnected to NATS", { server: s.server });
        for (const l of this.#reconnectListeners) l();
        break;
      case "reconnecting":
        this.#connected = false;
        log.debug("reconnecting to NATS");
        break;
      case "error":
        log.warn("NATS error", { error: s.error });
        break;
      case "ldm":
        log.info("NATS server entering lame duck mode", { server: s.server });
        break;
      case "staleConnection":
        this.#connected = false;
        log.warn("NATS connection stale");
        break;
      case "close":
        this.#connected = false;
        break;
      default:
        log.debug("NATS status", { type: s.type });
    }
  }

  isConnected(): boolean {
    return this.#connected && !this.nc.isClosed();
  }

  onReconnect(listener: () => void): () => void {
    this.#reconnectListeners.add(listener);
    return () => this.#reconnectListeners.delete(listener);
  }

  async drain(): Promise<void> {
    if (!this.nc.isClosed() && !this.nc.isDraining()) await this.nc.drain();
    await this.nc.closed();
    await this.#events;
  }

  async close(): Promise<void> {
    if (!this.nc.isClosed()) await this.nc.close();
    await this.#events;
  }
}
