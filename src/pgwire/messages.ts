/**
 * PostgreSQL protocol v3 framing and frontend messages: reading them from a
 * connection (with a size limit) and parsing their bodies. Backend messages
 * are built by `backend.ts`.
 *
 * @example
 * ```ts
 * const reader = new FrameReader(conn, DEFAULT_MAX_MESSAGE_BYTES);
 * const frame = await reader.read();
 * if (frame?.type === Frontend.Query) console.log(parseQuery(frame.body));
 * ```
 */
import { Frontend } from "./codes.ts";
import { PgError } from "./errors.ts";

/** Request codes of the untyped first message. */
export const SSL_REQUEST = 80877103;
/** GSSAPI encryption request code. */
export const GSSENC_REQUEST = 80877104;
/** Cancel request code. */
export const CANCEL_REQUEST = 80877102;
/** Protocol 3.0 as sent in a StartupMessage. */
export const PROTOCOL_3_0 = 196608;
/** PostgreSQL's own bound on a startup packet. */
export const MAX_STARTUP_BYTES = 10_000;
/** Default bound on any other message (64 MiB). */
export const DEFAULT_MAX_MESSAGE_BYTES = 64 * 1024 * 1024;

const decoder = new TextDecoder("utf-8", { fatal: true });

/** Up to this many bytes, ASCII is decoded in JavaScript (TextDecoder is an op call). */
const SHORT_ASCII = 64;

/** Decodes UTF-8, turning invalid bytes into a protocol-level error (22021). */
export function utf8(bytes: Uint8Array): string {
  const n = bytes.length;
  if (n <= SHORT_ASCII) {
    let ascii = true;
    for (let i = 0; i < n; i++) {
      if (bytes[i] > 0x7f) {
        ascii = false;
        break;
      }
    }
    // Statement and portal names, parameter values: mostly short ASCII, where the op call of
    // TextDecoder (with its argument checks) costs several times the decoding itself.
    if (ascii) return String.fromCharCode.apply(null, bytes as unknown as number[]);
  }
  try {
    return decoder.decode(bytes);
  } catch {
    throw new PgError("22021", 'invalid byte sequence for encoding "UTF8"');
  }
}

/** Bodies up to this size are copied into a slab of {@link SLAB_BYTES}. */
const SLAB_PIECE = 512;
const SLAB_BYTES = 8192;
const EMPTY = new Uint8Array(0);

/** Anything bytes can be read from (a `Deno.Conn`). */
export interface ByteSource {
  read(p: Uint8Array): Promise<number | null>;
}

/** One frontend message: its type byte (0 for the untyped first message) and body. */
export interface Frame {
  type: number;
  body: Uint8Array;
}

/**
 * Reads frames from a connection. Reads run ahead in the background once
 * {@link FrameReader.watch} is called (so a dropped connection is noticed while a
 * query runs), bounded by a high-water mark; before that, only on demand, so the
 * startup phase never leaves a read pending (TLS hand-off needs that).
 */
export class FrameReader {
  private buf = new Uint8Array(16 * 1024);
  private start = 0;
  private end = 0;
  private pending: Promise<void> | null = null;
  private eof = false;
  private watching = false;
  private drained: (() => void) | null = null;
  private closeHandlers: (() => void)[] = [];
  private slab = EMPTY;
  private slabUsed = SLAB_BYTES; // full: the first body allocates a slab

  constructor(
    private readonly conn: ByteSource,
    private readonly maxMessageBytes: number = DEFAULT_MAX_MESSAGE_BYTES,
    private readonly highWater = 1024 * 1024,
  ) {}

  /** Whether the peer closed the connection (or reading failed). */
  get closed(): boolean {
    return this.eof;
  }

  /** Bytes received but not consumed yet. */
  get buffered(): number {
    return this.end - this.start;
  }

  /** Calls `fn` once the connection closes. */
  onClose(fn: () => void): void {
    if (this.eof) fn();
    else this.closeHandlers.push(fn);
  }

  /** Starts reading ahead in the background (after start-up). */
  watch(): void {
    if (this.watching) return;
    this.watching = true;
    void this.pump();
  }

  /** Stops background reading; a pending read still completes into the buffer. */
  stop(): void {
    this.watching = false;
    this.wakePump();
  }

  /**
   * The next untyped start-up packet (length-prefixed, no type byte), or null
   * at end of stream. Bodies exclude the length word.
   */
  async readStartup(): Promise<Uint8Array | null> {
    while (this.buffered < 4) {
      if (this.eof) return this.endOfStream();
      await this.readMore();
    }
    const len = this.int32At(this.start);
    if (len < 8 || len > MAX_STARTUP_BYTES) {
      throw new PgError("08P01", "invalid length of startup packet", { fatal: true });
    }
    while (this.buffered < len) {
      if (this.eof) return this.endOfStream();
      await this.readMore();
    }
    const body = this.buf.slice(this.start + 4, this.start + len);
    this.consume(len);
    return body;
  }

  /** Whether the next buffered message is a complete Sync (the client's batch ends there). */
  nextIsSync(): boolean {
    return this.buffered >= 5 && this.buf[this.start] === Frontend.Sync;
  }

  /**
   * The next typed message if it is buffered whole, without a promise (a client's Bind,
   * Describe, Execute and Sync come in one packet); undefined otherwise, and for anything
   * {@link FrameReader.read} would refuse (it reports why).
   */
  tryRead(): Frame | undefined {
    if (this.buffered < 5) return undefined;
    const len = this.int32At(this.start + 1);
    if (len < 4 || len > this.maxMessageBytes || this.buffered < len + 1) return undefined;
    const type = this.buf[this.start];
    const body = this.copy(this.start + 5, this.start + 1 + len);
    this.consume(len + 1);
    return { type, body };
  }

  /** The next typed message, or null at end of stream; `limit` lowers the size limit. */
  async read(limit = this.maxMessageBytes): Promise<Frame | null> {
    while (this.buffered < 5) {
      if (this.eof) return this.endOfStream();
      await this.readMore();
    }
    const type = this.buf[this.start];
    const len = this.int32At(this.start + 1);
    if (len < 4) {
      throw new PgError("08P01", `invalid message length ${len}`, { fatal: true });
    }
    if (len > limit) {
      throw new PgError(
        limit < this.maxMessageBytes ? "08P01" : "54000",
        `message of ${len} bytes exceeds the limit of ${limit} bytes`,
        { fatal: true },
      );
    }
    while (this.buffered < len + 1) {
      if (this.eof) return this.endOfStream();
      await this.readMore(len + 1);
    }
    const body = this.copy(this.start + 5, this.start + 1 + len);
    this.consume(len + 1);
    return { type, body };
  }

  /** Returns the not yet consumed bytes and empties the buffer (for a TLS hand-off). */
  drain(): Uint8Array {
    const rest = this.buf.slice(this.start, this.end);
    this.start = this.end = 0;
    return rest;
  }

  /**
   * A copy of `buf[from, to)`: small bodies are carved out of a shared slab (a view, no backing
   * store of its own: several messages per query each allocated one with `slice`); a slab is
   * never written twice, so a body stays valid for as long as it is referenced.
   */
  private copy(from: number, to: number): Uint8Array {
    const n = to - from;
    if (n === 0) return EMPTY; // Sync, Flush: nothing to keep
    if (n > SLAB_PIECE) return this.buf.slice(from, to);
    if (this.slabUsed + n > SLAB_BYTES) {
      this.slab = new Uint8Array(SLAB_BYTES);
      this.slabUsed = 0;
    }
    const at = this.slabUsed;
    this.slab.set(this.buf.subarray(from, to), at);
    this.slabUsed += n;
    return this.slab.subarray(at, at + n);
  }

  private endOfStream(): null {
    if (this.buffered > 0) {
      throw new PgError("08P01", "unexpected end of stream inside a message", { fatal: true });
    }
    return null;
  }

  private int32At(i: number): number {
    const b = this.buf;
    return ((b[i] << 24) | (b[i + 1] << 16) | (b[i + 2] << 8) | b[i + 3]) | 0;
  }

  private consume(n: number): void {
    this.start += n;
    // Rewind only with no read pending: a pending read lands at the old offset.
    if (this.start === this.end && !this.pending) this.start = this.end = 0;
    this.wakePump();
  }

  private wakePump(): void {
    const d = this.drained;
    this.drained = null;
    d?.();
  }

  /** Ensures room for `need` buffered bytes; only called with no read pending. */
  private makeRoom(need: number): void {
    const used = this.end - this.start;
    const want = Math.max(need, used + 8192);
    if (this.buf.length - this.end >= 8192 && this.buf.length - this.start >= want) return;
    if (this.buf.length >= want && this.start > 0) {
      this.buf.copyWithin(0, this.start, this.end);
    } else if (this.buf.length < want) {
      let size = this.buf.length;
      while (size < want) size *= 2;
      const next = new Uint8Array(size);
      next.set(this.buf.subarray(this.start, this.end));
      this.buf = next;
    } else {
      return;
    }
    this.start = 0;
    this.end = used;
  }

  /** One read into the buffer, shared by concurrent waiters. */
  private readMore(need = 0): Promise<void> {
    if (this.pending) return this.pending;
    if (this.eof) return Promise.resolve();
    this.makeRoom(need);
    const target = this.buf;
    const at = this.end;
    this.pending = this.conn.read(target.subarray(at)).then(
      (n) => {
        this.pending = null;
        if (n === null) this.markEof();
        else this.end += n;
      },
      () => {
        this.pending = null;
        this.markEof();
      },
    );
    return this.pending;
  }

  private markEof(): void {
    if (this.eof) return;
    this.eof = true;
    for (const fn of this.closeHandlers.splice(0)) fn();
  }

  private async pump(): Promise<void> {
    while (this.watching && !this.eof) {
      if (this.buffered >= this.highWater) {
        await new Promise<void>((resolve) => this.drained = resolve);
        continue;
      }
      await this.readMore();
    }
  }
}

/** Reads fields from a message body, raising 08P01 on truncation. */
export class BodyReader {
  private pos = 0;

  /** Reads integers byte by byte: a DataView per message cost ~2 % of the main thread. */
  constructor(private readonly body: Uint8Array) {}

  /** Bytes left. */
  get remaining(): number {
    return this.body.length - this.pos;
  }

  private need(n: number): void {
    if (n < 0 || this.pos + n > this.body.length) {
      throw new PgError("08P01", "insufficient data left in message");
    }
  }

  byte(): number {
    this.need(1);
    return this.body[this.pos++];
  }

  int16(): number {
    this.need(2);
    const b = this.body;
    const p = this.pos;
    this.pos += 2;
    return ((b[p] << 24) | (b[p + 1] << 16)) >> 16;
  }

  int32(): number {
    this.need(4);
    const b = this.body;
    const p = this.pos;
    this.pos += 4;
    return (b[p] << 24) | (b[p + 1] << 16) | (b[p + 2] << 8) | b[p + 3];
  }

  bytes(n: number): Uint8Array {
    this.need(n);
    const v = this.body.subarray(this.pos, this.pos + n);
    this.pos += n;
    return v;
  }

  /** The rest of the body. */
  rest(): Uint8Array {
    const v = this.body.subarray(this.pos);
    this.pos = this.body.length;
    return v;
  }

  /** A NUL-terminated UTF-8 string. */
  cstring(): string {
    const end = this.body.indexOf(0, this.pos);
    if (end < 0) throw new PgError("08P01", "invalid string in message");
    if (end === this.pos) {
      this.pos++;
      return ""; // the unnamed statement and portal: no view, no decoding
    }
    const s = utf8(this.body.subarray(this.pos, end));
    this.pos = end + 1;
    return s;
  }

  /** Raises 08P01 unless the whole body was consumed. */
  done(): void {
    if (this.pos !== this.body.length) throw new PgError("08P01", "invalid message format");
  }
}

/** A parsed StartupMessage. */
export interface StartupMessage {
  major: number;
  minor: number;
  params: Record<string, string>;
}

/** Parses the body (after the length word) of a StartupMessage. */
export function parseStartup(body: Uint8Array): StartupMessage {
  const r = new BodyReader(body);
  const version = r.int32();
  const params: Record<string, string> = {};
  while (r.remaining > 0) {
    const key = r.cstring();
    if (key === "") break;
    params[key] = r.cstring();
  }
  return { major: version >>> 16, minor: version & 0xffff, params };
}

/** Parse ('P'). */
export interface ParseMessage {
  name: string;
  sql: string;
  paramOids: number[];
}

/** Parses a Parse message body. */
export function parseParse(body: Uint8Array): ParseMessage {
  const r = new BodyReader(body);
  const name = r.cstring();
  const sql = r.cstring();
  const n = r.int16();
  if (n < 0) throw new PgError("08P01", "invalid parameter count");
  const paramOids: number[] = [];
  for (let i = 0; i < n; i++) paramOids.push(r.int32() >>> 0);
  r.done();
  return { name, sql, paramOids };
}

/** Bind ('B'). Parameter values are raw bytes or null. */
export interface BindMessage {
  portal: string;
  statement: string;
  paramFormats: number[];
  params: (Uint8Array | null)[];
  resultFormats: number[];
}

function formatCodes(r: BodyReader): number[] {
  const n = r.int16();
  if (n < 0) throw new PgError("08P01", "invalid format code count");
  const codes: number[] = [];
  for (let i = 0; i < n; i++) {
    const c = r.int16();
    if (c !== 0 && c !== 1) throw new PgError("08P01", `invalid format code: ${c}`);
    codes.push(c);
  }
  return codes;
}

/** Parses a Bind message body. */
export function parseBind(body: Uint8Array): BindMessage {
  const r = new BodyReader(body);
  const portal = r.cstring();
  const statement = r.cstring();
  const paramFormats = formatCodes(r);
  const n = r.int16();
  if (n < 0) throw new PgError("08P01", "invalid parameter count");
  if (paramFormats.length > 1 && paramFormats.length !== n) {
    throw new PgError(
      "08P01",
      `bind message has ${paramFormats.length} parameter formats but ${n} parameters`,
    );
  }
  const params: (Uint8Array | null)[] = [];
  for (let i = 0; i < n; i++) {
    const len = r.int32();
    if (len === -1) params.push(null);
    else if (len < 0) throw new PgError("08P01", "invalid parameter length");
    else params.push(r.bytes(len));
  }
  const resultFormats = formatCodes(r);
  r.done();
  return { portal, statement, paramFormats, params, resultFormats };
}

/** Describe ('D') / Close ('C'): kind 'S' (statement) or 'P' (portal) and a name. */
export interface TargetMessage {
  kind: "S" | "P";
  name: string;
}

/** Parses a Describe or Close message body. */
export function parseTarget(body: Uint8Array): TargetMessage {
  const r = new BodyReader(body);
  const kind = String.fromCharCode(r.byte());
  if (kind !== "S" && kind !== "P") {
    throw new PgError("08P01", `invalid DESCRIBE/CLOSE message subtype ${JSON.stringify(kind)}`);
  }
  const name = r.cstring();
  r.done();
  return { kind, name };
}

/** Execute ('E'). `maxRows` 0 = all. */
export interface ExecuteMessage {
  portal: string;
  maxRows: number;
}

/** Parses an Execute message body. */
export function parseExecute(body: Uint8Array): ExecuteMessage {
  const r = new BodyReader(body);
  const portal = r.cstring();
  const maxRows = r.int32();
  r.done();
  return { portal, maxRows: maxRows < 0 ? 0 : maxRows };
}

/** Parses a Query message body. */
export function parseQuery(body: Uint8Array): string {
  const r = new BodyReader(body);
  const sql = r.cstring();
  r.done();
  return sql;
}
