/**
 * A plain TCP connection's bytes written with one `send(2)` through FFI instead of
 * `Deno.Conn.write` (an async op: resource lookup, a future and a promise per write, ~1–1.5 µs
 * of CPU on top of the syscall, once per query: issue 13). Linux only, IPv4 only, plain
 * connections only (a TLS connection's socket carries ciphertext: never through here).
 *
 * Deno does not expose a connection's file descriptor, so it is found once per connection among
 * the process's sockets by its local and peer address (both sides' address and port: unique for
 * a connected TCP socket): a probe of every descriptor number (~0.3 ms with 1000 open), so the
 * caller attaches only once a connection has shown it is not short-lived. The send is non-blocking; whatever it does not take (a full socket
 * buffer, an error) is left to `Deno.Conn.write`, which waits or reports the error as before. The
 * caller must {@link SocketSender.detach} before it closes the connection: a closed descriptor's
 * number may be reused by another file at once. `HA_PG_FFI_SEND=0` turns it off.
 *
 * @example
 * ```ts
 * const sender = SocketSender.attach(conn); // null: use conn.write
 * const n = sender?.send(bytes) ?? 0; // bytes taken; write the rest with conn.write
 * sender?.detach(); conn.close();
 * ```
 * @module
 */

const SYMBOLS = {
  send: { parameters: ["i32", "buffer", "u32", "i32"], result: "i32" },
  getsockname: { parameters: ["i32", "buffer", "buffer"], result: "i32" },
  getpeername: { parameters: ["i32", "buffer", "buffer"], result: "i32" },
} as const;

const MSG_DONTWAIT = 0x40;
const MSG_NOSIGNAL = 0x4000;
const AF_INET = 2;

let lib: Deno.DynamicLibrary<typeof SYMBOLS> | null | undefined;

function libc(): Deno.DynamicLibrary<typeof SYMBOLS> | null {
  if (lib !== undefined) return lib;
  lib = null;
  try {
    if (Deno.build.os === "linux" && Deno.env.get("HA_PG_FFI_SEND") !== "0") {
      lib = Deno.dlopen("libc.so.6", SYMBOLS);
    }
  } catch { /* no FFI or env permission, or no glibc: Deno.Conn.write */ }
  return lib;
}

/** An IPv4 address and port as `getsockname` writes them (sockaddr_in). */
function sameInet(sa: Uint8Array, addr: Deno.NetAddr): boolean {
  if ((sa[0] | (sa[1] << 8)) !== AF_INET || ((sa[2] << 8) | sa[3]) !== addr.port) return false;
  return `${sa[4]}.${sa[5]}.${sa[6]}.${sa[7]}` === addr.hostname;
}

/**
 * The descriptor numbers to look at: below the fd table's size (`FDSize`; reading the directory
 * `/proc/self/fd` cost ~2.6 ms with 1000 files open, probing 1000 numbers ~0.3 ms).
 */
function fdLimit(): number {
  const m = /^FDSize:\s*(\d+)/m.exec(Deno.readTextFileSync("/proc/self/status"));
  return m ? Number(m[1]) : 0;
}

/** The descriptor of the connected IPv4 socket with these addresses, or -1 (none or several). */
function findFd(c: Deno.DynamicLibrary<typeof SYMBOLS>, local: Deno.NetAddr, peer: Deno.NetAddr) {
  const sa = new Uint8Array(128);
  const len = new Uint32Array(1);
  const lenBytes = new Uint8Array(len.buffer);
  let found = -1;
  for (let fd = 0, n = fdLimit(); fd < n; fd++) {
    len[0] = sa.length;
    if (c.symbols.getsockname(fd, sa, lenBytes) !== 0 || !sameInet(sa, local)) continue;
    len[0] = sa.length;
    if (c.symbols.getpeername(fd, sa, lenBytes) !== 0 || !sameInet(sa, peer)) continue;
    if (found >= 0) return -1;
    found = fd;
  }
  return found;
}

/** `send(2)` on one plain TCP connection's descriptor. */
export class SocketSender {
  private constructor(
    private readonly c: Deno.DynamicLibrary<typeof SYMBOLS>,
    private fd: number,
  ) {}

  /** A sender for `conn` (a plain IPv4 TCP connection on Linux), or null. */
  static attach(conn: Deno.Conn): SocketSender | null {
    const c = libc();
    if (!c) return null;
    try {
      const local = conn.localAddr as Deno.NetAddr;
      const peer = conn.remoteAddr as Deno.NetAddr;
      if (local.transport !== "tcp" || peer.transport !== "tcp") return null;
      const fd = findFd(c, local, peer);
      return fd < 0 ? null : new SocketSender(c, fd);
    } catch {
      return null;
    }
  }

  /** Writes what the socket takes at once without blocking; returns how many bytes (0 on error). */
  send(bytes: Uint8Array): number {
    if (this.fd < 0) return 0;
    const n = this.c.symbols.send(this.fd, bytes, bytes.length, MSG_DONTWAIT | MSG_NOSIGNAL);
    return n > 0 ? n : 0;
  }

  /** Never touches the descriptor again (call before the connection closes). */
  detach(): void {
    this.fd = -1;
  }
}
