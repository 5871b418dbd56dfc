/**
 * Parsers of the names, addresses and URLs given to flags (node and stream names, listen
 * addresses, NATS and route URLs). Like {@link ./values.ts}, they throw {@link ValueError}.
 *
 * @module
 */

import { LOG_LEVELS, type LogLevel } from "../log/mod.ts";
import { parseList, ValueError } from "./values.ts";

/** A string that must not be empty. */
export function nonEmpty(expected: string): (raw: string) => string {
  return (raw) => {
    const t = raw.trim();
    if (t === "") throw new ValueError(expected);
    return t;
  };
}

/** An optional string: empty means not set. */
export function optional(raw: string): string | null {
  return raw === "" ? null : raw;
}

/** An optional path: trimmed, empty means not set. */
export function optionalPath(raw: string): string | null {
  const t = raw.trim();
  return t === "" ? null : t;
}

export function parseLogLevel(raw: string): LogLevel {
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
export function parseStreamName(raw: string): string {
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
export function parseNatsUrls(raw: string): string[] {
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

/**
 * Comma-separated route URLs `nats://host:port` (or `nats-route://`), without credentials:
 * `--nats-user`/`--nats-pass` are added to them.
 */
export function parseRouteUrls(raw: string): string[] {
  const expected = "comma-separated route URLs like nats://node2:6222 (no credentials)";
  return parseList(raw).map((item) => {
    let url: URL;
    try {
      url = new URL(item);
    } catch {
      throw new ValueError(expected, item);
    }
    const pathOk = url.pathname === "" || url.pathname === "/";
    if (
      (url.protocol !== "nats:" && url.protocol !== "nats-route:") || url.hostname === "" ||
      url.port === "" || url.username !== "" || url.password !== "" || !pathOk || url.search ||
      url.hash
    ) {
      throw new ValueError(expected, item);
    }
    return `${url.protocol}//${url.host}`;
  });
}

/** A NATS cluster name: letters, digits, `_` and `-`. */
export function parseClusterName(raw: string): string {
  const t = raw.trim();
  if (!/^[A-Za-z0-9_-]{1,64}$/.test(t)) {
    throw new ValueError("a cluster name of 1..64 letters, digits, _ and -");
  }
  return t;
}

export function parseNodeName(raw: string): string {
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
export function parseListenAddress(raw: string): string {
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
