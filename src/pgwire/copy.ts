/**
 * `COPY … FROM STDIN` and `COPY … TO STDOUT` on the wire (psql's `\copy`, drivers' bulk loads):
 * parsing the statement (PostgreSQL's option list and the old `WITH CSV HEADER` spelling), and
 * the text and CSV row formats in both directions. The session runs the protocol; rows read
 * are inserted with ordinary multi-row INSERTs in one transaction (so they get cluster ids and
 * are replicated like any write).
 *
 * @example
 * ```ts
 * const cmd = parseCopy("COPY t (a, b) FROM STDIN WITH (FORMAT csv, HEADER)");
 * const dec = new CopyDecoder(cmd);
 * dec.push("a,b\n1,x\n"); dec.finish(); // [["1", "x"]]
 * encodeCopyRow(["1", null], cmd);       // "1,\n"
 * ```
 * @module
 */
import type { SqlValue } from "../engine/types.ts";
import { PgError } from "./errors.ts";
import { type Token, tokenize } from "./sql.ts";
import { byteaHex, encodeText, OID } from "./types.ts";

/** A parsed COPY statement. */
export interface CopyCommand {
  direction: "from" | "to";
  /** The table (as written, quotes kept), or null for `COPY (query) TO`. */
  table: string | null;
  /** Column list (as written, quotes kept); empty = all columns. */
  columns: string[];
  /** `COPY (query) TO STDOUT`: the query. */
  query: string | null;
  format: "text" | "csv";
  header: boolean;
  delimiter: string;
  null: string;
  quote: string;
  escape: string;
}

function unquoteString(t: Token | undefined): string {
  if (!t) throw new PgError("42601", "COPY: an option value is missing");
  if (t.kind === "string") return t.text.slice(1, -1).replaceAll("''", "'");
  return t.kind === "word" ? t.text.toLowerCase() : t.text;
}

/** Parses a COPY statement; throws 0A000 for what is not supported (files, programs, binary). */
export function parseCopy(sql: string): CopyCommand {
  const ts = tokenize(sql).filter((t) => t.text !== ";");
  let i = 1;
  const cmd: CopyCommand = {
    direction: "from",
    table: null,
    columns: [],
    query: null,
    format: "text",
    header: false,
    delimiter: "\t",
    null: "\\N",
    quote: '"',
    escape: '"',
  };
  if (ts[i]?.text === "(") {
    let depth = 0;
    let j = i;
    for (; j < ts.length; j++) {
      if (ts[j].text === "(") depth++;
      else if (ts[j].text === ")" && --depth === 0) break;
    }
    cmd.query = sql.slice(ts[i + 1].start, ts[j - 1].end);
    i = j + 1;
  } else {
    const start = ts[i];
    if (!start) throw new PgError("42601", "COPY: a table name is expected");
    let end = i;
    while (ts[end + 1]?.text === "." && ts[end + 2]) end += 2;
    cmd.table = sql.slice(start.start, ts[end].end).replace(/^public\./i, "");
    i = end + 1;
    if (ts[i]?.text === "(") {
      i++;
      while (ts[i] && ts[i].text !== ")") {
        if (ts[i].text !== ",") cmd.columns.push(sql.slice(ts[i].start, ts[i].end));
        i++;
      }
      i++;
    }
  }
  const dir = ts[i]?.text;
  if (dir !== "FROM" && dir !== "TO") throw new PgError("42601", "COPY: FROM or TO is expected");
  cmd.direction = dir === "FROM" ? "from" : "to";
  const target = ts[i + 1]?.text;
  if (target !== "STDIN" && target !== "STDOUT") {
    throw new PgError(
      "0A000",
      "COPY to or from a file or program is not supported by ha: use STDIN/STDOUT (psql's \\copy)",
    );
  }
  if ((cmd.direction === "from") !== (target === "STDIN")) {
    throw new PgError("42601", `COPY ${dir} ${target} is not valid`);
  }
  if (cmd.query !== null && cmd.direction === "from") {
    throw new PgError("42601", "COPY (query) FROM is not valid");
  }
  i += 2;
  if (ts[i]?.text === "WITH") i++;
  const options = new Map<string, string>();
  if (ts[i]?.text === "(") {
    // (FORMAT csv, HEADER [bool], DELIMITER 'x', NULL 'y', QUOTE, ESCAPE)
    i++;
    while (ts[i] && ts[i].text !== ")") {
      const name = ts[i].text;
      i++;
      let value = "true";
      if (ts[i] && ts[i].text !== "," && ts[i].text !== ")") {
        value = unquoteString(ts[i]);
        i++;
      }
      options.set(name, value);
      if (ts[i]?.text === ",") i++;
    }
  } else {
    // the old spelling: [BINARY] [DELIMITER [AS] 'x'] [NULL [AS] 'y'] [CSV [HEADER] [QUOTE 'q'] …]
    while (ts[i]) {
      const name = ts[i].text;
      i++;
      if (ts[i]?.text === "AS") i++;
      if (name === "CSV" || name === "BINARY") options.set("FORMAT", name.toLowerCase());
      else if (name === "HEADER") options.set("HEADER", "true");
      else if (["DELIMITER", "NULL", "QUOTE", "ESCAPE"].includes(name)) {
        options.set(name, unquoteString(ts[i]));
        i++;
      } else if (name === "FORCE") {
        while (ts[i] && ts[i].text !== "CSV" && ts[i].kind !== "string") i++;
      } else throw new PgError("42601", `COPY: unknown option ${name}`);
    }
  }
  for (const [name, value] of options) {
    switch (name) {
      case "FORMAT":
        if (value !== "text" && value !== "csv") {
          throw new PgError("0A000", `COPY format ${value} is not supported by ha (text, csv)`);
        }
        cmd.format = value;
        break;
      case "HEADER":
        cmd.header = /^(true|on|1|match)$/i.test(value);
        break;
      case "DELIMITER":
        cmd.delimiter = value;
        break;
      case "NULL":
        cmd.null = value;
        break;
      case "QUOTE":
        cmd.quote = value;
        break;
      case "ESCAPE":
        cmd.escape = value;
        break;
      case "ENCODING":
        if (!/^utf-?8$/i.test(value)) {
          throw new PgError("0A000", `COPY encoding ${value} is not supported: ha speaks UTF8`);
        }
        break;
      case "FREEZE":
      case "FORCE_QUOTE":
      case "FORCE_NOT_NULL":
      case "FORCE_NULL":
        break;
      default:
        throw new PgError("42601", `COPY option "${name.toLowerCase()}" not recognized`);
    }
  }
  if (cmd.format === "csv") {
    if (!options.has("DELIMITER")) cmd.delimiter = ",";
    if (!options.has("NULL")) cmd.null = "";
    if (!options.has("ESCAPE")) cmd.escape = cmd.quote;
  }
  if (cmd.delimiter.length !== 1) {
    throw new PgError("22023", "COPY delimiter must be a single one-byte character");
  }
  return cmd;
}

const TEXT_ESCAPES: Record<string, string> = {
  b: "\b",
  f: "\f",
  n: "\n",
  r: "\r",
  t: "\t",
  v: "\v",
};

/** Splits COPY input (arriving in arbitrary chunks) into rows of text values (null = NULL). */
export class CopyDecoder {
  private buf = "";
  private headerSeen = false;
  readonly rows: (string | null)[][] = [];

  constructor(private readonly cmd: CopyCommand) {}

  /** Adds input; complete rows are appended to {@link rows}. */
  push(chunk: string): void {
    this.buf += chunk;
    this.parse(false);
  }

  /** Ends input (a last line without newline counts). */
  finish(): void {
    this.parse(true);
  }

  /** Takes the rows decoded so far. */
  take(): (string | null)[][] {
    return this.rows.splice(0);
  }

  private parse(final: boolean): void {
    let pos = 0;
    for (;;) {
      const r = this.cmd.format === "csv" ? this.csvRow(pos, final) : this.textRow(pos, final);
      if (!r) break;
      pos = r.next;
      if (r.row === null) continue; // end marker
      if (this.cmd.header && !this.headerSeen) {
        this.headerSeen = true;
        continue;
      }
      this.rows.push(r.row);
    }
    this.buf = this.buf.slice(pos);
  }

  private textRow(
    pos: number,
    final: boolean,
  ): { row: (string | null)[] | null; next: number } | null {
    let nl = this.buf.indexOf("\n", pos);
    if (nl < 0) {
      if (!final || pos >= this.buf.length) return null;
      nl = this.buf.length;
    }
    let line = this.buf.slice(pos, nl);
    if (line.endsWith("\r")) line = line.slice(0, -1);
    if (line === "\\.") return { row: null, next: nl + 1 };
    const row = line.split(this.cmd.delimiter).map((f) => {
      if (f === this.cmd.null) return null;
      return f.replace(/\\(x[0-9a-fA-F]{1,2}|[0-7]{1,3}|.)/g, (_m, e: string) => {
        if (e in TEXT_ESCAPES) return TEXT_ESCAPES[e];
        if (e[0] === "x" && e.length > 1) return String.fromCharCode(parseInt(e.slice(1), 16));
        if (/^[0-7]+$/.test(e)) return String.fromCharCode(parseInt(e, 8));
        return e;
      });
    });
    return { row, next: nl + 1 };
  }

  private csvRow(
    pos: number,
    final: boolean,
  ): { row: (string | null)[] | null; next: number } | null {
    const { delimiter, quote, escape } = this.cmd;
    const s = this.buf;
    if (pos >= s.length) return null;
    const row: (string | null)[] = [];
    let field = "";
    let quoted = false;
    let wasQuoted = false;
    let i = pos;
    for (;;) {
      if (i >= s.length) {
        if (!final || quoted) return null;
        break;
      }
      const c = s[i];
      if (quoted) {
        if (c === escape && (s[i + 1] === quote || (escape !== quote && s[i + 1] === escape))) {
          field += s[i + 1];
          i += 2;
          continue;
        }
        // a quote (or escape) at the end of a chunk: the next chunk decides what it is
        if (c === escape && i + 1 >= s.length && !final) return null;
        if (c === quote) {
          quoted = false;
          i++;
          continue;
        }
        field += c;
        i++;
        continue;
      }
      if (c === quote) {
        quoted = true;
        wasQuoted = true;
        i++;
        continue;
      }
      if (c === delimiter) {
        row.push(!wasQuoted && field === this.cmd.null ? null : field);
        field = "";
        wasQuoted = false;
        i++;
        continue;
      }
      if (c === "\n" || c === "\r") {
        i += c === "\r" && s[i + 1] === "\n" ? 2 : 1;
        break;
      }
      field += c;
      i++;
    }
    if (row.length === 0 && !wasQuoted && field === "\\.") return { row: null, next: i };
    row.push(!wasQuoted && field === this.cmd.null ? null : field);
    return { row, next: i };
  }
}

/** Encodes one row for COPY TO (values as text, each per its column's type OID). */
export function encodeCopyRow(values: SqlValue[], oids: number[], cmd: CopyCommand): string {
  const fields = values.map((v, i) => {
    if (v === null) return null;
    return v instanceof Uint8Array ? byteaHex(v) : encodeText(v, oids[i] ?? OID.text) ?? "";
  });
  if (cmd.format === "csv") {
    const special = new RegExp(`[${escapeClass(cmd.delimiter + cmd.quote)}\\r\\n]`);
    return fields.map((f) => {
      if (f === null) return cmd.null;
      if (f === cmd.null || special.test(f) || f === "\\.") {
        return cmd.quote + f.replaceAll(cmd.quote, cmd.escape + cmd.quote) + cmd.quote;
      }
      return f;
    }).join(cmd.delimiter) + "\n";
  }
  return fields.map((f) => {
    if (f === null) return cmd.null;
    return f.replace(/[\\\n\r\t\b\f\v]/g, (c) => {
      switch (c) {
        case "\\":
          return "\\\\";
        case "\n":
          return "\\n";
        case "\r":
          return "\\r";
        case "\t":
          return "\\t";
        case "\b":
          return "\\b";
        case "\f":
          return "\\f";
        default:
          return "\\v";
      }
    }).replaceAll(cmd.delimiter, "\\" + cmd.delimiter);
  }).join(cmd.delimiter) + "\n";
}

function escapeClass(s: string): string {
  return s.replace(/[\\\]\[^-]/g, (c) => "\\" + c);
}

/**
 * A COPY text value as SQLite should store it in a column of this declared type: booleans
 * `t`/`f` → 1/0, bytea `\x…` → bytes, everything else as text (SQLite's affinity makes numbers).
 */
export function copyValue(text: string | null, declType: string): SqlValue {
  if (text === null) return null;
  const t = declType.toUpperCase();
  if (t.startsWith("BOOL")) {
    if (/^(t|true|y|yes|on|1)$/i.test(text)) return 1n;
    if (/^(f|false|n|no|off|0)$/i.test(text)) return 0n;
    throw new PgError("22P02", `invalid input syntax for type boolean: "${text}"`);
  }
  if ((t === "BYTEA" || t === "BLOB") && text.startsWith("\\x")) {
    const hex = text.slice(2);
    const out = new Uint8Array(hex.length / 2);
    for (let i = 0; i < out.length; i++) out[i] = parseInt(hex.slice(2 * i, 2 * i + 2), 16);
    return out;
  }
  return text;
}
