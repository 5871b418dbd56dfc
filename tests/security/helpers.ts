/**
 * Support for the security tests: which addresses a port listens on (Linux `/proc/net/tcp*`),
 * raw TCP exchanges, and waiting for the server to close a connection.
 */
import { waitFor } from "../integration/helpers/cluster.ts";

export { waitFor };

/** Local addresses (`127.0.0.1`, `0.0.0.0`, `::`, …) listening on `port`, from /proc. */
export function listeningAddresses(port: number): string[] {
  const out: string[] = [];
  for (const file of ["/proc/net/tcp", "/proc/net/tcp6"]) {
    let text = "";
    try {
      text = Deno.readTextFileSync(file);
    } catch {
      continue;
    }
    for (const line of text.split("\n").slice(1)) {
      const f = line.trim().split(/\s+/);
      if (f.length < 4 || f[3] !== "0A") continue;
      const [hex, portHex] = f[1].split(":");
      if (parseInt(portHex, 16) !== port) continue;
      out.push(hex.length === 8 ? ipv4(hex) : ipv6(hex));
    }
  }
  return out;
}

function ipv4(hex: string): string {
  return [3, 2, 1, 0].map((i) => parseInt(hex.slice(i * 2, i * 2 + 2), 16)).join(".");
}

function ipv6(hex: string): string {
  if (/^0+$/.test(hex)) return "::";
  if (hex === "00000000000000000000000001000000") return "::1";
  return hex;
}

/** Opens a TCP connection to 127.0.0.1:`port` and writes `data`. */
export async function openRaw(port: number, data: string | Uint8Array = ""): Promise<Deno.Conn> {
  const c = await Deno.connect({ hostname: "127.0.0.1", port });
  const bytes = typeof data === "string" ? new TextEncoder().encode(data) : data;
  try {
    for (let o = 0; o < bytes.length;) o += await c.write(bytes.subarray(o));
  } catch { /* the server may close before reading everything */ }
  return c;
}

/**
 * Reads until the server closes the connection (or `limitMs` passes, a generous bound for a
 * broken server); returns what was read and whether the server closed it.
 */
export async function readUntilClosed(
  c: Deno.Conn,
  limitMs = 30_000,
): Promise<{ text: string; closed: boolean }> {
  const chunks: Uint8Array[] = [];
  const buf = new Uint8Array(65536);
  let timer: ReturnType<typeof setTimeout> | undefined;
  const limit = new Promise<"limit">((r) => timer = setTimeout(() => r("limit"), limitMs));
  let closed = false;
  try {
    for (;;) {
      const n = await Promise.race([c.read(buf).catch(() => null), limit]);
      if (n === "limit") break;
      if (n === null) {
        closed = true;
        break;
      }
      chunks.push(buf.slice(0, n));
    }
  } finally {
    clearTimeout(timer);
    try {
      c.close();
    } catch { /* closed */ }
  }
  const all = new Uint8Array(chunks.reduce((n, b) => n + b.length, 0));
  let o = 0;
  for (const b of chunks) {
    all.set(b, o);
    o += b.length;
  }
  return { text: new TextDecoder().decode(all), closed };
}

/** POSTs `body` with `headers` (no content type unless given); status and text. */
export async function postRaw(
  url: string,
  body: string,
  headers: Record<string, string> = {},
): Promise<{ status: number; text: string }> {
  const r = await fetch(url, { method: "POST", body, headers });
  return { status: r.status, text: await r.text() };
}
