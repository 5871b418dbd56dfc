/**
 * Row encoding and result writing: result columns and their types, command
 * tags, RowDescription fields, result format codes, and DataRows in text or
 * binary format (flushed in chunks so a large result does not pile up).
 *
 * @example
 * ```ts
 * const r = outcomeOf(statementResult);
 * if (r.fields) await writeRows(wire, r.rows, r.fields, [0], 0, r.rows.length);
 * wire.out.commandComplete(r.tag);
 * ```
 */
import type { ColumnInfo, SqlValue, StatementResult } from "../engine/mod.ts";
import type { FieldDescription } from "./backend.ts";
import type { LocalField } from "./catalog.ts";
import { Backend } from "./codes.ts";
import type { Wire } from "./contracts.ts";
import { PgError } from "./errors.ts";
import { columnOid, encodeBinary, encodeText, typeSize } from "./types.ts";

/** Pending output beyond this many bytes is written before more rows are encoded. */
export const FLUSH_BYTES = 256 * 1024;

/** A result column with its type. */
export interface Field {
  name: string;
  oid: number;
}

/** The result of running one statement. */
export interface Outcome {
  /** Null: the statement returns no rows (no RowDescription). */
  fields: Field[] | null;
  rows: SqlValue[][];
  tag: string;
  empty?: boolean;
}

/** Maps an engine result to its command tag. */
export function commandTag(r: StatementResult): string {
  const cmd = r.command.toUpperCase();
  switch (cmd) {
    case "INSERT":
    case "REPLACE":
      return `INSERT 0 ${r.rowsAffected}`;
    case "UPDATE":
    case "DELETE":
      return `${cmd} ${r.rowsAffected}`;
    case "SELECT":
    case "VALUES":
    case "PRAGMA":
    case "EXPLAIN":
    case "WITH":
      return r.columns.length ? `SELECT ${r.rows.length}` : cmd;
    case "END":
      return "COMMIT";
    case "":
      return r.columns.length ? `SELECT ${r.rows.length}` : "OK";
    default:
      return cmd;
  }
}

/** The outcome of an engine result: typed columns (if any), rows and tag. */
export function outcomeOf(r: StatementResult): Outcome {
  return {
    fields: r.columns.length ? fieldsOf(r.columns, r.rows) : null,
    rows: r.rows,
    tag: commandTag(r),
  };
}

/** Result column types from declared types and values. */
function fieldsOf(columns: ColumnInfo[], rows: SqlValue[][]): Field[] {
  return columns.map((c, i) => ({ name: c.name, oid: columnOid(c.declType, rows, i) }));
}

/** Shared all-text / all-binary format arrays by column count (read only). */
const SAME_FORMATS: number[][][] = [[], []];

/** `n` times format `code` (0 or 1): one shared frozen array per count up to 64. */
function sameFormats(code: number, n: number): number[] {
  if (n > 64 || (code !== 0 && code !== 1)) return new Array(n).fill(code);
  return SAME_FORMATS[code][n] ??= Object.freeze(new Array(n).fill(code)) as number[];
}

/**
 * Result format codes per column (Bind: none = text, one = all, else one per column). The array
 * may be shared: read it, do not change it.
 */
export function resultFormats(codes: number[], n: number): number[] {
  if (codes.length === 0) return sameFormats(0, n);
  if (codes.length === 1) return sameFormats(codes[0], n);
  if (codes.length !== n) {
    throw new PgError(
      "08P01",
      `bind message has ${codes.length} result formats but query has ${n} columns`,
    );
  }
  return codes;
}

/** The RowDescription entry of a column sent in `format`. */
export function describeField(f: Field | LocalField, format: number): FieldDescription {
  return { name: f.name, oid: f.oid, size: typeSize(f.oid), format };
}

/**
 * A RowDescription of `fields`, column `i` sent in `formats[i]` (`describeField` without an
 * object per column and query).
 */
export function writeRowDescription(out: Wire["out"], fields: Field[], formats: number[]): void {
  out.begin(Backend.RowDescription).int16(fields.length);
  for (let i = 0; i < fields.length; i++) {
    const f = fields[i];
    out.cstring(f.name).int32(0).int16(0).int32(f.oid).int16(typeSize(f.oid)).int32(-1)
      .int16(formats[i]);
  }
  out.end();
}

/**
 * Writes DataRows `from` up to `to` of `rows`, each column in its format (0 text, 1 binary).
 * A promise only once the buffer must be flushed on the way (a point select's one row costs no
 * async frame): `const w = writeRows(…); if (w) await w;`.
 */
export function writeRows(
  wire: Wire,
  rows: SqlValue[][],
  fields: Field[],
  formats: number[],
  from: number,
  to: number,
): Promise<void> | undefined {
  const job: RowsJob = { rows, fields, formats, binary: formats.some((f) => f === 1), to };
  const next = fill(wire.out, job, from);
  return wire.out.length > FLUSH_BYTES ? flushAndWrite(wire, job, next) : undefined;
}

/** The rows a {@link writeRows} call writes, and how. */
interface RowsJob {
  rows: SqlValue[][];
  fields: Field[];
  formats: number[];
  binary: boolean;
  /** The end of the rows to write (exclusive). */
  to: number;
}

/** Writes rows from `from` on until the buffer is past {@link FLUSH_BYTES}: the next row index. */
function fill(out: Wire["out"], job: RowsJob, from: number): number {
  let r = from;
  while (r < job.to && out.length <= FLUSH_BYTES) {
    writeRow(out, job.rows[r++], job.fields, job.formats, job.binary);
  }
  return r;
}

/** Flushes, then writes the rest of the rows, flushing whenever the buffer fills. */
async function flushAndWrite(wire: Wire, job: RowsJob, from: number): Promise<void> {
  do {
    await wire.flush();
    from = fill(wire.out, job, from);
  } while (wire.out.length > FLUSH_BYTES);
}

/** One DataRow. */
function writeRow(
  out: Wire["out"],
  row: SqlValue[],
  fields: Field[],
  formats: number[],
  binary: boolean,
): void {
  const n = fields.length;
  if (binary) {
    // encode first: a value that cannot be sent must not leave half a message behind
    const cells = fields.map((f, i) =>
      formats[i] === 1 ? encodeBinary(row[i] ?? null, f.oid) : encodeText(row[i] ?? null, f.oid)
    );
    out.begin(Backend.DataRow).int16(n);
    for (const c of cells) {
      if (c === null) out.int32(-1);
      else if (typeof c === "string") out.textField(c);
      else out.bytesField(c);
    }
    out.end();
  } else {
    out.begin(Backend.DataRow).int16(n);
    for (let i = 0; i < n; i++) {
      const s = encodeText(row[i] ?? null, fields[i].oid);
      if (s === null) out.int32(-1);
      else out.textField(s);
    }
    out.end();
  }
}
