/**
 * `--cluster-key`: every changeset message carries an HMAC-SHA256 of its payload in a header, so
 * that a client of the NATS server who does not know the key cannot forge a changeset.
 *
 * @example
 * ```ts
 * const sig = signPayload("secret", '{"id":"…"}');
 * verifyPayload("secret", '{"id":"…"}', sig); // true
 * ```
 * @module
 */
import { Buffer } from "node:buffer";
import { createHmac, timingSafeEqual } from "node:crypto";

/** Header carrying the payload's HMAC-SHA256 (hex) when `--cluster-key` is set. */
export const SIGNATURE_HEADER = "Ha-Signature";

/** Hex HMAC-SHA256 of `payload` (UTF-8) under `key`. */
export function signPayload(key: string, payload: string): string {
  return createHmac("sha256", key).update(payload, "utf8").digest("hex");
}

/** Whether `signature` is the HMAC of `payload` under `key` (constant time). */
export function verifyPayload(key: string, payload: string, signature: string): boolean {
  const want = Buffer.from(signPayload(key, payload), "hex");
  if (!/^[0-9a-f]{64}$/i.test(signature)) return false;
  return timingSafeEqual(want, Buffer.from(signature, "hex"));
}
