/**
 * Just enough of source map v3 to turn a position in the bundled interceptor back into
 * `file:line:column` of the user's source, for error messages and logged stack traces.
 *
 * @module
 */

/** A position in an original source file (1-based line and column). */
export interface SourcePosition {
  file: string;
  line: number;
  column: number;
}

const B64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
const DIGIT = new Map([...B64].map((c, i) => [c, i]));

/** Decoded segments of one generated line: [genCol, src, srcLine, srcCol] (0-based). */
type Segment = [number, number, number, number];

/** A parsed source map with position lookup. */
export class SourceMap {
  readonly #lines: Segment[][] = [];
  readonly #sources: string[];

  /**
   * @param json the map (`{sources, mappings}`)
   * @param resolveSource turns a `sources` entry into the name to report
   */
  constructor(json: string, resolveSource: (source: string) => string = (s) => s) {
    const map = JSON.parse(json) as { sources?: string[]; mappings?: string };
    this.#sources = (map.sources ?? []).map(resolveSource);
    let src = 0, srcLine = 0, srcCol = 0;
    for (const line of (map.mappings ?? "").split(";")) {
      const segs: Segment[] = [];
      let genCol = 0;
      for (const seg of line.split(",")) {
        if (!seg) continue;
        const f = decodeVlq(seg);
        genCol += f[0];
        if (f.length >= 4) {
          src += f[1];
          srcLine += f[2];
          srcCol += f[3];
          segs.push([genCol, src, srcLine, srcCol]);
        }
      }
      this.#lines.push(segs);
    }
  }

  /**
   * The original position of a generated one (1-based line and column), or null.
   *
   * @example
   * ```ts
   * const map = new SourceMap('{"version":3,"sources":["a.ts"],"mappings":"AAAA"}');
   * map.lookup(1, 1); // { file: "a.ts", line: 1, column: 1 }
   * ```
   */
  lookup(line: number, column: number): SourcePosition | null {
    const segs = this.#lines[line - 1];
    if (!segs || segs.length === 0) return null;
    let best: Segment | null = null;
    for (const s of segs) {
      if (s[0] <= column - 1) best = s;
      else break;
    }
    best ??= segs[0];
    const file = this.#sources[best[1]];
    if (file === undefined) return null;
    return { file, line: best[2] + 1, column: best[3] + 1 };
  }

  /**
   * Rewrites every `url:line:column` in `text` (a stack trace) to the original position.
   *
   * @example
   * ```ts
   * const map = new SourceMap('{"version":3,"sources":["a.ts"],"mappings":"AAAA"}');
   * map.rewrite("at f (blob:x:1:1)", "blob:x"); // "at f (a.ts:1:1)"
   * ```
   */
  rewrite(text: string, url: string): string {
    const re = new RegExp(`${escapeRegExp(url)}:(\\d+):(\\d+)`, "g");
    return text.replace(re, (whole, l: string, c: string) => {
      const p = this.lookup(Number(l), Number(c));
      return p ? `${p.file}:${p.line}:${p.column}` : whole;
    });
  }

  /** The first original position named by `url:line:column` in `text`, or null. */
  firstPosition(text: string, url: string): SourcePosition | null {
    const m = new RegExp(`${escapeRegExp(url)}:(\\d+):(\\d+)`).exec(text);
    return m ? this.lookup(Number(m[1]), Number(m[2])) : null;
  }
}

function decodeVlq(seg: string): number[] {
  const out: number[] = [];
  let value = 0, shift = 0;
  for (const ch of seg) {
    const d = DIGIT.get(ch);
    if (d === undefined) throw new SyntaxError(`bad source map segment "${seg}"`);
    value += (d & 31) << shift;
    if (d & 32) {
      shift += 5;
      continue;
    }
    out.push(value & 1 ? -(value >>> 1) : value >>> 1);
    value = 0;
    shift = 0;
  }
  return out;
}

function escapeRegExp(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}
