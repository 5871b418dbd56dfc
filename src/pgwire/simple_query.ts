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
import { type Outcome, resultFormats, writeRowDescription, writeRows } from "./results.ts";
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
export function simpleQuery(ctx: SimpleQueryContext, sql: string): Promise<void> {
  // A text of a shape seen before (another key, the same point select) skips the split, the
  // classifier and the auto-parameterization: the plan is what they made of that shape.
  const plan = cachedPlan(sql);
  if (plan) {
    // A read the database answers now: no async frame until ReadyForQuery's flush.
    let r: Outcome | undefined;
    try {
      r = ctx.exec.runNow(plan.stmt, plan.params);
    } catch (e) {
      answerError(ctx, e, false);
      return ctx.readyForQuery();
    }
    if (r) {
      const w = answer(ctx.wire, r);
      return w ? w.then(() => ctx.readyForQuery()) : ctx.readyForQuery();
    }
  }
  return runQuery(ctx, sql, plan);
}

/** One statement's result: RowDescription, DataRows, CommandComplete (a promise: a flush). */
function answer(wire: Wire, r: Outcome): Promise<void> | undefined {
  const out = wire.out;
  if (r.empty) {
    out.emptyQuery();
    return;
  }
  if (!r.fields) {
    out.commandComplete(r.tag);
    return;
  }
  const text = resultFormats([], r.fields.length);
  writeRowDescription(out, r.fields, text);
  const w = writeRows(wire, r.rows, r.fields, text, 0, r.rows.length);
  if (w) {
    return w.then(() => {
      out.commandComplete(r.tag);
    });
  }
  out.commandComplete(r.tag);
}

/** A statement's error as an ErrorResponse (a fatal one is thrown). */
function answerError(ctx: SimpleQueryContext, e: unknown, implicit: boolean): void {
  const err = toPgError(e);
  if (err.fatal) throw err;
  if (!implicit && ctx.exec.tx.inBlock) ctx.exec.tx.fail();
  ctx.wire.out.error(err.fields());
}

async function runQuery(
  ctx: SimpleQueryContext,
  sql: string,
  plan: ReturnType<typeof cachedPlan>,
): Promise<void> {
  const { wire, exec } = ctx;
  const out = wire.out;
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
      const w = answer(wire, await exec.run(stmt, params, implicit));
      if (w) await w;
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
    answerError(ctx, e, implicit);
  }
  await ctx.readyForQuery();
}
