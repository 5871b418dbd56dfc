/**
 * A minimal HTTP/1.1 client for load generators that share the machine with what they measure:
 * keep-alive connections over `Deno.connect`, the request's bytes built once per call, and the
 * answer read into a buffer reused per connection (status line and `content-length` only; no
 * chunked bodies, no redirects). `fetch` costs the `bench lag` client ~220–260 µs of CPU per
 * request on this machine, i.e. a sixth of all the CPU of a 1,000 writes/s run, taken from the
 * three nodes it measures; this costs a fraction of it (docs/perf.md §4).
 *
 * @module
 */

const encoder = new TextEncoder();
const decoder = new TextDecoder();
const HEADER_END = [13, 10, 13, 10];

/** An answer: status and body text. */
export interface RawAnswer {
  status: number;
  body: string;
}

/** One keep-alive connection and its read buffer. */
class Conn {
  private buf = new Uint8Array(16 * 1024);
  constructor(readonly conn: Deno.TcpConn) {}

  /** Sends `req`, reads one whole answer. */
  async roundTrip(req: Uint8Array): Promise<RawAnswer> {
    let off = 0;
    while (off < req.length) off += await this.conn.write(req.subarray(off));
    let len = 0;
    let headEnd = -1;
    let bodyLen = -1;
    let status = 0;
    for (;;) {
      if (len === this.buf.length) {
        const bigger = new Uint8Array(this.buf.length * 2);
        bigger.set(this.buf);
        this.buf = bigger;
      }
      const n = await this.conn.read(this.buf.subarray(len));
      if (n === null) throw new Error("connection closed by the server");
      len += n;
      if (headEnd < 0) {
        headEnd = indexOf(this.buf, len, HEADER_END);
        if (headEnd < 0) continue;
        const head = decoder.decode(this.buf.subarray(0, headEnd));
        status = Number(head.slice(9, 12));
        const m = /\r\ncontent-length:\s*(\d+)/i.exec(head);
        if (!m) throw new Error(`no content-length in the answer: ${head.slice(0, 200)}`);
        bodyLen = Number(m[1]);
      }
      if (len >= headEnd + 4 + bodyLen) {
        const body = decoder.decode(this.buf.subarray(headEnd + 4, headEnd + 4 + bodyLen));
        return { status, body };
      }
    }
  }
}

function indexOf(buf: Uint8Array, len: number, pat: number[]): number {
  outer: for (let i = 0; i + pat.length <= len; i++) {
    for (let j = 0; j < pat.length; j++) if (buf[i + j] !== pat[j]) continue outer;
    return i;
  }
  return -1;
}

/** Keep-alive connections to one `host:port`, opened on demand, reused once answered. */
export class RawHttpPool {
  private readonly idle: Conn[] = [];
  private readonly all = new Set<Conn>();

  constructor(private readonly host: string, private readonly port: number) {}

  /** POSTs `body` (JSON) to `path`; the caller bounds the requests in flight. */
  async postJson(path: string, body: string): Promise<RawAnswer> {
    const b = encoder.encode(body);
    const head = encoder.encode(
      `POST ${path} HTTP/1.1\r\nhost: ${this.host}:${this.port}\r\n` +
        `content-type: application/json\r\ncontent-length: ${b.length}\r\n\r\n`,
    );
    const req = new Uint8Array(head.length + b.length);
    req.set(head);
    req.set(b, head.length);
    let c = this.idle.pop();
    if (!c) {
      const conn = await Deno.connect({ hostname: this.host, port: this.port });
      conn.setNoDelay(true);
      c = new Conn(conn);
      this.all.add(c);
    }
    try {
      const a = await c.roundTrip(req);
      this.idle.push(c);
      return a;
    } catch (e) {
      this.all.delete(c);
      try {
        c.conn.close();
      } catch { /* closed */ }
      throw e;
    }
  }

  /** Closes every connection. */
  close(): void {
    for (const c of this.all) {
      try {
        c.conn.close();
      } catch { /* closed */ }
    }
    this.all.clear();
    this.idle.length = 0;
  }
}
