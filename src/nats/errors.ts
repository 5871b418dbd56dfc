/**
 * What a NATS error means, from its type and JetStream API error code (`err_code` of the
 * server's API reply, see nats-server's `server/errors.json`), never from its message text.
 *
 * @example
 * ```ts
 * try {
 *   await jsm.consumers.delete(stream, name);
 * } catch (e) {
 *   if (!isNotFound(e)) throw e; // already gone
 * }
 * ```
 *
 * @module
 */
import { JetStreamApiCodes, JetStreamApiError } from "@nats-io/jetstream";
import { errors, InvalidArgumentError } from "@nats-io/transport-node";

/**
 * `JSStreamNameExistErr`: "stream name already in use with a different configuration" (a stream
 * of that name exists; not in nats.js's `JetStreamApiCodes`).
 */
export const STREAM_NAME_IN_USE = 10058;

function apiCode(e: unknown): number | null {
  return e instanceof JetStreamApiError ? e.code : null;
}

/** The stream, the consumer or the message asked for does not exist. */
export function isNotFound(e: unknown): boolean {
  const code = apiCode(e);
  return code === JetStreamApiCodes.StreamNotFound ||
    code === JetStreamApiCodes.ConsumerNotFound ||
    code === JetStreamApiCodes.NoMessageFound;
}

/** A request got no answer in time (nats.js's `TimeoutError`). */
export function isTimeout(e: unknown): boolean {
  return e instanceof errors.TimeoutError;
}

/** A stream of that name exists already (another node created it first). */
export function isStreamNameInUse(e: unknown): boolean {
  return apiCode(e) === STREAM_NAME_IN_USE;
}

/** A publish expecting a last (subject) sequence found another one: someone wrote first. */
export function isWrongLastSequence(e: unknown): boolean {
  const code = apiCode(e);
  return code === JetStreamApiCodes.StreamWrongLastSequence ||
    code === JetStreamApiCodes.StreamWrongLastSequenceUnknown;
}

/**
 * The client refused to send a message larger than the server's `max_payload` (nats.js raises
 * an `InvalidArgumentError` on the `payload` argument before anything is sent).
 */
export function isPayloadTooLarge(e: unknown): boolean {
  return e instanceof InvalidArgumentError && e.message.includes("max_payload");
}
