/**
 * The COPY sub-protocol of a session: CopyOutResponse + CopyData rows + CopyDone for
 * `COPY … TO STDOUT`; CopyInResponse, then CopyData until CopyDone (or CopyFail) for
 * `COPY … FROM STDIN`, inserting the rows in chunks of multi-row INSERTs. The caller owns the
 * transaction (FROM STDIN runs in one).
 *
 * @example
 * ```ts
 * const tag = await copyIn(parseCopy("COPY t FROM STDIN"), io); // "COPY 3"
 * ```
 * @module
 */
import type { SqlValue, StatementResult } from "../engine/types.ts";
import { PgError } from "./errors.ts";
import type { MessageWriter } from "./backend.ts";
import { Backend, Frontend } from "./codes.ts";
import type { Frame } from "./messages.ts";
import { type CopyCommand, CopyDecoder, copyValue, encodeCopyRow } from "./copy.ts";
import { columnOid } from "./types.ts";

/** What COPY needs of its session. */
export interface CopyIo {
  out: MessageWriter;
  flush(): Promise<void>;
  /** The next client message (null when the client left). */
  read(): Promise<Frame | null>;
  /** Runs one statement in the session (its transaction when one is open). */
  run(sql: string, params: SqlValue[]): Promise<StatementResult>;
}

const FLUSH_BYTES = 256 * 1024;
/** SQLite allows 32766 parameters per statement; stay well below. */
const MAX_PARAMS = 30_000;
const MAX_ROWS_PER_INSERT = 1000;

function quoteIdent(name: string): string {
  return `"${name.replaceAll('"', '""')}"`;
}

/** A name as written (`"Name"` or `name`) → the identifier itself. */
function identName(written: string): string {
  return written.startsWith('"') ? written.slice(1, -1).replaceAll('""', '"') : written;
}

function copyResponse(out: MessageWriter, type: number, n: number): void {
  out.begin(type).byte(0).int16(n);
  for (let i = 0; i < n; i++) out.int16(0);
  out.end();
}

/** Runs `COPY … TO STDOUT`; returns the command tag. */
export async function copyOut(cmd: CopyCommand, io: CopyIo): Promise<string> {
  const sql = cmd.query ??
    `SELECT ${cmd.columns.length ? cmd.columns.join(", ") : "*"} FROM ${cmd.table}`;
  const r = await io.run(sql, []);
  const oids = r.columns.map((c, i) => columnOid(c.declType, r.rows, i));
  copyResponse(io.out, Backend.CopyOutResponse, r.columns.length);
  if (cmd.header) {
    io.out.begin(Backend.CopyData).text(encodeCopyRow(r.columns.map((c) => c.name), [], cmd)).end();
  }
  for (const row of r.rows) {
    io.out.begin(Backend.CopyData).text(encodeCopyRow(row, oids, cmd)).end();
    if (io.out.length > FLUSH_BYTES) await io.flush();
  }
  io.out.begin(Backend.CopyDone).end();
  return `COPY ${r.rows.length}`;
}

/** Runs `COPY … FROM STDIN`; returns the command tag. */
export async function copyIn(cmd: CopyCommand, io: CopyIo): Promise<string> {
  const table = identName(cmd.table!);
  const info = await io.run(
    "SELECT name, type FROM pragma_table_info(?)",
    [table],
  );
  if (info.rows.length === 0) throw new PgError("42P01", `relation "${table}" does not exist`);
  const declared = new Map(info.rows.map((r) => [String(r[0]), String(r[1] ?? "")]));
  const columns = cmd.columns.length ? cmd.columns.map(identName) : [...declared.keys()];
  for (const c of columns) {
    if (!declared.has(c)) {
      throw new PgError("42703", `column "${c}" of relation "${table}" does not exist`);
    }
  }
  const types = columns.map((c) => declared.get(c)!);
  const perInsert = Math.max(
    1,
    Math.min(MAX_ROWS_PER_INSERT, Math.floor(MAX_PARAMS / columns.length)),
  );
  const head = `INSERT INTO ${quoteIdent(table)} (${columns.map(quoteIdent).join(", ")}) VALUES `;
  const tuple = `(${columns.map(() => "?").join(", ")})`;
  let count = 0;
  let line = 0;
  const insert = async (rows: (string | null)[][]) => {
    for (let off = 0; off < rows.length; off += perInsert) {
      const chunk = rows.slice(off, off + perInsert);
      const params: SqlValue[] = [];
      for (const row of chunk) {
        line++;
        if (row.length !== columns.length) {
          throw new PgError(
            "22P04",
            `COPY row ${line} has ${row.length} columns, expected ${columns.length}`,
          );
        }
        row.forEach((v, i) => params.push(copyValue(v, types[i])));
      }
      await io.run(head + chunk.map(() => tuple).join(", "), params);
      count += chunk.length;
    }
  };

  copyResponse(io.out, Backend.CopyInResponse, columns.length);
  await io.flush();
  const decoder = new CopyDecoder(cmd);
  const utf8 = new TextDecoder("utf-8", { fatal: true });
  let failure: unknown = null;
  for (;;) {
    const f = await io.read();
    if (f === null) throw new PgError("08006", "client left during COPY", { fatal: true });
    if (f.type === Frontend.CopyData) {
      if (failure) continue; // keep reading to CopyDone, as PostgreSQL does
      try {
        decoder.push(utf8.decode(f.body, { stream: true }));
        if (decoder.rows.length >= perInsert) await insert(decoder.take());
      } catch (e) {
        failure = e instanceof TypeError
          ? new PgError("22021", 'invalid byte sequence for encoding "UTF8" in COPY data')
          : e;
      }
    } else if (f.type === Frontend.CopyDone) {
      if (failure) throw failure;
      decoder.push(utf8.decode());
      decoder.finish();
      await insert(decoder.take());
      return `COPY ${count}`;
    } else if (f.type === Frontend.CopyFail) {
      const msg = new TextDecoder().decode(f.body).replace(/\0$/, "");
      throw new PgError("57014", `COPY from stdin failed: ${msg}`);
    } else if (f.type === Frontend.Flush || f.type === Frontend.Sync) {
      // ignored during COPY, as PostgreSQL does
      continue;
    } else {
      throw new PgError("08P01", `unexpected message type ${f.type} during COPY from stdin`);
    }
  }
}
