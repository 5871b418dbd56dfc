/**
 * Prepared statements (Parse) and portals (Bind) of one connection, with
 * their limits and a cache of SQL analysis (drivers send the same text again
 * and again).
 *
 * @example
 * ```ts
 * const store = new PreparedStore();
 * store.prepare("s1", "SELECT $1", []);
 * store.statement("s1").paramCount; // 1
 * ```
 */
import type { SqlValue } from "../engine/mod.ts";
import { countParameters, splitStatements } from "../engine/mod.ts";
import { type Classified, classify } from "./catalog.ts";
import type { PgDescription } from "./contracts.ts";
import { PgError } from "./errors.ts";
import type { Field, Outcome } from "./results.ts";
import { isBlank } from "./sql.ts";

const MAX_PREPARED = 10_000;
const ANALYSIS_CACHE = 256;

/** A prepared statement (Parse). */
export interface Prepared {
  sql: string;
  paramOids: number[];
  /** Parameters the statement takes: its placeholders, or more OIDs if the client sent them. */
  paramCount: number;
  classified: Classified;
  /** Set by Describe S: the types promised to the client. */
  fields?: Field[];
  description?: PgDescription;
}

/** A bound portal (Bind). */
export interface Portal {
  stmt: Prepared;
  params: SqlValue[];
  resultFormats: number[];
  /** Result columns, once known (described or executed). */
  fields?: Field[];
  result?: Outcome;
  /** Rows sent so far. */
  cursor: number;
}

/** What Parse learns from SQL text. */
interface Analysis {
  sql: string;
  classified: Classified;
  placeholders: number;
}

/** Splits, checks and classifies the SQL of a Parse message. */
function analyse(text: string): Analysis {
  const parts = splitStatements(text).filter((s) => !isBlank(s));
  if (parts.length > 1) {
    throw new PgError("42601", "cannot insert multiple commands into a prepared statement");
  }
  const sql = parts[0] ?? "";
  const classified = classify(sql);
  const counted = classified.kind === "sql" || classified.kind === "catalog";
  return { sql, classified, placeholders: counted ? countParameters(sql) : 0 };
}

/** The named statements and portals of a connection. */
export class PreparedStore {
  private readonly statements = new Map<string, Prepared>();
  /** Named portals. */
  private readonly portals = new Map<string, Portal>();
  /**
   * The unnamed portal (one per extended-protocol query), outside the Map: `Map.clear()` per query
   * left each obsolete hash table holding the last query's portal and linked to its successor,
   * so once one table outlived the young generation every later portal (params, result, rows)
   * did too, until the next full GC (issue 13).
   */
  private unnamed: Portal | null = null;
  private readonly analyses = new Map<string, Analysis>();

  /** Parse: stores statement `name` (unnamed: "", replaced freely). */
  prepare(name: string, text: string, paramOids: number[]): void {
    if (name !== "" && this.statements.has(name)) {
      throw new PgError("42P05", `prepared statement "${name}" already exists`);
    }
    if (this.statements.size >= MAX_PREPARED) {
      throw new PgError("53400", `too many prepared statements (limit ${MAX_PREPARED})`);
    }
    let a = this.analyses.get(text);
    if (!a) {
      a = analyse(text);
      if (this.analyses.size >= ANALYSIS_CACHE) this.analyses.clear();
      this.analyses.set(text, a);
    }
    this.statements.set(name, {
      sql: a.sql,
      paramOids,
      paramCount: Math.max(paramOids.length, a.placeholders),
      classified: a.classified,
    });
  }

  statement(name: string): Prepared {
    const s = this.statements.get(name);
    if (!s) throw new PgError("26000", `prepared statement "${name}" does not exist`);
    return s;
  }

  portal(name: string): Portal {
    const p = name === "" ? this.unnamed : this.portals.get(name);
    if (!p) throw new PgError("34000", `portal "${name}" does not exist`);
    return p;
  }

  /** Refuses a named portal that exists already (the unnamed one is replaced). */
  checkNewPortal(name: string): void {
    if (name !== "" && this.portals.has(name)) {
      throw new PgError("42P03", `cursor "${name}" already exists`);
    }
  }

  setPortal(name: string, portal: Portal): void {
    if (name === "") this.unnamed = portal;
    else this.portals.set(name, portal);
  }

  /** Close: drops a statement ('S') or portal ('P'); unknown names are fine. */
  close(kind: "S" | "P", name: string): void {
    if (kind === "S") this.statements.delete(name);
    else if (name === "") this.unnamed = null;
    else this.portals.delete(name);
  }

  /** DEALLOCATE name, or DEALLOCATE ALL (null). */
  deallocate(name: string | null): void {
    if (name === null) this.statements.clear();
    else if (!this.statements.delete(name)) {
      throw new PgError("26000", `prepared statement "${name}" does not exist`);
    }
  }

  /** A simple Query drops the unnamed statement and portal. */
  forgetUnnamed(): void {
    this.statements.delete("");
    this.unnamed = null;
  }

  /** Portals end with their transaction. */
  clearPortals(): void {
    this.unnamed = null;
    if (this.portals.size > 0) this.portals.clear();
  }

  /** Another database: nothing prepared applies any more. */
  reset(): void {
    this.statements.clear();
    this.portals.clear();
    this.unnamed = null;
  }
}
