/**
 * Deno FFI to the `ha_interrupt` SQLite extension (`ha_interrupt.c`): the same file every engine
 * connection loads, so its functions act on those connections' guards. The main thread cancels
 * requests; an engine worker starts each request (its timeout) and asks why a statement stopped.
 *
 * @example
 * ```ts
 * const lib = InterruptLib.open("/path/ha_interrupt.so");
 * lib.cancel(guard, requestId, "cancel"); // the request's statement fails with SQLITE_INTERRUPT
 * ```
 * @module
 */
import { HaError } from "../../errors/mod.ts";

/** Why a statement was stopped. */
export type StopReason = "cancel" | "timeout" | "shutdown";

const CODE: Record<StopReason, number> = { cancel: 1, timeout: 2, shutdown: 3 };
const REASON: Record<number, StopReason> = { 1: "cancel", 2: "timeout", 3: "shutdown" };

const SYMBOLS = {
  ha_begin: { parameters: ["i32", "i64", "i32"], result: "i32" },
  ha_cancel: { parameters: ["i32", "i64", "i32"], result: "i32" },
  ha_reason: { parameters: ["i32"], result: "i32" },
} as const;

/** One thread's handle on the extension (opened once per path and thread). */
export class InterruptLib {
  private static readonly opened = new Map<string, InterruptLib>();

  private constructor(private readonly lib: Deno.DynamicLibrary<typeof SYMBOLS>) {}

  /** Opens (or reuses) the extension at `path` in this thread. */
  static open(path: string): InterruptLib {
    let lib = InterruptLib.opened.get(path);
    if (!lib) {
      lib = new InterruptLib(Deno.dlopen(path, SYMBOLS));
      InterruptLib.opened.set(path, lib);
    }
    return lib;
  }

  /**
   * Worker side, before each request on the connection with `guard`: its statements stop after
   * `timeoutMs` each (0 = never), and a cancel that came early applies now.
   */
  begin(guard: number, request: number, timeoutMs: number): void {
    this.lib.symbols.ha_begin(guard, BigInt(request), timeoutMs);
  }

  /** Any thread: stops the statements of `request` on `guard` (now, or when it starts). */
  cancel(guard: number, request: number, reason: StopReason): void {
    this.lib.symbols.ha_cancel(guard, BigInt(request), CODE[reason]);
  }

  /** Why the last statement of the current request on `guard` was interrupted, if it was. */
  reason(guard: number): StopReason | null {
    return REASON[this.lib.symbols.ha_reason(guard)] ?? null;
  }
}

/**
 * The error a request reports when its statement was stopped for `reason` (`h`: what SQLite
 * raised, "interrupted"); keeps the statement index of a batch and the SQLite code.
 */
export function stoppedError(h: HaError, reason: StopReason, timeoutMs: number): HaError {
  const at = typeof h.details.statement === "number" ? `statement ${h.details.statement}: ` : "";
  const details = { ...h.details, stopped: reason };
  switch (reason) {
    case "timeout":
      return new HaError(
        "timeout",
        `${at}canceling statement due to statement timeout (${timeoutMs} ms; ` +
          "--statement-timeout, PG SET statement_timeout)",
        details,
      );
    case "cancel":
      return new HaError("cancelled", `${at}canceling statement due to user request`, details);
    case "shutdown":
      return new HaError(
        "unavailable",
        `${at}canceling statement: the node is shutting down`,
        details,
      );
  }
}
