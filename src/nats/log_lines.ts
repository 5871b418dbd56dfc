/**
 * Reading nats-server output: splitting it into lines, keeping the last ones for error messages,
 * and mapping nats-server log levels onto ours.
 *
 * @module
 */

import type { LogLevel } from "../log/mod.ts";

/**
 * Keeps the last `capacity` lines written to it.
 *
 * @example
 * ```ts
 * const tail = new LineTail(2);
 * tail.push("a"); tail.push("b"); tail.push("c");
 * tail.text(); // "b\nc"
 * ```
 */
export class LineTail {
  #lines: string[] = [];
  constructor(readonly capacity = 50) {}

  /** Adds a line, dropping the oldest beyond capacity. */
  push(line: string): void {
    this.#lines.push(line);
    if (this.#lines.length > this.capacity) this.#lines.shift();
  }

  /** The kept lines, oldest first. */
  lines(): string[] {
    return [...this.#lines];
  }

  /** The kept lines joined with newlines. */
  text(): string {
    return this.#lines.join("\n");
  }
}

/** One nats-server log line, split. */
export interface NatsLogLine {
  /** Our level for it: `[INF]` info, `[WRN]` warn, `[ERR]`/`[FTL]` error, `[DBG]`/`[TRC]` debug. */
  level: LogLevel;
  /** The message without the `[pid] date time [LVL]` prefix. */
  msg: string;
}

const LEVELS: Record<string, LogLevel> = {
  INF: "info",
  WRN: "warn",
  ERR: "error",
  FTL: "error",
  DBG: "debug",
  TRC: "debug",
};

/**
 * Parses `[1234] 2024/01/02 03:04:05.678901 [INF] Server is ready`. Unknown shapes are kept whole
 * at level info.
 *
 * @example
 * ```ts
 * parseNatsLogLine("[7] 2024/01/02 03:04:05.000001 [WRN] careful"); // { level: "warn", msg: "careful" }
 * ```
 */
export function parseNatsLogLine(line: string): NatsLogLine {
  const m = /^\[\d+\] \S+ \S+ \[([A-Z]{3})\] ?(.*)$/.exec(line);
  if (m === null) return { level: "info", msg: line };
  return { level: LEVELS[m[1]] ?? "info", msg: m[2] };
}

/**
 * Calls `onLine` for every line of `stream` (UTF-8, `\n` or `\r\n`), including a last unterminated
 * one; resolves when the stream ends. Read errors end the stream quietly.
 *
 * @example
 * ```ts
 * await readLines(child.stderr, (line) => tail.push(line));
 * ```
 */
export async function readLines(
  stream: ReadableStream<Uint8Array>,
  onLine: (line: string) => void,
): Promise<void> {
  const decoder = new TextDecoder();
  let buffered = "";
  const reader = stream.getReader();
  try {
    while (true) {
      const { value, done } = await reader.read();
      if (done) break;
      buffered += decoder.decode(value, { stream: true });
      let nl: number;
      while ((nl = buffered.indexOf("\n")) >= 0) {
        onLine(buffered.slice(0, nl).replace(/\r$/, ""));
        buffered = buffered.slice(nl + 1);
      }
    }
  } catch {
    // the pipe broke: nothing more to read
  } finally {
    reader.releaseLock();
  }
  buffered += decoder.decode();
  if (buffered !== "") onLine(buffered.replace(/\r$/, ""));
}
