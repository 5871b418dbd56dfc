/**
 * One structured logger for the whole program, honouring `--log-level`.
 * Lines are JSON objects on stderr: `{"time","level","msg",...fields}`.
 *
 * @example
 * ```ts
 * const log = createLogger("info").child({ node: "node1" });
 * log.info("listening", { port: 8080 });
 * ```
 */

/**
 * Log levels in increasing severity.
 *
 * @example
 * ```ts
 * const level: LogLevel = "warn"; // warnings and errors only
 * ```
 */
export type LogLevel = "debug" | "info" | "warn" | "error";

const RANK: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40 };

/** Accepted values of `--log-level`. */
export const LOG_LEVELS: readonly LogLevel[] = ["debug", "info", "warn", "error"];

/** Structured fields attached to a log line. */
export type Fields = Record<string, unknown>;

/** Where finished lines go; tests may capture them. */
export type Sink = (line: string) => void;

const encoder = new TextEncoder();
const stderrSink: Sink = (line) => {
  Deno.stderr.writeSync(encoder.encode(line + "\n"));
};

/** A logger bound to a level, a sink and base fields. */
export class Logger {
  constructor(
    readonly level: LogLevel,
    private readonly fields: Fields = {},
    private readonly sink: Sink = stderrSink,
  ) {}

  /** A logger that adds `fields` to every line. */
  child(fields: Fields): Logger {
    return new Logger(this.level, { ...this.fields, ...fields }, this.sink);
  }

  /** Whether lines of `level` are written. */
  enabled(level: LogLevel): boolean {
    return RANK[level] >= RANK[this.level];
  }

  debug(msg: string, fields?: Fields): void {
    this.write("debug", msg, fields);
  }
  info(msg: string, fields?: Fields): void {
    this.write("info", msg, fields);
  }
  warn(msg: string, fields?: Fields): void {
    this.write("warn", msg, fields);
  }
  error(msg: string, fields?: Fields): void {
    this.write("error", msg, fields);
  }

  private write(level: LogLevel, msg: string, fields?: Fields): void {
    if (!this.enabled(level)) return;
    const line = { time: new Date().toISOString(), level, msg, ...this.fields, ...fields };
    this.sink(JSON.stringify(line, replacer));
  }
}

function replacer(_key: string, value: unknown): unknown {
  if (typeof value === "bigint") return value.toString();
  if (value instanceof Error) return value.message;
  return value;
}

/** Creates the root logger. */
export function createLogger(level: LogLevel = "info", sink?: Sink): Logger {
  return new Logger(level, {}, sink);
}
