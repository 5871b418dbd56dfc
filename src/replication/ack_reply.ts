/**
 * The stream and delivery sequences of a JetStream message, read from its reply subject in one
 * pass without allocating: `JsMsg.info` splits the subject into a dozen strings and builds an
 * object per message, ~5 % of a catching-up replica's main thread (issue 13). Same formats and
 * token positions as nats.js `parseInfo`:
 * `$JS.ACK.<stream>.<consumer>.<count>.<sseq>.<dseq>.<ts>.<pending>` (9 tokens) and
 * `$JS.ACK.<domain>.<hash>.<stream>.<consumer>.<count>.<sseq>.<dseq>.<ts>.<pending>[.<token>…]`.
 *
 * @example
 * ```ts
 * const d = { stream: 0, delivery: 0 };
 * readAckReply("$JS.ACK.S.C.1.42.7.1700000000000000000.0", d); // d: { stream: 42, delivery: 7 }
 * ```
 * @module
 */

/** Sequences of a delivered message (filled in place by {@link readAckReply}). */
export interface Delivery {
  stream: number;
  delivery: number;
}

const PREFIX = "$JS.ACK.";
const DOT = 46;
/** Dot positions of the current subject (the first ten are all that decide). */
const dots = new Int32Array(10);

/** Fills `out` from a JetStream reply subject; throws if it is not one. */
export function readAckReply(reply: string, out: Delivery): void {
  let n = 0;
  for (let i = 0; i < reply.length && n < dots.length; i++) {
    if (reply.charCodeAt(i) === DOT) dots[n++] = i;
  }
  // 9 tokens (8 dots): the format without domain and account hash; else at least 11 tokens.
  const at = n === 8 ? 4 : n >= 10 ? 6 : -1;
  if (at < 0 || !reply.startsWith(PREFIX)) {
    throw new Error(`unable to parse delivery info - not a jetstream message: ${reply}`);
  }
  out.stream = digits(reply, dots[at] + 1, dots[at + 1]);
  out.delivery = digits(reply, dots[at + 1] + 1, dots[at + 2]);
}

function digits(s: string, from: number, to: number): number {
  if (from >= to) throw new Error(`unable to parse delivery info: ${s}`);
  let v = 0;
  for (let i = from; i < to; i++) {
    const d = s.charCodeAt(i) - 48;
    if (d < 0 || d > 9) throw new Error(`unable to parse delivery info: ${s}`);
    v = v * 10 + d;
  }
  return v;
}
