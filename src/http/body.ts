/** Reads a request body as text without ever holding more than `limit` bytes. */
import { HaError } from "../errors/mod.ts";

/**
 * Reads `req`'s body; throws HaError("too_large") past `limit` bytes. A declared
 * Content-Length is checked first (then the body is read at once); a chunked body is
 * read incrementally and cut off at the limit.
 */
export async function readBody(req: Request, limit: number): Promise<string> {
  const declared = Number(req.headers.get("content-length") ?? NaN);
  if (declared > limit) throw tooLarge(limit);
  if (!req.body) return "";
  if (declared >= 0) return decode(new Uint8Array(await req.arrayBuffer()));
  const reader = req.body.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    size += value.byteLength;
    if (size > limit) {
      await reader.cancel().catch(() => {});
      throw tooLarge(limit);
    }
    chunks.push(value);
  }
  const all = new Uint8Array(size);
  let off = 0;
  for (const c of chunks) {
    all.set(c, off);
    off += c.byteLength;
  }
  return decode(all);
}

const utf8 = new TextDecoder("utf-8", { fatal: true });

function decode(bytes: Uint8Array): string {
  try {
    return utf8.decode(bytes);
  } catch {
    throw new HaError("bad_request", "request body is not valid UTF-8");
  }
}

function tooLarge(limit: number): HaError {
  return new HaError(
    "too_large",
    `request body exceeds the limit of ${limit} bytes (--max-body-size)`,
  );
}
