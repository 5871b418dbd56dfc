/**
 * How messages cross the pipes between ha and its sandbox process: JSON text in length-prefixed
 * frames. JSON is 2–5x cheaper than `node:v8` serialization here; tags keep the values
 * structured clone kept before (`bigint`, `Uint8Array`, `undefined` in arrays, NaN, ±Infinity,
 * -0). Anything else that is not plain data (Map, Date, class instances, cycles, functions) cannot
 * be sent: the hook's result then counts as invalid, as a DataCloneError did.
 *
 * {@link encodeWire} and {@link decodeWire} also run inside the sandbox worker (the bootstrap
 * inlines their source), so they must stay self-contained: no imports, no outer references.
 *
 * @module
 */

/** Largest frame either side accepts (a batch of big rows fits; a runaway result does not). */
export const MAX_FRAME_BYTES = 128 * 1024 * 1024;

/**
 * A value as JSON text, with tags for what JSON cannot say. An object or array met again is sent
 * once and then referred to by its position (`$r`), as structured clone does: conflicts sharing
 * one changeset stay small, and cycles survive. Throws TypeError on what cannot be sent.
 */
export function encodeWire(value: unknown): string {
  const tags = ["$b", "$u", "$n", "$v", "$o", "$r"];
  const seen = new Map<object, number>();
  let wrapped: object | null = null;
  return JSON.stringify({ v: value }, function (this: Record<string, unknown>, key: string) {
    const raw = this[key]; // before toJSON: a Date must not pass as a string
    switch (typeof raw) {
      case "bigint":
        return { $b: raw.toString() };
      case "number":
        if (Object.is(raw, -0)) return { $n: "-0" };
        return Number.isFinite(raw) ? raw : { $n: String(raw) };
      case "undefined":
        return Array.isArray(this) ? { $v: 0 } : undefined;
      case "function":
      case "symbol":
        throw new TypeError(`a ${typeof raw} cannot be sent`);
      case "object": {
        if (raw === null) return raw;
        if (raw instanceof Uint8Array) {
          return { $u: (raw as Uint8Array & { toBase64(): string }).toBase64() };
        }
        if (raw === wrapped) { // the inside of the $o wrapper returned just before
          wrapped = null;
          return raw;
        }
        const ref = seen.get(raw);
        if (ref !== undefined) return { $r: ref };
        if (!Array.isArray(raw)) {
          const proto = Object.getPrototypeOf(raw);
          if (proto !== Object.prototype && proto !== null) {
            const name = (raw as { constructor?: { name?: string } }).constructor?.name ??
              "object";
            throw new TypeError(`a ${name} cannot be sent (plain objects, arrays and SQL values)`);
          }
        }
        seen.set(raw, seen.size);
        if (Array.isArray(raw)) return raw;
        const keys = Object.keys(raw);
        // A plain object that looks like a tag is wrapped so that it decodes as itself.
        if (keys.length === 1 && tags.includes(keys[0])) {
          wrapped = raw;
          return { $o: raw };
        }
        return raw;
      }
      default:
        return raw;
    }
  });
}

/** The inverse of {@link encodeWire}. Objects are numbered in the same (pre-)order. */
export function decodeWire(text: string): unknown {
  const table: object[] = [];
  const walkObject = (o: Record<string, unknown>): Record<string, unknown> => {
    table.push(o);
    for (const k of Object.keys(o)) o[k] = walk(o[k]);
    return o;
  };
  const walk = (v: unknown): unknown => {
    if (v === null || typeof v !== "object") return v;
    if (Array.isArray(v)) {
      table.push(v);
      for (let i = 0; i < v.length; i++) v[i] = walk(v[i]);
      return v;
    }
    const o = v as Record<string, unknown>;
    const keys = Object.keys(o);
    if (keys.length === 1) {
      const t = o[keys[0]];
      switch (keys[0]) {
        case "$b":
          return BigInt(t as string);
        case "$u":
          return (Uint8Array as unknown as { fromBase64(s: string): Uint8Array }).fromBase64(
            t as string,
          );
        case "$n":
          return Number(t);
        case "$v":
          return undefined;
        case "$r":
          return table[t as number];
        case "$o":
          return walkObject(t as Record<string, unknown>);
      }
    }
    return walkObject(o);
  };
  return (walk(JSON.parse(text)) as { v: unknown }).v;
}

/** `text` as one frame: 4-byte big-endian length, then UTF-8. */
export function frame(text: string): Uint8Array {
  const body = new TextEncoder().encode(text);
  const out = new Uint8Array(4 + body.length);
  new DataView(out.buffer).setUint32(0, body.length);
  out.set(body, 4);
  return out;
}

/** A frame that breaks the protocol (too large): the peer is replaced. */
export class FrameError extends Error {
  /** @param message what was wrong */
  constructor(message: string) {
    super(message);
    this.name = "FrameError";
  }
}

/** The frames of a byte stream, as text. Throws {@link FrameError} on an oversized frame. */
export async function* readFrames(stream: AsyncIterable<Uint8Array>): AsyncGenerator<string> {
  const decoder = new TextDecoder();
  let buf: Uint8Array = new Uint8Array(0);
  for await (const chunk of stream) {
    buf = buf.length === 0 ? chunk : concat(buf, chunk);
    let at = 0;
    while (buf.length - at >= 4) {
      const len = new DataView(buf.buffer, buf.byteOffset + at, 4).getUint32(0);
      if (len > MAX_FRAME_BYTES) throw new FrameError(`frame of ${len} bytes is too large`);
      if (buf.length - at - 4 < len) break;
      yield decoder.decode(buf.subarray(at + 4, at + 4 + len));
      at += 4 + len;
    }
    buf = at === buf.length ? new Uint8Array(0) : buf.slice(at);
  }
}

/** The chunks of a raw reader (cheaper per message than its ReadableStream). */
export async function* rawChunks(r: { read(p: Uint8Array): Promise<number | null> }) {
  const buf = new Uint8Array(64 * 1024);
  for (;;) {
    const n = await r.read(buf);
    if (n === null) return;
    yield buf.slice(0, n);
  }
}

function concat(a: Uint8Array, b: Uint8Array): Uint8Array {
  const out = new Uint8Array(a.length + b.length);
  out.set(a);
  out.set(b, a.length);
  return out;
}

/**
 * A token bucket for log lines: `burst` lines at once, refilled at `perSecond`. Counts what it
 * drops so one summary line can say how many.
 */
export class LogBudget {
  #tokens: number;
  #last = performance.now();
  /** Lines dropped since the last {@link takeDropped}. */
  #dropped = 0;

  /**
   * @param perSecond lines per second in the long run
   * @param burst lines allowed at once
   */
  constructor(readonly perSecond: number, readonly burst: number) {
    this.#tokens = burst;
  }

  /** Whether one more line may pass now. */
  take(): boolean {
    const now = performance.now();
    this.#tokens = Math.min(this.burst, this.#tokens + (now - this.#last) * this.perSecond / 1000);
    this.#last = now;
    if (this.#tokens >= 1) {
      this.#tokens--;
      return true;
    }
    this.#dropped++;
    return false;
  }

  /** Lines dropped since the last call, and resets the count. */
  takeDropped(): number {
    const n = this.#dropped;
    this.#dropped = 0;
    return n;
  }
}
