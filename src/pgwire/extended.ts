/**
 * The extended query protocol: Parse, Bind, Describe, Execute, Close and
 * Sync over the connection's prepared statements and portals, with the
 * implicit transaction of a batch and the skip-to-Sync error recovery.
 *
 * @example
 * ```ts
 * const ext = new ExtendedProtocol(wire, exec, store);
 * ext.parse(body); ext.bind(body); await ext.execute(body); await ext.sync();
 * ```
 */
import type { Wire } from "./contracts.ts";
import type { Executor } from "./executor.ts";
import { PgError } from "./errors.ts";
import { parseBind, parseExecute, parseParse, parseTarget } from "./messages.ts";
import type { Portal, PreparedStore } from "./prepared.ts";
import {
  describeField,
  type Field,
  type Outcome,
  resultFormats,
  writeRowDescription,
  writeRows,
} from "./results.ts";
import { decodeParam } from "./params.ts";
import { describedOid, OID } from "./types.ts";

/** The extended-protocol messages of one connection. */
export class ExtendedProtocol {
  /** After an error, messages up to Sync are skipped (PostgreSQL's error recovery). */
  skipping = false;

  constructor(
    private readonly wire: Wire,
    private readonly exec: Executor,
    private readonly store: PreparedStore,
  ) {}

  parse(body: Uint8Array): void {
    const m = parseParse(body);
    this.store.prepare(m.name, m.sql, m.paramOids);
    this.wire.out.parseComplete();
  }

  bind(body: Uint8Array): void {
    const m = parseBind(body);
    const stmt = this.store.statement(m.statement);
    this.store.checkNewPortal(m.portal);
    const expected = stmt.paramCount;
    if (m.params.length !== expected) {
      throw new PgError(
        "08P01",
        `bind message supplies ${m.params.length} parameters, but prepared statement "${m.statement}" requires ${expected}`,
      );
    }
    const params = m.params.map((raw, i) => {
      const format = m.paramFormats.length === 1 ? m.paramFormats[0] : (m.paramFormats[i] ?? 0);
      return decodeParam(raw, stmt.paramOids[i] ?? 0, format);
    });
    this.store.setPortal(m.portal, { stmt, params, resultFormats: m.resultFormats, cursor: 0 });
    this.wire.out.bindComplete();
  }

  /** Describe; a promise only when it has to wait (a portal's statement run off this thread). */
  describe(body: Uint8Array): Promise<void> | undefined {
    const m = parseTarget(body);
    if (m.kind === "S") return this.describeStatement(m.name);
    const portal = this.store.portal(m.name);
    const fields = this.portalFieldsNow(portal);
    if (fields === undefined) return this.describePortal(portal);
    this.writeDescription(portal, fields);
  }

  private async describeStatement(name: string): Promise<void> {
    const out = this.wire.out;
    const stmt = this.store.statement(name);
    const c = stmt.classified;
    let fields: Field[] = [];
    let paramCount = stmt.paramCount;
    if (c.kind === "local") fields = c.fields;
    else if (c.kind === "sql") {
      stmt.description ??= await this.exec.describe(await this.exec.sqlOf(c));
      const d = stmt.description;
      paramCount = Math.max(paramCount, d.paramCount);
      fields = d.columns.map((col) => ({ name: col.name, oid: describedOid(col.declType) }));
      stmt.fields = fields;
    } else if (c.kind === "catalog") {
      const d = await this.exec.describeCatalog(c.sql);
      paramCount = Math.max(paramCount, d.paramCount);
      fields = stmt.fields = d.fields;
    }
    const oids = Array.from({ length: paramCount }, (_, i) => stmt.paramOids[i] || OID.text);
    out.parameterDescription(oids);
    if (fields.length) out.rowDescription(fields.map((f) => describeField(f, 0)));
    else out.noData();
  }

  private async describePortal(portal: Portal): Promise<void> {
    const fields = (await this.executePortal(portal)).fields;
    portal.fields = fields ?? [];
    this.writeDescription(portal, fields);
  }

  private writeDescription(portal: Portal, fields: Field[] | null): void {
    if (!fields) this.wire.out.noData();
    else {writeRowDescription(
        this.wire.out,
        fields,
        resultFormats(portal.resultFormats, fields.length),
      );}
  }

  /** Execute; a promise only when it has to wait (the statement runs off this thread, or a flush). */
  execute(body: Uint8Array): Promise<void> | undefined {
    const m = parseExecute(body);
    const portal = this.store.portal(m.portal);
    // Describe ran it already (a point select's Bind, Describe, Execute).
    if (portal.result) return this.sendResult(portal, portal.result, m.maxRows, true);
    const now = this.executePortalNow(portal);
    if (now) return this.sendResult(portal, now, m.maxRows, false);
    return this.executePortal(portal).then((r) => this.sendResult(portal, r, m.maxRows, false));
  }

  private sendResult(
    portal: Portal,
    r: Outcome,
    maxRows: number,
    already: boolean,
  ): Promise<void> | undefined {
    const out = this.wire.out;
    if (r.empty) {
      out.emptyQuery();
      return;
    }
    // Rows are sent only under a RowDescription the client has (or could have) seen.
    const fields = portal.fields !== undefined
      ? (portal.fields.length ? portal.fields : null)
      : r.fields;
    if (!fields || !r.fields) {
      out.commandComplete(r.tag);
      return;
    }
    const formats = resultFormats(portal.resultFormats, fields.length);
    const start = portal.cursor;
    const end = maxRows > 0 ? Math.min(r.rows.length, start + maxRows) : r.rows.length;
    const w = writeRows(this.wire, r.rows, fields, formats, start, end);
    if (w) return w.then(() => this.endRows(portal, r, start, end, already));
    this.endRows(portal, r, start, end, already);
  }

  private endRows(portal: Portal, r: Outcome, start: number, end: number, already: boolean): void {
    portal.cursor = end;
    if (end < r.rows.length) {
      this.wire.out.portalSuspended();
      return;
    }
    const tag = r.tag.startsWith("SELECT ") ? `SELECT ${end - start}` : r.tag;
    this.wire.out.commandComplete(
      already && start === end && r.tag.startsWith("SELECT ") ? "SELECT 0" : tag,
    );
  }

  close(body: Uint8Array): void {
    const m = parseTarget(body);
    this.store.close(m.kind, m.name);
    this.wire.out.closeComplete();
  }

  /**
   * Sync: ends the implicit transaction (rolled back after an error) and the skipping. A promise
   * only when there is a transaction to end (most Syncs end none).
   */
  sync(): Promise<void> | undefined {
    if (!this.exec.tx.inImplicit) {
      this.skipping = false;
      return undefined;
    }
    return this.exec.tx.endImplicit(this.skipping).then(() => {
      this.skipping = false;
    });
  }

  /**
   * The result columns of a portal before Execute, or `undefined` when its statement must run
   * off this thread first (then {@link describePortal}). A statement that may return rows runs
   * now (a bound portal is ready to run; its rows are kept for the Execute that follows) so its
   * columns carry the types of real values and it sees the session's open transaction; a
   * statement that never returns rows (plain INSERT/UPDATE/DELETE, DDL, transaction control) is
   * not run here.
   */
  private portalFieldsNow(portal: Portal): Field[] | null | undefined {
    if (portal.fields) return portal.fields.length ? portal.fields : null;
    const stmt = portal.stmt;
    const c = stmt.classified;
    let fields: Field[] | null = null;
    if (c.kind === "local") {
      fields = c.fields.length ? c.fields : null;
    } else if (c.kind === "sql") {
      if (stmt.fields) fields = stmt.fields.length ? stmt.fields : null;
      else if (c.shape !== "none") {
        const r = this.executePortalNow(portal);
        if (r === undefined) return undefined;
        fields = r.fields;
      }
    } else if (c.kind === "catalog") {
      return undefined;
    }
    portal.fields = fields ?? [];
    return fields;
  }

  /** The portal's result if it has one or the database answers it now, without a promise. */
  private executePortalNow(portal: Portal): Outcome | undefined {
    if (portal.result) return portal.result;
    const c = portal.stmt.classified;
    if (this.exec.tx.opensImplicit(c)) return undefined;
    const r = this.exec.runNow(c, portal.params);
    return r && this.keep(portal, r);
  }

  private async executePortal(portal: Portal): Promise<Outcome> {
    if (portal.result) return portal.result;
    const c = portal.stmt.classified;
    if (this.exec.tx.opensImplicit(c)) await this.exec.tx.beginImplicit(c);
    return this.keep(portal, await this.exec.run(c, portal.params));
  }

  private keep(portal: Portal, r: Outcome): Outcome {
    // Types promised earlier (Describe) win over value-derived ones.
    const promised = portal.fields ?? portal.stmt.fields;
    if (r.fields && promised && promised.length === r.fields.length) r.fields = promised;
    portal.result = r;
    return r;
  }
}
