/**
 * A batch of stream messages as the subscriber sends it to the writer (`applyPacked`): payload
 * bytes concatenated in one buffer, sequences and ends in typed arrays. Cloning a few typed
 * arrays to the writer costs a copy each; an array of per-message objects cost the main thread a
 * structured-clone walk and a UTF-8 decode per message (issue 13: single-row catch-up is bound by
 * the main thread). The writer decodes each payload when it unpacks.
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
  let size = 0;
  for (const m of msgs) size += m.data.length;
  const data = new Uint8Array(size);
  const seqs = new Float64Array(msgs.length);
  const ends = new Uint32Array(msgs.length);
  let at = 0;
  for (let i = 0; i < msgs.length; i++) {
    data.set(msgs[i].data, at);
    at += msgs[i].data.length;
    seqs[i] = msgs[i].seq;
    ends[i] = at;
  }
  return sigs ? { subject, seqs, ends, data, sigs } : { subject, seqs, ends, data };
}

const decoder = new TextDecoder();

/** The messages of a {@link pack}ed batch. */
export function unpack(p: PackedMessages): ApplyMessage[] {
  const out: ApplyMessage[] = new Array(p.seqs.length);
  let start = 0;
  for (let i = 0; i < p.seqs.length; i++) {
    const end = p.ends[i];
    const m: ApplyMessage = {
      seq: p.seqs[i],
      subject: p.subject,
      data: decoder.decode(p.data.subarray(start, end)),
    };
    const sig = p.sigs?.[i];
    if (sig) m.sig = sig;
    out[i] = m;
    start = end;
  }
  return out;
}
