/**
 * Headers of a changeset message, and the bytes they take: NATS counts headers and payload
 * against the server's `max_payload`, so the writer plugin checks both before COMMIT.
 *
 * @example
 * ```ts
 * headerBytes("ha.db:node1:1", "node1", "5b0c…"); // NATS/1.0 line + three headers
 * ```
 * @module
 */

/** Header naming the node that published a changeset. */
export const NODE_HEADER = "Ha-Node";
/** Header naming the process incarnation that published a changeset. */
export const INCARNATION_HEADER = "Ha-Incarnation";
/** JetStream's de-duplication header (set by the client from the publish `msgID`). */
export const MSG_ID_HEADER = "Nats-Msg-Id";

/**
 * Bytes of the encoded headers of a changeset message (`NATS/1.0`, `Key: value` lines, CRLFs),
 * with the `Ha-Signature` line when `signed` (`--cluster-key`).
 */
export function headerBytes(
  id: string,
  node: string,
  incarnation: string,
  signed = false,
): number {
  const line = (k: string, v: string) => k.length + 2 + utf8Length(v) + 2;
  return "NATS/1.0\r\n".length + line(MSG_ID_HEADER, id) + line(NODE_HEADER, node) +
    line(INCARNATION_HEADER, incarnation) + (signed ? line("Ha-Signature", "0".repeat(64)) : 0) +
    2;
}

/** UTF-8 length of a string without encoding it. */
export function utf8Length(s: string): number {
  let n = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x80) n += 1;
    else if (c < 0x800) n += 2;
    else if (c >= 0xd800 && c <= 0xdbff && (s.charCodeAt(i + 1) & 0xfc00) === 0xdc00) {
      n += 4;
      i++;
    } else n += 3;
  }
  return n;
}
