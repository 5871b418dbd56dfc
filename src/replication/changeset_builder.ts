/**
 * Turns the log a transaction captured (`capture_hooks.ts`) into its encoded changeset at COMMIT:
 * stamps it with the hybrid logical clock, records per-row versions of the local writes (deletes
 * as tombstones, one statement for the whole transaction), and refuses a changeset larger than the
 * NATS max payload (it could never be published) before the transaction commits. The JSON is
 * `encodeChangeSet`'s, written directly: row images are spliced in as `_ha_pack` encoded them.
 *
 * @module
 */
import { type Change, encodeValue, type Hlc } from "../cdc/mod.ts";
import { HaError } from "../errors/mod.ts";
import type { TableMeta } from "./capture.ts";
import type { LogRow, Marker } from "./capture_hooks.ts";
import { headerBytes, utf8Length } from "./headers.ts";
import type { ReplicationPluginOptions } from "./plugin_api.ts";
import type { Versions } from "./versions.ts";

/** Builds and encodes the changesets of committing transactions. */
export class ChangeSetBuilder {
  constructor(
    private readonly databaseId: string,
    private readonly o: ReplicationPluginOptions,
    private readonly clock: Hlc,
    private readonly tables: ReadonlyMap<string, TableMeta>,
    private readonly versions: Versions,
  ) {}

  /** {@link head} by table metadata (replaced on every schema resync) and operation. */
  private readonly heads = new WeakMap<TableMeta, Map<string, string>>();

  /**
   * The changeset of a transaction's log, encoded (`encodeChangeSet`'s JSON), or undefined when
   * it changed nothing replicated; refused (before COMMIT) when NATS would reject its message.
   */
  build(rows: LogRow[]): { id: string; data: string } | undefined {
    if (!rows.some((r) => r.op !== "STMT")) return undefined;
    const hlc = this.clock.next();
    /** The changes as JSON: row images are spliced in as `_ha_pack` wrote them, not re-encoded. */
    const parts: string[] = [];
    let marker: Marker = {};
    /** Rows whose first change after the marker was seen (they get `updated_columns`). */
    const seen = new Set<string>();
    /** Local writes always win locally: their row versions, recorded together at the end. */
    const stamped: [string, string, boolean][] = [];
    for (const r of rows) {
      if (r.op === "STMT") {
        marker = JSON.parse(r.cmd ?? "{}");
        seen.clear();
        continue;
      }
      if (r.op === "SQL") {
        const c: Change = {
          database: "main",
          table: "",
          columns: [],
          pk_columns: [],
          operation: "SQL",
          command: r.cmd ?? "",
          hlc,
        };
        parts.push(JSON.stringify(c));
        continue;
      }
      const meta = this.tables.get(r.tbl ?? "");
      if (!meta) continue;
      const c: Change = {
        database: "main",
        table: meta.name,
        columns: meta.columns,
        pk_columns: meta.pk,
        operation: r.op as Change["operation"],
        hlc,
      };
      let json = this.head(meta, c.operation) + hlc;
      if (r.old_v !== null) {
        c.old_rowid = r.old_rowid === null ? null : encodeValue(r.old_rowid);
        c.old_values = JSON.parse(r.old_v);
        json += `,"old_rowid":${JSON.stringify(c.old_rowid)},"old_values":${r.old_v}`;
      }
      if (r.new_v !== null) {
        c.new_rowid = r.new_rowid === null ? null : encodeValue(r.new_rowid);
        c.new_values = JSON.parse(r.new_v);
        json += `,"new_rowid":${JSON.stringify(c.new_rowid)},"new_values":${r.new_v}`;
      }
      const set = marker.updated?.[meta.name];
      if (c.operation === "UPDATE" && set) {
        const row = `${meta.name}\u0000${this.versions.keyOf(c, "old")}`;
        if (!seen.has(row)) json += `,"updated_columns":${JSON.stringify(set)}`;
        seen.add(row);
      }
      if (marker.replace && c.operation !== "DELETE") json += `,"on_conflict":"REPLACE"`;
      parts.push(json + "}");
      this.stamp(c, stamped);
    }
    this.versions.setAll(stamped, hlc, this.o.node);
    // The incarnation makes the id (JetStream's Nats-Msg-Id) unique: a memory node restarted
    // with a clock that went back reuses HLCs of its previous run, and within the duplicate
    // window JetStream would drop such a changeset while acknowledging it.
    const id = `${this.databaseId}:${this.o.node}:${this.o.incarnation}:${hlc}`;
    const data = `{"id":${JSON.stringify(id)},"node":${JSON.stringify(this.o.node)},` +
      `"incarnation":${JSON.stringify(this.o.incarnation)},"db":${
        JSON.stringify(this.databaseId)
      },"hlc":${hlc},"timestamp_ns":${Date.now() * 1e6},"changes":[${parts.join(",")}]}`;
    this.checkSize(id, data);
    return { id, data };
  }

  /** A change's JSON up to its `"hlc":` (per table and operation: it never varies). */
  private head(meta: TableMeta, op: Change["operation"]): string {
    let heads = this.heads.get(meta);
    if (!heads) this.heads.set(meta, heads = new Map());
    let h = heads.get(op);
    if (h === undefined) {
      const c = { database: "main", table: meta.name, columns: meta.columns, pk_columns: meta.pk };
      heads.set(op, h = `${JSON.stringify({ ...c, operation: op }).slice(0, -1)},"hlc":`);
    }
    return h;
  }

  private checkSize(id: string, data: string): void {
    const max = this.o.maxPayload;
    if (max <= 0) return;
    const headers = headerBytes(id, this.o.node, this.o.incarnation, !!this.o.clusterKey);
    if (headers + data.length * 3 <= max) return;
    const bytes = headers + utf8Length(data);
    if (bytes <= max) return;
    throw new HaError(
      "too_large",
      `transaction too large to replicate: its changeset message is ${bytes} bytes, over the ` +
        `NATS max_payload of ${max} bytes; it was rolled back (split it into smaller ` +
        `transactions, or raise max_payload in the nats-server configuration)`,
      { bytes, maxPayload: max },
    );
  }

  /** Adds the row versions a local change stamps (deletes as tombstones) to `out`. */
  private stamp(c: Change, out: [string, string, boolean][]): void {
    const v = this.versions;
    if (c.operation === "INSERT") {
      out.push([c.table, v.keyOf(c, "new"), false]);
    } else if (c.operation === "DELETE") {
      out.push([c.table, v.keyOf(c, "old"), true]);
    } else {
      const ok = v.keyOf(c, "old");
      const nk = v.keyOf(c, "new");
      if (ok !== nk) out.push([c.table, ok, true]);
      out.push([c.table, nk, false]);
    }
  }
}
