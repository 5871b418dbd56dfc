/**
 * The history of a chaos run: every operation a client made (node, request, response, times)
 * and what it wrote if it committed, and every fault the suite injected. Outcomes follow what
 * "acknowledged" means (see `/work/shared/ARCHITECTURE.md`): a 200, or a 503 whose message says
 * "committed locally", is a promise that the write reaches every node.
 *
 * @example
 * ```ts
 * httpOutcome(503, '{"error":"replication unavailable: the write was committed locally …"}'); // "ok"
 * ```
 * @module
 */

/** ok = acknowledged; fail = certainly not committed; unknown = may or may not be. */
export type Outcome = "ok" | "fail" | "unknown";

/** One row an operation writes when it commits (`value` null: the row is deleted). */
export interface Write {
  table: string;
  key: string;
  value: string | null;
}

/** One client operation. Times are ms since the run started. */
export interface Op {
  id: number;
  client: string;
  node: string;
  proto: "http" | "pg";
  kind: "insert" | "upsert" | "delete" | "tx" | "ddl" | "probe";
  request: unknown;
  /** HTTP status, "pg" for a PostgreSQL answer, or "error" (no answer). */
  status: number | "pg" | "error";
  /** Response body or error message (truncated). */
  body: string;
  start: number;
  end: number;
  outcome: Outcome;
  writes: Write[];
}

/** One injected fault, as scheduled and as it happened. */
export interface FaultRecord {
  kind: FaultKind;
  target: string;
  /** Planned start and length, ms since the load started. */
  at: number;
  durationMs: number;
  detail: Record<string, unknown>;
  /** When it was applied and healed (ms since the run started); null when skipped. */
  applied: number | null;
  healed: number | null;
  error?: string;
}

/** Every kind of fault the suite injects. */
export const FAULT_KINDS = [
  "kill",
  "stop",
  "nats",
  "partition",
  "delay",
  "clock",
  "snapshot",
] as const;

/** A kind of fault. */
export type FaultKind = typeof FAULT_KINDS[number];

/** A bounded body for the history file. */
export function clip(s: string, max = 300): string {
  return s.length > max ? `${s.slice(0, max)}…` : s;
}

/** The outcome of an HTTP answer (status 0 = no answer: `refused` tells whether it was sent). */
export function httpOutcome(status: number, body: string, refused = false): Outcome {
  if (status === 200) return "ok";
  if (status === 503 && /committed locally/.test(body)) return "ok";
  if (status >= 400 && status < 500) return "fail";
  if (status === 0 && refused) return "fail";
  return "unknown";
}

/** The outcome of a PostgreSQL transaction that failed with `message`, `atCommit` or before. */
export function pgErrorOutcome(message: string, atCommit: boolean, sqlState?: string): Outcome {
  if (/committed locally/.test(message)) return "ok";
  // The server answered with an error before COMMIT: the transaction is rolled back.
  if (!atCommit && sqlState) return "fail";
  if (/ECONNREFUSED/.test(message)) return "fail";
  return "unknown";
}

/** Appends operations with increasing ids and run-relative times. */
export class History {
  readonly ops: Op[] = [];
  readonly faults: FaultRecord[] = [];
  readonly t0 = Date.now();

  /** ms since the run started. */
  now(): number {
    return Date.now() - this.t0;
  }

  add(op: Omit<Op, "id">): Op {
    const full = { id: this.ops.length, ...op };
    this.ops.push(full);
    return full;
  }
}
