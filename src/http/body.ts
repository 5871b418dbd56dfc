/** Reads a request body as text without ever holding more than `limit` bytes. */
import { HaError } from "../errors/mod.ts";

/** Reads `req`'s body; throws HaError("too_large") past `limit` bytes. */
export async function readBody(req: Request, limit: number): Promise<string> {
  const declared = Number(req.headers.get("content-length") ?? NaN);
  if (declared > limit) throw tooLarge(limit);
  if (!req.body) return "";
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
  try {
    return new TextDecoder("utf-8", { fatal: true }).decode(all);
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
