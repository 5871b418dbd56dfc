/**
 * A cache of the simple protocol's auto-parameterized statements by shape: pgbench's point
 * select is new text on every query (`… WHERE aid = 4711`, then `… WHERE aid = 815`), and each
 * one was split, lexed, classified and auto-parameterized afresh (`auto_param.ts`). One scan
 * here replaces the standalone decimal integers and plain `'…'` strings of the text by slots;
 * the text with its slots is the key. A plan is kept only when the full path (split, classify,
 * auto-parameterize) bound exactly the literals in the slots, checked on the lexer's tokens of
 * the text the plan was learnt from; later texts of the same shape then get the same statement
 * (the rewritten SQL is the text outside the slots) with their own values bound.
 *
 * Why a hit is what the full path gives: texts of one key differ only inside the slots, and a
 * slot is a whole number or string token to the lexer (it was for the learnt text, and the
 * lexer's state at a slot depends only on the text before it, which the key fixes). So the
 * split, the classification (it looks at words and punctuation, never at a literal's value)
 * and the auto-parameterization's shape see the same tokens; what depends on a value is
 * checked per hit: an integer must fit 64 bits, and a text holding NUL (the key's slot marker)
 * is never looked up.
 *
 * @example
 * ```ts
 * const plan = cachedPlan("SELECT abalance FROM accounts WHERE aid = 815"); // after one learnt
 * plan?.params; // [815n]
 * ```
 */
import type { SqlValue } from "../engine/types.ts";
import type { AutoParameterized } from "./auto_param.ts";
import type { Classified } from "./catalog.ts";
import { tokenize } from "./sql.ts";

/** The statement a simple query of a known shape runs, and its bound values. */
export interface SimplePlan {
  stmt: Extract<Classified, { kind: "sql" }>;
  params: SqlValue[];
}

/** A text's shape: the key, and where its slots are (start, end pairs; kinds). */
interface Scan {
  key: string;
  bounds: number[];
  kinds: string;
}

/** Longer texts are not cached (nor is a shape with more slots). */
const MAX_CHARS = 1000;
const MAX_SLOTS = 32;
/** Shapes kept; the cache starts afresh when full. */
const MAX_SHAPES = 256;
const INT64_MAX = 9223372036854775807n;

const shapes = new Map<string, Extract<Classified, { kind: "sql" }>>();

function isIdentCode(n: number): boolean {
  return (n >= 97 && n <= 122) || (n >= 65 && n <= 90) || (n >= 48 && n <= 57) || n === 95 ||
    n === 36 || n >= 0x80;
}

/** A number token's characters to the lexer (`[0-9A-Za-z_.]`). */
function isNumberCode(n: number): boolean {
  return (n >= 48 && n <= 57) || (n >= 65 && n <= 90) || (n >= 97 && n <= 122) || n === 95 ||
    n === 46;
}

/** The end of a quoted run starting at `i` (closing `close`, doubled to escape), or -1. */
function quoteEnd(sql: string, i: number, close: string, doubles: boolean): number {
  let j = i + 1;
  for (;;) {
    const e = sql.indexOf(close, j);
    if (e < 0) return -1;
    if (doubles && sql.charCodeAt(e + 1) === close.charCodeAt(0)) {
      j = e + 2;
      continue;
    }
    return e + 1;
  }
}

/**
 * The shape of `sql`: standalone decimal integers (`n`) and plain strings (`s`) become slots.
 * Null when the text is not to be cached (too long, NUL, an unterminated quote or comment).
 */
export function scanShape(sql: string): Scan | null {
  const n = sql.length;
  if (n > MAX_CHARS || sql.includes("\0")) return null;
  let kinds = "";
  const bounds: number[] = [];
  let i = 0;
  while (i < n) {
    const c = sql.charCodeAt(i);
    if (c === 45 /* - */ && sql.charCodeAt(i + 1) === 45) {
      const e = sql.indexOf("\n", i);
      i = e < 0 ? n : e + 1;
    } else if (c === 47 /* / */ && sql.charCodeAt(i + 1) === 42 /* * */) {
      const e = sql.indexOf("*/", i + 2);
      if (e < 0) return null;
      i = e + 2;
    } else if (c === 39 /* ' */) {
      const e = quoteEnd(sql, i, "'", true);
      if (e < 0) return null;
      // E'…', X'…', N'…': a prefix makes it something else; it stays in the key.
      if (i === 0 || !isIdentCode(sql.charCodeAt(i - 1))) {
        if (kinds.length === MAX_SLOTS) return null;
        bounds.push(i, e);
        kinds += "s";
      }
      i = e;
    } else if (c === 34 /* " */ || c === 96 /* ` */ || c === 91 /* [ */) {
      const e = c === 91 ? quoteEnd(sql, i, "]", false) : quoteEnd(sql, i, sql[i], true);
      if (e < 0) return null;
      i = e;
    } else if (c >= 48 && c <= 57) {
      let j = i + 1;
      let digits = true;
      while (j < n) {
        const d = sql.charCodeAt(j);
        if (!isNumberCode(d)) break;
        if (d < 48 || d > 57) {
          digits = false;
          // An exponent's sign belongs to the number, as to the lexer (1e+5).
          const s = sql.charCodeAt(j + 1);
          if ((d === 69 || d === 101) && (s === 43 || s === 45)) j++;
        }
        j++;
      }
      const prev = i === 0 ? 32 : sql.charCodeAt(i - 1);
      if (digits && !isIdentCode(prev) && prev !== 46 /* . */ && prev !== 58 /* : */) {
        if (kinds.length === MAX_SLOTS) return null;
        bounds.push(i, j);
        kinds += "n";
      }
      i = j;
    } else if (isIdentCode(c)) {
      let j = i + 1;
      while (j < n && isIdentCode(sql.charCodeAt(j))) j++;
      i = j;
    } else {
      i++;
    }
  }
  if (kinds.length === 0) return null;
  // The key: the text with each slot as NUL and its kind.
  let key = "";
  let at = 0;
  for (let k = 0; k < kinds.length; k++) {
    key += sql.slice(at, bounds[2 * k]) + "\0" + kinds[k];
    at = bounds[2 * k + 1];
  }
  return { key: key + sql.slice(at), bounds, kinds };
}

/** The values of a scan's slots, or null when one cannot be bound as the full path would. */
function slotValues(sql: string, s: Scan): SqlValue[] | null {
  const out: SqlValue[] = [];
  for (let k = 0; k < s.kinds.length; k++) {
    const text = sql.slice(s.bounds[2 * k], s.bounds[2 * k + 1]);
    if (s.kinds.charCodeAt(k) === 110 /* n */) {
      const v = BigInt(text);
      if (text.length > 18 && v > INT64_MAX) return null;
      out.push(v);
    } else {
      const body = text.slice(1, -1);
      out.push(body.includes("''") ? body.replaceAll("''", "'") : body);
    }
  }
  return out;
}

/** The plan of a text whose shape was learnt, or null (the full path then runs). */
export function cachedPlan(sql: string): SimplePlan | null {
  if (shapes.size === 0) return null;
  const s = scanShape(sql);
  if (!s) return null;
  const stmt = shapes.get(s.key);
  if (!stmt) return null;
  const params = slotValues(sql, s);
  return params ? { stmt, params } : null;
}

/**
 * Learns the shape of `sql` from what the full path made of it: its one statement `stmt`
 * (already rewritten) and the auto-parameterization `ap` of that statement's text `part` (as
 * classified: the tokens must be the text's own, from its first one that is not a `;`).
 * Kept only when the bound literals are exactly the shape's slots.
 */
export function learnPlan(
  sql: string,
  part: string,
  stmt: Extract<Classified, { kind: "sql" }>,
  ap: AutoParameterized,
): void {
  if (stmt.valuesDefault !== undefined) return;
  const s = scanShape(sql);
  if (!s || s.kinds.length !== ap.indices.length) return;
  // The statement's tokens are the text's from its first one that is not a `;`.
  const all = tokenize(sql);
  let first = 0;
  while (first < all.length && all[first].kind === "punct" && all[first].text === ";") first++;
  const own = tokenize(part);
  if (first + own.length > all.length) return;
  for (let k = 0; k < own.length; k++) {
    const a = all[first + k];
    const b = own[k];
    if (a.kind !== b.kind || a.text !== b.text) return;
  }
  for (let k = 0; k < ap.indices.length; k++) {
    const t = all[first + ap.indices[k]];
    const kind = s.kinds[k] === "n" ? "number" : "string";
    if (t.kind !== kind || t.start !== s.bounds[2 * k] || t.end !== s.bounds[2 * k + 1]) return;
  }
  const values = slotValues(sql, s);
  if (!values || values.length !== ap.params.length) return;
  for (let k = 0; k < values.length; k++) if (values[k] !== ap.params[k]) return;
  if (shapes.size >= MAX_SHAPES) shapes.clear();
  shapes.set(s.key, Object.freeze({ ...stmt }));
}

/** Forgets every learnt shape (tests). */
export function clearPlans(): void {
  shapes.clear();
}
