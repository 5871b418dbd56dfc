/**
 * The simple query protocol (Query): one or more statements in one string,
 * each answered with RowDescription, DataRows and CommandComplete (or
 * EmptyQueryResponse), then ReadyForQuery. Several statements without
 * transaction control run as one implicit transaction, as in PostgreSQL.
 *
 * @example
 * ```ts
 * await simpleQuery({ wire, exec, readyForQuery }, "INSERT INTO t VALUES (1); SELECT * FROM t");
 * ```
 */
import { splitStatements } from "../engine/mod.ts";
import type { SqlValue } from "../engine/types.ts";
import { autoParameterize } from "./auto_param.ts";
import { type Classified, classify } from "./catalog.ts";
import type { Wire } from "./contracts.ts";
import { toPgError } from "./errors.ts";
import type { Executor } from "./executor.ts";
import { resultFormats, writeRowDescription, writeRows } from "./results.ts";
import { cachedPlan, learnPlan } from "./query_shape.ts";
import { isBlank } from "./sql.ts";

/** What a simple query runs with. */
export interface SimpleQueryContext {
  wire: Wire;
  exec: Executor;
  /** Sends ReadyForQuery (and flushes). */
  readyForQuery(): Promise<void>;
}

/** The parts of a text whose plan is cached: one statement (its text is not needed). */
const ONE_PART: readonly string[] = [""];

const TX_WORDS = /^\s*(BEGIN|START|COMMIT|END|ROLLBACK|ABORT|SAVEPOINT|RELEASE)\b/i;
const LEADING_COMMENTS = /^(\s|--[^\n]*\n|\/\*[\s\S]*?\*\/)*/;

/**
 * What one statement (classified as `c`) of the Query text `sql` runs as, and its bound values:
 * a lone point select's literals become parameters (one prepared statement for all), and its
 * shape is learnt for the next text like it (`learn`).
 */
export function statementOf(
  sql: string,
  parts: readonly string[],
  c: Classified,
  learn = true,
): [Classified, SqlValue[]] {
  if (parts.length !== 1 || c.kind !== "sql" || c.valuesDefault !== undefined) return [c, []];
  const ap = autoParameterize(c.sql);
  if (!ap) return [c, []];
  const rewritten = { ...c, sql: ap.sql };
  if (learn) learnPlan(sql, c.sql, rewritten, ap);
  return [rewritten, ap.params];
}

/** Runs a Query message's SQL; errors become an ErrorResponse unless fatal. */
export async function simpleQuery(ctx: SimpleQueryContext, sql: string): Promise<void> {
  const { wire, exec } = ctx;
  const out = wire.out;
  // A text of a shape seen before (another key, the same point select) skips the split, the
  // classifier and the auto-parameterization: the plan is what they made of that shape.
  const plan = cachedPlan(sql);
  const parts = plan ? ONE_PART : splitStatements(sql).filter((s) => !isBlank(s));
  if (parts.length === 0) {
    out.emptyQuery();
    await ctx.readyForQuery();
    return;
  }
  // PostgreSQL runs a multi-statement string as one implicit transaction.
  const implicit = parts.length > 1 && exec.tx.status() === "I" &&
    !parts.some((p) => TX_WORDS.test(p.replace(LEADING_COMMENTS, "")));
  let begun = false;
  try {
    for (const part of parts) {
      const c = plan ? plan.stmt : classify(part);
      if (implicit && !begun && c.kind === "sql") {
        await exec.tx.exec("BEGIN");
        begun = true;
      }
      const [stmt, params] = plan ? [c, plan.params] : statementOf(sql, parts, c);
      const r = await exec.run(stmt, params, implicit);
      if (r.empty) {
        out.emptyQuery();
        continue;
      }
      if (r.fields) {
        const fields = r.fields;
        const text = resultFormats([], fields.length);
        writeRowDescription(out, fields, text);
        const w = writeRows(wire, r.rows, fields, text, 0, r.rows.length);
        if (w) await w;
      }
      out.commandComplete(r.tag);
    }
    if (begun) {
      begun = false;
      await exec.tx.exec("COMMIT");
    }
  } catch (e) {
    if (begun) {
      try {
        await exec.tx.exec("ROLLBACK");
      } catch { /* the error below is what matters */ }
    }
    const err = toPgError(e);
    if (err.fatal) throw err;
    if (!implicit && exec.tx.inBlock) exec.tx.fail();
    out.error(err.fields());
  }
  await ctx.readyForQuery();
}
