/**
 * Fills the catalog tables ({@link ./tables.ts}) from a {@link Schema}: one row per relation,
 * column, index, constraint, view and type, with OIDs handed out from {@link FIRST_OID}.
 *
 * @module
 */
import type { DatabaseSync } from "node:sqlite";
import type { Schema, SchemaRelation } from "./schema.ts";
import { formatType, PG_TYPES, pgTypeOf } from "./types.ts";
import { FIRST_OID, inserter, NS, ROLE_OID } from "./tables.ts";

/** What the catalog shows besides the schema. */
export interface CatalogFacts {
  user: string;
  database: string;
  databases: string[];
}

/** The OIDs given to relations, for `::regclass` and the catalog functions. */
export interface CatalogOids {
  /** relation or index name → oid */
  byName: Map<string, number>;
  /** oid → relation or index name */
  byOid: Map<number, string>;
  /** index oid → CREATE INDEX text as PostgreSQL prints it */
  indexDefs: Map<number, string>;
  /** constraint oid → definition as pg_get_constraintdef prints it */
  constraintDefs: Map<number, string>;
  /** view oid → its SELECT */
  viewDefs: Map<number, string>;
}

function quoteIdent(s: string): string {
  return /^[a-z_][a-z0-9_$]*$/.test(s) ? s : `"${s.replaceAll('"', '""')}"`;
}

function columnList(cols: (string | null)[]): string {
  return cols.map((c) => c === null ? "(expression)" : quoteIdent(c)).join(", ");
}

const FK_ACTION: Record<string, string> = {
  "NO ACTION": "a",
  RESTRICT: "r",
  CASCADE: "c",
  "SET NULL": "n",
  "SET DEFAULT": "d",
};

/** A view's SELECT from its CREATE VIEW statement. */
function viewSelect(sql: string): string {
  const m = /\bAS\s+((?:SELECT|WITH|VALUES)\b[\s\S]*)$/i.exec(sql);
  return (m ? m[1] : sql).trim();
}

/**
 * Fills the (empty) catalog from a schema; returns the OIDs it gave. Tables, views and indexes
 * are numbered from 16384 in name order, so the same schema always gets the same OIDs.
 */
export function fillCatalog(db: DatabaseSync, schema: Schema, facts: CatalogFacts): CatalogOids {
  const oids: CatalogOids = {
    byName: new Map(),
    byOid: new Map(),
    indexDefs: new Map(),
    constraintDefs: new Map(),
    viewDefs: new Map(),
  };
  let next = FIRST_OID;
  const relOid = new Map<string, number>();
  for (const r of schema.relations) relOid.set(r.name, next++);
  for (const [name, oid] of relOid) {
    oids.byName.set(name, oid);
    oids.byOid.set(oid, name);
  }
  const ins = inserter(db);
  let conOid = 1_000_000;
  const pkColumns = (r: SchemaRelation) =>
    r.columns.filter((c) => c.pk > 0).sort((a, b) => a.pk - b.pk).map((c) => c.name);

  ins("pg_catalog.pg_roles", {
    rolname: facts.user,
    rolsuper: 1,
    rolinherit: 1,
    rolcreaterole: 1,
    rolcreatedb: 1,
    rolcanlogin: 1,
    rolreplication: 1,
    rolconnlimit: -1,
    rolpassword: "********",
    rolbypassrls: 1,
    oid: ROLE_OID,
  });
  ins("pg_catalog.pg_user", {
    usename: facts.user,
    usesysid: ROLE_OID,
    usecreatedb: 1,
    usesuper: 1,
    userepl: 1,
    usebypassrls: 1,
    passwd: "********",
  });
  facts.databases.forEach((name, i) => {
    ins("pg_catalog.pg_database", {
      oid: 50_000 + i, // above 16383: a user database, as GUI clients expect
      datname: name,
      datdba: ROLE_OID,
      encoding: 6,
      datlocprovider: "c",
      datallowconn: 1,
      datconnlimit: -1,
      dattablespace: 1663,
      datcollate: "C",
      datctype: "C",
    });
  });
  ins("information_schema.schemata", {
    catalog_name: facts.database,
    schema_name: "public",
    schema_owner: facts.user,
  });
  ins("information_schema.enabled_roles", { role_name: facts.user });

  for (const r of schema.relations) {
    const oid = relOid.get(r.name)!;
    const isView = r.kind === "view";
    const pk = pkColumns(r);
    const hasPkIndex = r.indexes.some((i) => i.origin === "pk");
    const synthesizedPk = !isView && pk.length > 0 && !hasPkIndex;
    const visible = r.columns.filter((c) => c.hidden === 0 || c.hidden >= 2);
    ins("pg_catalog.pg_class", {
      oid,
      relname: r.name,
      relnamespace: NS.public,
      relowner: ROLE_OID,
      relam: isView ? 0 : 2,
      relfilenode: isView ? 0 : oid,
      reltuples: -1,
      relhasindex: r.indexes.length > 0 || synthesizedPk ? 1 : 0,
      relpersistence: "p",
      // PostgreSQL enforces foreign keys with triggers; psql lists them only when this is set
      relhastriggers: r.foreignKeys.length > 0 ||
          schema.relations.some((x) => x.foreignKeys.some((f) => f.table === r.name))
        ? 1
        : 0,
      relkind: isView ? "v" : "r",
      relnatts: visible.length,
      relispopulated: 1,
      relreplident: isView ? "n" : "d",
    });
    if (isView) {
      oids.viewDefs.set(oid, viewSelect(r.sql));
      ins("pg_catalog.pg_views", {
        schemaname: "public",
        viewname: r.name,
        viewowner: facts.user,
        definition: viewSelect(r.sql),
      });
    } else {
      ins("pg_catalog.pg_tables", {
        schemaname: "public",
        tablename: r.name,
        tableowner: facts.user,
        hasindexes: r.indexes.length > 0 || synthesizedPk ? 1 : 0,
      });
    }
    ins("information_schema.tables", {
      table_catalog: facts.database,
      table_schema: "public",
      table_name: r.name,
      table_type: isView ? "VIEW" : "BASE TABLE",
      is_insertable_into: isView ? "NO" : "YES",
      is_typed: "NO",
    });
    if (isView) {
      ins("information_schema.views", {
        table_catalog: facts.database,
        table_schema: "public",
        table_name: r.name,
        view_definition: viewSelect(r.sql),
        check_option: "NONE",
        is_updatable: "NO",
        is_insertable_into: "NO",
      });
    }
    visible.forEach((c, i) => {
      const attnum = i + 1;
      const t = pgTypeOf(c.type);
      // An INTEGER PRIMARY KEY without a default gets its id from the cluster (src/ids).
      const dflt = c.default;
      const typeInfo = PG_TYPES.find((p) => p.oid === t.oid)!;
      ins("pg_catalog.pg_attribute", {
        attrelid: oid,
        attname: c.name,
        atttypid: t.oid,
        attstattarget: -1,
        attlen: typeInfo.len,
        attnum,
        attcacheoff: -1,
        atttypmod: t.typmod,
        attbyval: typeInfo.len > 0 && typeInfo.len <= 8 ? 1 : 0,
        attalign: "i",
        attstorage: typeInfo.len > 0 ? "p" : "x",
        attcompression: "",
        attnotnull: c.notNull || (c.pk > 0 && !isView) ? 1 : 0,
        atthasdef: dflt !== null ? 1 : 0,
        attidentity: "",
        attgenerated: c.hidden >= 2 ? "s" : "",
        attislocal: 1,
        attcollation: typeInfo.category === "S" ? 100 : 0,
      });
      if (dflt !== null) {
        ins("pg_catalog.pg_attrdef", { oid: conOid++, adrelid: oid, adnum: attnum, adbin: dflt });
      }
      const charLen = t.typmod >= 4 && t.oid !== 1700 ? t.typmod - 4 : null;
      ins("information_schema.columns", {
        table_catalog: facts.database,
        table_schema: "public",
        table_name: r.name,
        column_name: c.name,
        ordinal_position: attnum,
        column_default: dflt,
        is_nullable: c.notNull || c.pk > 0 ? "NO" : "YES",
        data_type: formatType(t.oid, -1),
        character_maximum_length: charLen,
        numeric_precision: t.oid === 20 ? 64 : t.oid === 701 ? 53 : null,
        numeric_precision_radix: t.oid === 20 || t.oid === 701 ? 2 : null,
        numeric_scale: t.oid === 20 ? 0 : null,
        udt_catalog: facts.database,
        udt_schema: "pg_catalog",
        udt_name: typeInfo.name,
        dtd_identifier: String(attnum),
        is_self_referencing: "NO",
        is_identity: "NO",
        is_generated: c.hidden >= 2 ? "ALWAYS" : "NEVER",
        is_updatable: isView ? "NO" : "YES",
      });
    });
    if (isView) continue;

    const attnum = (name: string | null) =>
      name === null ? 0 : visible.findIndex((c) => c.name === name) + 1;
    const conRow = (row: Record<string, unknown>) =>
      ins("pg_catalog.pg_constraint", {
        connamespace: NS.public,
        convalidated: 1,
        conislocal: 1,
        connoinherit: 0,
        conrelid: oid,
        confupdtype: " ",
        confdeltype: " ",
        confmatchtype: " ",
        ...row,
      });
    const tableConstraint = (name: string, type: string, cols: string[]) => {
      ins("information_schema.table_constraints", {
        constraint_catalog: facts.database,
        constraint_schema: "public",
        constraint_name: name,
        table_catalog: facts.database,
        table_schema: "public",
        table_name: r.name,
        constraint_type: type,
        is_deferrable: "NO",
        initially_deferred: "NO",
        enforced: "YES",
      });
      cols.forEach((col, i) =>
        ins("information_schema.key_column_usage", {
          constraint_catalog: facts.database,
          constraint_schema: "public",
          constraint_name: name,
          table_catalog: facts.database,
          table_schema: "public",
          table_name: r.name,
          column_name: col,
          ordinal_position: i + 1,
        })
      );
    };

    // Indexes: SQLite's automatic ones are named as PostgreSQL names constraint indexes.
    const indexes = r.indexes.map((ix) => ({ ...ix }));
    if (synthesizedPk) {
      indexes.unshift({
        name: `${r.name}_pkey`,
        unique: true,
        origin: "pk",
        partial: false,
        columns: pk,
        sql: null,
      });
    }
    for (const ix of indexes) {
      let name = ix.name;
      if (ix.origin === "pk") name = `${r.name}_pkey`;
      else if (ix.origin === "u" && name.startsWith("sqlite_autoindex_")) {
        name = `${r.name}_${ix.columns.join("_")}_key`;
      }
      const ixOid = next++;
      oids.byName.set(name, ixOid);
      oids.byOid.set(ixOid, name);
      const keys = ix.columns.map(attnum);
      const def = `CREATE ${ix.unique ? "UNIQUE " : ""}INDEX ${quoteIdent(name)} ON public.${
        quoteIdent(r.name)
      } USING btree (${columnList(ix.columns)})${
        ix.partial && ix.sql ? " WHERE " + (/\bWHERE\b([\s\S]*)$/i.exec(ix.sql)?.[1].trim()) : ""
      }`;
      oids.indexDefs.set(ixOid, def);
      ins("pg_catalog.pg_class", {
        oid: ixOid,
        relname: name,
        relnamespace: NS.public,
        relowner: ROLE_OID,
        relam: 403,
        relfilenode: ixOid,
        relpersistence: "p",
        relkind: "i",
        relnatts: ix.columns.length,
        relispopulated: 1,
        relreplident: "n",
      });
      ins("pg_catalog.pg_index", {
        indexrelid: ixOid,
        indrelid: oid,
        indnatts: keys.length,
        indnkeyatts: keys.length,
        indisunique: ix.unique ? 1 : 0,
        indisprimary: ix.origin === "pk" ? 1 : 0,
        indimmediate: 1,
        indisvalid: 1,
        indisready: 1,
        indislive: 1,
        indkey: keys.join(" "),
        indcollation: keys.map(() => "0").join(" "),
        indclass: keys.map(() => "0").join(" "),
        indoption: keys.map(() => "0").join(" "),
        indexprs: ix.columns.includes(null) ? "(expression)" : null,
        indpred: ix.partial ? "(predicate)" : null,
      });
      ins("pg_catalog.pg_indexes", {
        schemaname: "public",
        tablename: r.name,
        indexname: name,
        indexdef: def,
      });
      if (ix.origin === "pk" || ix.origin === "u") {
        const cOid = conOid++;
        const cols = ix.columns.filter((c): c is string => c !== null);
        const condef = `${ix.origin === "pk" ? "PRIMARY KEY" : "UNIQUE"} (${columnList(cols)})`;
        oids.constraintDefs.set(cOid, condef);
        conRow({
          oid: cOid,
          conname: name,
          contype: ix.origin === "pk" ? "p" : "u",
          conindid: ixOid,
          conkey: `{${keys.join(",")}}`,
        });
        tableConstraint(name, ix.origin === "pk" ? "PRIMARY KEY" : "UNIQUE", cols);
      }
    }
    for (const fk of r.foreignKeys) {
      const target = schema.relations.find((x) => x.name === fk.table);
      const to = fk.to.some((c) => c === null) && target ? pkColumns(target) : fk.to as string[];
      const name = `${r.name}_${fk.from.join("_")}_fkey`;
      const cOid = conOid++;
      let condef = `FOREIGN KEY (${columnList(fk.from)}) REFERENCES ${quoteIdent(fk.table)}(${
        columnList(to)
      })`;
      if (fk.onUpdate !== "NO ACTION") condef += ` ON UPDATE ${fk.onUpdate}`;
      if (fk.onDelete !== "NO ACTION") condef += ` ON DELETE ${fk.onDelete}`;
      oids.constraintDefs.set(cOid, condef);
      const targetVisible = target?.columns.filter((c) => c.hidden === 0 || c.hidden >= 2) ?? [];
      conRow({
        oid: cOid,
        conname: name,
        contype: "f",
        confrelid: relOid.get(fk.table) ?? 0,
        confupdtype: FK_ACTION[fk.onUpdate] ?? "a",
        confdeltype: FK_ACTION[fk.onDelete] ?? "a",
        confmatchtype: "s",
        conkey: `{${fk.from.map(attnum).join(",")}}`,
        confkey: `{${to.map((c) => targetVisible.findIndex((x) => x.name === c) + 1).join(",")}}`,
      });
      tableConstraint(name, "FOREIGN KEY", fk.from);
      ins("information_schema.referential_constraints", {
        constraint_catalog: facts.database,
        constraint_schema: "public",
        constraint_name: name,
        unique_constraint_catalog: facts.database,
        unique_constraint_schema: "public",
        unique_constraint_name: `${fk.table}_pkey`,
        match_option: "NONE",
        update_rule: fk.onUpdate,
        delete_rule: fk.onDelete,
      });
    }
  }
  return oids;
}
