/**
 * A batch of stream messages as the subscriber sends it to the writer (`applyPacked`): one
 * buffer holding the sequences, the payload ends and the payloads, moved to the writer (not
 * copied). An array of per-message objects cost the main thread a structured-clone walk and a
 * UTF-8 decode per message, and a copied buffer a serialization copy (issue 13: single-row
 * catch-up is bound by the main thread). The writer decodes each payload when it unpacks.
 *
 * @example
 * ```ts
 * const p = pack("ha.db", [{ seq: 7, data: new TextEncoder().encode("{}") }]);
 * unpack(p); // [{ seq: 7, subject: "ha.db", data: "{}" }]
 * ```
 * @module
 */
import type { ApplyMessage, PackedMessages } from "./plugin_api.ts";

/** A received message's stream sequence and payload. */
export interface Payload {
  seq: number;
  data: Uint8Array;
}

/** Packs `msgs` (one subject, in order); `sigs`: their `Ha-Signature` (`--cluster-key`). */
export function pack(
  subject: string,
  msgs: readonly Payload[],
  sigs?: (string | undefined)[],
): PackedMessages {
  const n = msgs.length;
  let size = 0;
  for (const m of msgs) size += m.data.length;
  // Layout: n float64 sequences, n uint32 ends, the payloads.
  const buf = new ArrayBuffer(n * 12 + size);
  const seqs = new Float64Array(buf, 0, n);
  const ends = new Uint32Array(buf, n * 8, n);
  const data = new Uint8Array(buf, n * 12);
  let at = 0;
  for (let i = 0; i < n; i++) {
    data.set(msgs[i].data, at);
    at += msgs[i].data.length;
    seqs[i] = msgs[i].seq;
    ends[i] = at;
  }
  return sigs ? { subject, count: n, buf, sigs } : { subject, count: n, buf };
}

const decoder = new TextDecoder();

/** The messages of a {@link pack}ed batch. */
export function unpack(p: PackedMessages): ApplyMessage[] {
  const n = p.count;
  const seqs = new Float64Array(p.buf, 0, n);
  const ends = new Uint32Array(p.buf, n * 8, n);
  const data = new Uint8Array(p.buf, n * 12);
  const out: ApplyMessage[] = new Array(n);
  // One decode for the batch: when every byte became one UTF-16 unit (no multi-byte character,
  // no BOM), payload i is the same slice of the text as of the bytes; else one decode each.
  const all = n > 1 ? decoder.decode(data) : "";
  const sliced = all.length === data.length;
  let start = 0;
  for (let i = 0; i < n; i++) {
    const m: ApplyMessage = {
      seq: seqs[i],
      subject: p.subject,
      data: sliced ? all.slice(start, ends[i]) : decoder.decode(data.subarray(start, ends[i])),
    };
    const sig = p.sigs?.[i];
    if (sig) m.sig = sig;
    out[i] = m;
    start = ends[i];
  }
  return out;
}
