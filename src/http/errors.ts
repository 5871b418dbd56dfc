/** The one mapping from {@link HaError} codes to HTTP statuses. */
import type { ErrorCode } from "../errors/mod.ts";

const STATUS: Record<ErrorCode, number> = {
  bad_request: 400,
  sql: 400,
  constraint: 409,
  not_found: 404,
  unauthorized: 401,
  too_large: 413,
  unavailable: 503,
  cancelled: 503,
  // Not 408 (the client was slow to send: --http-body-timeout) nor 503 (retry elsewhere): the
  // statement itself took too long, as a gateway's upstream that did not answer in time.
  timeout: 504,
  config: 500,
  internal: 500,
};

/** HTTP status for an error code. */
export function statusOf(code: ErrorCode): number {
  return STATUS[code];
}
