/**
 * Backend messages: builds them into one growable buffer; {@link MessageWriter.take}
 * returns the bytes to write and resets it.
 *
 * @example
 * ```ts
 * const out = new MessageWriter();
 * out.readyForQuery("I");
 * await conn.write(out.take());
 * ```
 */
import { AuthRequest, Backend, ErrorField } from "./codes.ts";
import type { ErrorFields } from "./errors.ts";

const encoder = new TextEncoder();
/** Strings up to this length are written in JavaScript when ASCII (encodeInto is an op call). */
const SHORT_TEXT = 64;
/** A lent buffer up to this size is kept for the next {@link MessageWriter.lend}. */
const SPARE_MAX = 64 * 1024;

/** A column of a RowDescription. */
export interface FieldDescription {
  name: string;
  oid: number;
  /** typlen: -1 variable, else bytes. */
  size: number;
  format: number;
}

/**
 * Builds backend messages into one growable buffer; {@link MessageWriter.take}
 * returns the bytes to write and resets it.
 */
export class MessageWriter {
  private buf = new Uint8Array(8192);
  private view = new DataView(this.buf.buffer);
  private pos = 0;
  private msgStart = -1;
  private spare: Uint8Array<ArrayBuffer> | null = null;

  /** Bytes waiting to be written. */
  get length(): number {
    return this.pos;
  }

  /** Returns the accumulated bytes and resets the writer. */
  take(): Uint8Array {
    const out = this.buf.slice(0, this.pos);
    this.pos = 0;
    return out;
  }

  /**
   * Returns the accumulated bytes without copying them (one write per query: `take`'s copy was
   * an allocation each) and moves the writer to another buffer; hand the bytes back with
   * {@link MessageWriter.release} once written, so two buffers take turns.
   */
  lend(): Uint8Array<ArrayBuffer> {
    const out = this.buf.subarray(0, this.pos);
    const next = this.spare ?? new Uint8Array(8192);
    this.spare = null;
    this.buf = next;
    this.view = new DataView(next.buffer);
    this.pos = 0;
    return out;
  }

  /** Takes back bytes from {@link MessageWriter.lend} once nothing reads them any more. */
  release(bytes: Uint8Array<ArrayBuffer>): void {
    if (bytes.buffer.byteLength <= SPARE_MAX) this.spare = new Uint8Array(bytes.buffer);
  }

  private ensure(n: number): void {
    if (this.pos + n <= this.buf.length) return;
    let size = this.buf.length * 2;
    while (size < this.pos + n) size *= 2;
    const next = new Uint8Array(size);
    next.set(this.buf.subarray(0, this.pos));
    this.buf = next;
    this.view = new DataView(next.buffer);
  }

  /** Starts a message of `type` (a {@link Backend} code); finish it with {@link MessageWriter.end}. */
  begin(type: number): this {
    this.ensure(5);
    this.buf[this.pos] = type;
    this.msgStart = this.pos + 1;
    this.pos += 5;
    return this;
  }

  /** Patches the length of the current message. */
  end(): this {
    this.view.setInt32(this.msgStart, this.pos - this.msgStart);
    this.msgStart = -1;
    return this;
  }

  byte(v: number): this {
    this.ensure(1);
    this.buf[this.pos++] = v;
    return this;
  }

  int16(v: number): this {
    this.ensure(2);
    this.view.setInt16(this.pos, v);
    this.pos += 2;
    return this;
  }

  int32(v: number): this {
    this.ensure(4);
    this.view.setInt32(this.pos, v);
    this.pos += 4;
    return this;
  }

  bytes(v: Uint8Array): this {
    this.ensure(v.length);
    this.buf.set(v, this.pos);
    this.pos += v.length;
    return this;
  }

  /** UTF-8 text without terminator. */
  text(s: string): this {
    this.ensure(s.length * 3);
    this.pos += this.utf8(s, this.pos);
    return this;
  }

  /**
   * Writes `s` as UTF-8 at `at` (room for `s.length * 3` bytes ensured); returns the byte count.
   * Short ASCII (names, tags, numbers) byte by byte: the op call of `encodeInto`, with the
   * `subarray` it needs, cost more than the copy.
   */
  private utf8(s: string, at: number): number {
    const n = s.length;
    if (n <= SHORT_TEXT) {
      const b = this.buf;
      let i = 0;
      for (; i < n; i++) {
        const c = s.charCodeAt(i);
        if (c > 0x7f) break;
        b[at + i] = c;
      }
      if (i === n) return n;
    }
    return encoder.encodeInto(s, this.buf.subarray(at)).written;
  }

  /** NUL-terminated UTF-8 text. */
  cstring(s: string): this {
    return this.text(s).byte(0);
  }

  /** A length-prefixed field (int32 length, then text). */
  textField(s: string): this {
    this.ensure(4 + s.length * 3);
    const at = this.pos;
    this.pos += 4;
    const n = this.utf8(s, this.pos);
    this.view.setInt32(at, n);
    this.pos += n;
    return this;
  }

  /** A length-prefixed field of raw bytes, or -1 for null. */
  bytesField(v: Uint8Array | null): this {
    if (v === null) return this.int32(-1);
    return this.int32(v.length).bytes(v);
  }

  // ---- specific messages ----

  authOk(): this {
    return this.begin(Backend.Authentication).int32(AuthRequest.Ok).end();
  }

  authCleartext(): this {
    return this.begin(Backend.Authentication).int32(AuthRequest.CleartextPassword).end();
  }

  authMd5(salt: Uint8Array): this {
    return this.begin(Backend.Authentication).int32(AuthRequest.Md5Password).bytes(salt).end();
  }

  authSasl(mechanisms: string[]): this {
    this.begin(Backend.Authentication).int32(AuthRequest.Sasl);
    for (const m of mechanisms) this.cstring(m);
    return this.byte(0).end();
  }

  authSaslContinue(data: string): this {
    return this.begin(Backend.Authentication).int32(AuthRequest.SaslContinue).text(data).end();
  }

  authSaslFinal(data: string): this {
    return this.begin(Backend.Authentication).int32(AuthRequest.SaslFinal).text(data).end();
  }

  parameterStatus(name: string, value: string): this {
    return this.begin(Backend.ParameterStatus).cstring(name).cstring(value).end();
  }

  backendKeyData(pid: number, secret: number): this {
    return this.begin(Backend.BackendKeyData).int32(pid).int32(secret).end();
  }

  negotiateProtocolVersion(minor: number, unsupported: string[]): this {
    this.begin(Backend.NegotiateProtocolVersion).int32(minor).int32(unsupported.length);
    for (const o of unsupported) this.cstring(o);
    return this.end();
  }

  readyForQuery(status: "I" | "T" | "E"): this {
    return this.begin(Backend.ReadyForQuery).byte(status.charCodeAt(0)).end();
  }

  rowDescription(fields: FieldDescription[]): this {
    this.begin(Backend.RowDescription).int16(fields.length);
    for (const f of fields) {
      this.cstring(f.name).int32(0).int16(0).int32(f.oid).int16(f.size).int32(-1).int16(f.format);
    }
    return this.end();
  }

  parameterDescription(oids: number[]): this {
    this.begin(Backend.ParameterDescription).int16(oids.length);
    for (const o of oids) this.int32(o);
    return this.end();
  }

  commandComplete(tag: string): this {
    return this.begin(Backend.CommandComplete).cstring(tag).end();
  }

  emptyQuery(): this {
    return this.begin(Backend.EmptyQueryResponse).end();
  }

  parseComplete(): this {
    return this.begin(Backend.ParseComplete).end();
  }

  bindComplete(): this {
    return this.begin(Backend.BindComplete).end();
  }

  closeComplete(): this {
    return this.begin(Backend.CloseComplete).end();
  }

  noData(): this {
    return this.begin(Backend.NoData).end();
  }

  portalSuspended(): this {
    return this.begin(Backend.PortalSuspended).end();
  }

  error(f: ErrorFields): this {
    return this.fields(Backend.ErrorResponse, f);
  }

  notice(f: ErrorFields): this {
    return this.fields(Backend.NoticeResponse, f);
  }

  private fields(type: number, f: ErrorFields): this {
    this.begin(type);
    this.byte(ErrorField.Severity).cstring(f.severity);
    this.byte(ErrorField.SeverityRaw).cstring(f.severity);
    this.byte(ErrorField.Code).cstring(f.code);
    this.byte(ErrorField.Message).cstring(f.message);
    if (f.detail) this.byte(ErrorField.Detail).cstring(f.detail);
    if (f.hint) this.byte(ErrorField.Hint).cstring(f.hint);
    if (f.position) this.byte(ErrorField.Position).cstring(String(f.position));
    return this.byte(0).end();
  }
}
