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
import type { JsMsg } from "@nats-io/jetstream";

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

/** nats.js's message internals read by {@link rawHeaders} (not part of its API). */
interface MsgInternals {
  msg?: { _rdata?: Uint8Array; _msg?: { hdr?: number } };
}

const NO_BYTES = new Uint8Array(0);

/**
 * The raw header block of a nats.js message (empty without headers), or undefined when the
 * message does not look as expected (then the headers are decoded instead).
 */
export function rawHeaders(m: JsMsg): Uint8Array | undefined {
  const inner = (m as unknown as MsgInternals).msg;
  const data = inner?._rdata;
  const hdr = inner?._msg?.hdr;
  if (!(data instanceof Uint8Array) || typeof hdr !== "number") return undefined;
  return hdr < 0 ? NO_BYTES : data.subarray(0, hdr);
}

/** Whether `bytes` contains `part` (a short needle, a few hundred bytes of headers). */
export function includes(bytes: Uint8Array, part: Uint8Array): boolean {
  const n = part.length;
  if (n === 0) return true;
  const first = part[0];
  outer: for (
    let i = bytes.indexOf(first);
    i >= 0 && i + n <= bytes.length;
    i = bytes.indexOf(first, i + 1)
  ) {
    for (let j = 1; j < n; j++) if (bytes[i + j] !== part[j]) continue outer;
    return true;
  }
  return false;
}
