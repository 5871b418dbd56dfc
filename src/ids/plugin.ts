/**
 * The id writer plugin (see `engine/plugin.ts`): registers `_ha_id()` on the writer connection
 * and rewrites every top-level INSERT into a rowid table of `main` so that ids the client did not
 * give come from the node's {@link IdGenerator} (`rewrite.ts`). WITHOUT ROWID and virtual tables,
 * internal tables and inserts made by triggers are left alone.
 *
 * @module
 */
import type { DatabaseSync, StatementSync } from "node:sqlite";
// From the engine's own files, not engine/mod.ts: this runs in the writer's isolate, which need
// not load the main thread's engine modules (a node's idle memory, issue 13).
import { Action } from "../engine/authorizer.ts";
import { deferFunctionError } from "../engine/function_errors.ts";
import { tokenize } from "../engine/lexer.ts";
import type {
  CommandHandlers,
  PluginFactory,
  StatementInfo,
  WriterPlugin,
} from "../engine/plugin.ts";
import { HaError } from "../errors/mod.ts";
import { type IdTable, rewriteInsert } from "./rewrite.ts";
import type { IdScheme } from "../config/mod.ts";
import { IdGenerator } from "./scheme.ts";
import type { IdCommands } from "./plugin_api.ts";

/** Options the main thread gives the plugin. */
export interface IdPluginOptions {
  scheme: Exclude<IdScheme, "sqlite">;
  /** This node's slot (`slot.ts`), or null until NATS is reached (the `setSlot` command). */
  slot: number | null;
  /** This node's name (its last recorded write bounds the ids of a restart from below). */
  node: string;
}

/**
 * Wall-clock ms of this node's last write recorded by replication (`_ha_versions`, hybrid
 * logical clock in µs), or 0 without such a record.
 */
function lastWriteMs(db: DatabaseSync, node: string): number {
  try {
    const r = db.prepare("SELECT max(hlc) AS h FROM main._ha_versions WHERE node = ?").get(node) as
      | { h: number | null }
      | undefined;
    return r?.h ? Math.floor(Number(r.h) / 1000) : 0;
  } catch {
    return 0; // no replication tables (a node without the replication plugin)
  }
}

const INTERNAL = /^(sqlite_|_ha_)/i;
const ROWID_ALIASES = ["rowid", "_rowid_", "oid"];
const INSERTS = new Set(["INSERT", "REPLACE", "WITH"]);

class IdPlugin implements WriterPlugin {
  private readonly tables = new Map<string, IdTable | null>();
  private schema = -1n;
  private readonly version: StatementSync;

  private ids: IdGenerator | null = null;

  constructor(private readonly db: DatabaseSync, private readonly o: IdPluginOptions) {
    // The slot is remembered in the file, so a file node that restarts while NATS is down keeps
    // choosing ids (memory nodes wait for NATS).
    db.exec(
      "CREATE TABLE IF NOT EXISTS main._ha_id_slot(node TEXT NOT NULL, scheme TEXT NOT NULL, " +
        "slot INTEGER NOT NULL, PRIMARY KEY (node, scheme))",
    );
    const known = db.prepare("SELECT slot FROM main._ha_id_slot WHERE node = ? AND scheme = ?")
      .get(o.node, o.scheme) as { slot: number } | undefined;
    const slot = o.slot ?? known?.slot ?? null;
    if (slot !== null) this.setSlot(slot);
    // Never throws into SQLite (see deferFunctionError): the text it returns instead fails the
    // INSERT ("datatype mismatch" on the integer key), which then reports this error.
    db.function("_ha_id", { deterministic: false }, () => {
      if (this.ids) return this.ids.next();
      return deferFunctionError(
        new HaError(
          "unavailable",
          "this node has no id slot yet (NATS not reached since it was created): give the id " +
            "explicitly, or retry once /readyz is ready",
        ),
      );
    });
    this.version = db.prepare("PRAGMA schema_version");
    this.version.setReadBigInts(true);
  }

  readonly commands: CommandHandlers<IdCommands> = {
    setSlot: (slot) => {
      this.setSlot(slot);
      return null;
    },
  };

  private setSlot(slot: number): void {
    const ids = new IdGenerator(this.o.scheme, slot);
    ids.after(lastWriteMs(this.db, this.o.node));
    this.db.prepare(
      "INSERT INTO main._ha_id_slot(node, scheme, slot) VALUES (?, ?, ?) " +
        "ON CONFLICT (node, scheme) DO UPDATE SET slot = excluded.slot",
    ).run(this.o.node, this.o.scheme, slot);
    this.ids = ids;
  }

  rewriteStatement(info: StatementInfo): string | undefined {
    const ins = info.actions.find((a) =>
      a.code === Action.INSERT && a.trigger === null && a.db === "main"
    );
    if (!ins?.arg1 || INTERNAL.test(ins.arg1)) return undefined;
    // Only INSERT statements insert (not EXPLAIN INSERT, nor CREATE TRIGGER … INSERT).
    if (!INSERTS.has(tokenize(info.sql)[0]?.text ?? "")) return undefined;
    const table = this.table(ins.arg1);
    if (!table) return undefined;
    const sql = rewriteInsert(info.sql, table);
    if (sql === null) {
      throw new HaError(
        "bad_request",
        `cannot choose cluster-wide ids for this INSERT into "${ins.arg1}" (its form is not ` +
          `understood): give the ids explicitly, or run the node with --id-scheme sqlite`,
      );
    }
    return sql;
  }

  /** What the rewrite needs about `name`, or null for tables it leaves alone. */
  private table(name: string): IdTable | null {
    const v = (this.version.get() as { schema_version: bigint }).schema_version;
    if (v !== this.schema) {
      this.tables.clear();
      this.schema = v;
    }
    let t = this.tables.get(name);
    if (t === undefined) {
      t = this.describe(name);
      this.tables.set(name, t);
    }
    return t;
  }

  private describe(name: string): IdTable | null {
    const lit = `'${name.replaceAll("'", "''")}'`;
    const info = this.db.prepare(
      `SELECT type, wr FROM main.pragma_table_list(${lit}) WHERE schema = 'main'`,
    ).get() as { type: string; wr: number | bigint } | undefined;
    if (!info || info.type !== "table" || Number(info.wr) === 1) return null;
    const cols = this.db.prepare(
      `SELECT name, type, pk, hidden FROM main.pragma_table_xinfo(${lit})`,
    ).all() as { name: string; type: string; pk: number | bigint; hidden: number | bigint }[];
    const pk = cols.filter((c) => Number(c.pk) > 0);
    // An INTEGER PRIMARY KEY is the rowid; other primary keys have an automatic index.
    const pkIndex = this.db.prepare(
      `SELECT 1 FROM main.pragma_index_list(${lit}) WHERE origin = 'pk'`,
    ).get();
    const ipk = pk.length === 1 && pk[0].type.toUpperCase() === "INTEGER" && !pkIndex
      ? pk[0].name
      : null;
    const names = new Set(cols.map((c) => c.name.toLowerCase()));
    const aliases = ROWID_ALIASES.filter((a) => !names.has(a));
    const rowid = ipk ?? aliases[0];
    if (rowid === undefined) return null;
    return {
      columns: cols.filter((c) => Number(c.hidden) === 0).map((c) => c.name),
      rowid,
      rowidNames: new Set([...(ipk ? [ipk.toLowerCase()] : []), ...aliases]),
    };
  }
}

const factory: PluginFactory = ({ db, options }) => new IdPlugin(db, options as IdPluginOptions);
export default factory;
