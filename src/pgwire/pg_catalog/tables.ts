/**
 * The PostgreSQL catalog relations, as tables of a private in-memory SQLite database (schemas
 * `pg_catalog` and `information_schema` are attached in-memory databases), filled from a
 * {@link Schema} by `fill.ts`. Column lists follow PostgreSQL 15; columns ha has nothing to say about hold
 * PostgreSQL's neutral value (0, false, NULL).
 *
 * @example
 * ```ts
 * const db = new DatabaseSync(":memory:");
 * createCatalog(db);
 * const oids = fillCatalog(db, schema, { user: "ha", database: "ha.db", databases: ["ha.db"] });
 * ```
 * @module
 */
import type { DatabaseSync, StatementSync } from "node:sqlite";
import { PG_TYPES } from "./types.ts";

/** Well-known OIDs. */
export const NS = { pg_catalog: 11, public: 2200, information_schema: 13_000 } as const;
/** The one role (the `--pg-user`). */
export const ROLE_OID = 10;
/** The first OID given to a user relation (as in PostgreSQL). */
export const FIRST_OID = 16_384;

/**
 * Catalog tables: name → columns. A column is `name` (text), `name:i` (integer, default 0),
 * `name:b` (boolean, default false) or `name:n` (integer, default NULL).
 */
const TABLES: Record<string, string> = {
  pg_namespace: "oid:i nspname nspowner:i nspacl",
  pg_class: "oid:i relname relnamespace:i reltype:i reloftype:i relowner:i relam:i " +
    "relfilenode:i reltablespace:i relpages:i reltuples:i relallvisible:i reltoastrelid:i " +
    "relhasindex:b relisshared:b relpersistence relkind relnatts:i relchecks:i relhasrules:b " +
    "relhastriggers:b relhassubclass:b relrowsecurity:b relforcerowsecurity:b relispopulated:b " +
    "relreplident relispartition:b relrewrite:i relfrozenxid:i relminmxid:i relacl reloptions " +
    "relpartbound",
  pg_attribute: "attrelid:i attname atttypid:i attstattarget:i attlen:i attnum:i attndims:i " +
    "attcacheoff:i atttypmod:i attbyval:b attalign attstorage attcompression attnotnull:b " +
    "atthasdef:b atthasmissing:b attidentity attgenerated attisdropped:b attislocal:b " +
    "attinhcount:i attcollation:i attacl attoptions attfdwoptions attmissingval",
  pg_attrdef: "oid:i adrelid:i adnum:i adbin",
  pg_index: "indexrelid:i indrelid:i indnatts:i indnkeyatts:i indisunique:b " +
    "indnullsnotdistinct:b indisprimary:b indisexclusion:b indimmediate:b indisclustered:b " +
    "indisvalid:b indcheckxmin:b indisready:b indislive:b indisreplident:b indkey indcollation " +
    "indclass indoption indexprs indpred",
  pg_constraint: "oid:i conname connamespace:i contype condeferrable:b condeferred:b " +
    "convalidated:b conrelid:i contypid:i conindid:i conparentid:i confrelid:i confupdtype " +
    "confdeltype confmatchtype conislocal:b coninhcount:i connoinherit:b conkey confkey " +
    "conpfeqop conppeqop conffeqop confdelsetcols conexclop conbin",
  pg_type: "oid:i typname typnamespace:i typowner:i typlen:i typbyval:b typtype typcategory " +
    "typispreferred:b typisdefined:b typdelim typrelid:i typsubscript typelem:i typarray:i " +
    "typinput typoutput typreceive typsend typmodin typmodout typanalyze typalign typstorage " +
    "typnotnull:b typbasetype:i typtypmod:i typndims:i typcollation:i typdefaultbin typdefault " +
    "typacl",
  pg_am: "oid:i amname amhandler amtype",
  pg_database: "oid:i datname datdba:i encoding:i datlocprovider datistemplate:b " +
    "datallowconn:b datconnlimit:i datfrozenxid:i datminmxid:i dattablespace:i datcollate " +
    "datctype daticulocale datcollversion datacl",
  pg_roles: "rolname rolsuper:b rolinherit:b rolcreaterole:b rolcreatedb:b rolcanlogin:b " +
    "rolreplication:b rolconnlimit:i rolpassword rolvaliduntil rolbypassrls:b rolconfig oid:i",
  pg_user: "usename usesysid:i usecreatedb:b usesuper:b userepl:b usebypassrls:b passwd " +
    "valuntil useconfig",
  pg_auth_members: "roleid:i member:i grantor:i admin_option:b",
  pg_settings: "name setting unit category short_desc extra_desc context vartype source " +
    "min_val max_val enumvals boot_val reset_val sourcefile sourceline:n pending_restart:b",
  pg_description: "objoid:i classoid:i objsubid:i description",
  pg_shdescription: "objoid:i classoid:i description",
  pg_proc: "oid:i proname pronamespace:i proowner:i prolang:i procost:i prorows:i " +
    "provariadic:i prosupport prokind prosecdef:b proleakproof:b proisstrict:b proretset:b " +
    "provolatile proparallel pronargs:i pronargdefaults:i prorettype:i proargtypes " +
    "proallargtypes proargmodes proargnames proargdefaults protrftypes prosrc probin " +
    "prosqlbody proconfig proacl",
  pg_inherits: "inhrelid:i inhparent:i inhseqno:i inhdetachpending:b",
  pg_trigger: "oid:i tgrelid:i tgparentid:i tgname tgfoid:i tgtype:i tgenabled " +
    "tgisinternal:b tgconstrrelid:i tgconstrindid:i tgconstraint:i tgdeferrable:b " +
    "tginitdeferred:b tgnargs:i tgattr tgargs tgqual tgoldtable tgnewtable",
  pg_rewrite: "oid:i rulename ev_class:i ev_type ev_enabled is_instead:b ev_qual ev_action",
  pg_policy: "oid:i polname polrelid:i polcmd polpermissive:b polroles polqual polwithcheck",
  pg_statistic_ext: "oid:i stxrelid:i stxname stxnamespace:i stxowner:i stxstattarget:i " +
    "stxkeys stxkind stxexprs",
  pg_publication: "oid:i pubname pubowner:i puballtables:b pubinsert:b pubupdate:b " +
    "pubdelete:b pubtruncate:b pubviaroot:b",
  pg_publication_rel: "oid:i prpubid:i prrelid:i prqual prattrs",
  pg_publication_namespace: "oid:i pnpubid:i pnnspid:i",
  pg_extension: "oid:i extname extowner:i extnamespace:i extrelocatable:b extversion " +
    "extconfig extcondition",
  pg_sequence: "seqrelid:i seqtypid:i seqstart:i seqincrement:i seqmax:i seqmin:i " +
    "seqcache:i seqcycle:b",
  pg_collation: "oid:i collname collnamespace:i collowner:i collprovider " +
    "collisdeterministic:b collencoding:i collcollate collctype colliculocale collversion",
  pg_enum: "oid:i enumtypid:i enumsortorder:i enumlabel",
  pg_range: "rngtypid:i rngsubtype:i rngmultitypid:i rngcollation:i rngsubopc:i " +
    "rngcanonical rngsubdiff",
  pg_tablespace: "oid:i spcname spcowner:i spcacl spcoptions",
  pg_depend: "classid:i objid:i objsubid:i refclassid:i refobjid:i refobjsubid:i deptype",
  pg_foreign_table: "ftrelid:i ftserver:i ftoptions",
  pg_foreign_server: "oid:i srvname srvowner:i srvfdw:i srvtype srvversion srvacl srvoptions",
  pg_foreign_data_wrapper: "oid:i fdwname fdwowner:i fdwhandler:i fdwvalidator:i fdwacl " +
    "fdwoptions",
  pg_partitioned_table: "partrelid:i partstrat partnatts:i partdefid:i partattrs partclass " +
    "partcollation partexprs",
  pg_event_trigger: "oid:i evtname evtevent evtowner:i evtfoid:i evtenabled evttags",
  pg_language: "oid:i lanname lanowner:i lanispl:b lanpltrusted:b lanplcallfoid:i " +
    "laninline:i lanvalidator:i lanacl",
  pg_opclass: "oid:i opcmethod:i opcname opcnamespace:i opcowner:i opcfamily:i " +
    "opcintype:i opcdefault:b opckeytype:i",
  pg_operator: "oid:i oprname oprnamespace:i oprowner:i oprkind oprcanmerge:b " +
    "oprcanhash:b oprleft:i oprright:i oprresult:i oprcom:i oprnegate:i oprcode oprrest " +
    "oprjoin",
  pg_cast: "oid:i castsource:i casttarget:i castfunc:i castcontext castmethod",
  pg_conversion: "oid:i conname connamespace:i conowner:i conforencoding:i " +
    "contoencoding:i conproc condefault:b",
  pg_aggregate: "aggfnoid:i aggkind aggnumdirectargs:i aggtransfn aggfinalfn",
  pg_stat_activity: "datid:i datname pid:i leader_pid:n usesysid:i usename " +
    "application_name client_addr client_hostname client_port:i backend_start xact_start " +
    "query_start state_change wait_event_type wait_event state backend_xid backend_xmin " +
    "query_id:n query backend_type",
  pg_locks: "locktype database:i relation:i page:n tuple:n virtualxid transactionid " +
    "classid:n objid:n objsubid:n virtualtransaction pid:i mode granted:b fastpath:b " +
    "waitstart",
  pg_tables: "schemaname tablename tableowner tablespace hasindexes:b hasrules:b " +
    "hastriggers:b rowsecurity:b",
  pg_views: "schemaname viewname viewowner definition",
  pg_matviews: "schemaname matviewname matviewowner tablespace hasindexes:b ispopulated:b " +
    "definition",
  pg_indexes: "schemaname tablename indexname tablespace indexdef",
  pg_sequences: "schemaname sequencename sequenceowner data_type start_value:i min_value:i " +
    "max_value:i increment_by:i cycle:b cache_size:i last_value:n",
  pg_stat_user_tables: "relid:i schemaname relname seq_scan:i seq_tup_read:i idx_scan:i " +
    "idx_tup_fetch:i n_tup_ins:i n_tup_upd:i n_tup_del:i n_live_tup:i n_dead_tup:i",
  pg_statio_user_tables: "relid:i schemaname relname heap_blks_read:i heap_blks_hit:i",
  pg_timezone_names: "name abbrev utc_offset is_dst:b",
};

/** information_schema views (as tables). */
const INFO_TABLES: Record<string, string> = {
  schemata: "catalog_name schema_name schema_owner default_character_set_catalog " +
    "default_character_set_schema default_character_set_name sql_path",
  tables: "table_catalog table_schema table_name table_type self_referencing_column_name " +
    "reference_generation user_defined_type_catalog user_defined_type_schema " +
    "user_defined_type_name is_insertable_into is_typed commit_action",
  views: "table_catalog table_schema table_name view_definition check_option is_updatable " +
    "is_insertable_into is_trigger_updatable is_trigger_deletable is_trigger_insertable_into",
  columns: "table_catalog table_schema table_name column_name ordinal_position:i " +
    "column_default is_nullable data_type character_maximum_length:n " +
    "character_octet_length:n numeric_precision:n numeric_precision_radix:n numeric_scale:n " +
    "datetime_precision:n interval_type interval_precision:n character_set_catalog " +
    "character_set_schema character_set_name collation_catalog collation_schema " +
    "collation_name domain_catalog domain_schema domain_name udt_catalog udt_schema udt_name " +
    "scope_catalog scope_schema scope_name maximum_cardinality:n dtd_identifier " +
    "is_self_referencing is_identity identity_generation identity_start identity_increment " +
    "identity_maximum identity_minimum identity_cycle is_generated generation_expression " +
    "is_updatable",
  table_constraints: "constraint_catalog constraint_schema constraint_name table_catalog " +
    "table_schema table_name constraint_type is_deferrable initially_deferred enforced " +
    "nulls_distinct",
  key_column_usage: "constraint_catalog constraint_schema constraint_name table_catalog " +
    "table_schema table_name column_name ordinal_position:i position_in_unique_constraint:n",
  referential_constraints: "constraint_catalog constraint_schema constraint_name " +
    "unique_constraint_catalog unique_constraint_schema unique_constraint_name match_option " +
    "update_rule delete_rule",
  constraint_column_usage: "table_catalog table_schema table_name column_name " +
    "constraint_catalog constraint_schema constraint_name",
  check_constraints: "constraint_catalog constraint_schema constraint_name check_clause",
  sequences: "sequence_catalog sequence_schema sequence_name data_type numeric_precision:n " +
    "numeric_precision_radix:n numeric_scale:n start_value minimum_value maximum_value " +
    "increment cycle_option",
  routines: "specific_catalog specific_schema specific_name routine_catalog routine_schema " +
    "routine_name routine_type data_type routine_definition external_language",
  triggers: "trigger_catalog trigger_schema trigger_name event_manipulation " +
    "event_object_catalog event_object_schema event_object_table action_order:i " +
    "action_condition action_statement action_orientation action_timing",
  enabled_roles: "role_name",
  character_sets: "character_set_catalog character_set_schema character_set_name " +
    "character_repertoire form_of_use default_collate_catalog default_collate_schema " +
    "default_collate_name",
};

/** Names of the boolean columns of all catalog tables (for `col = 't'` comparisons). */
export const BOOLEAN_COLUMNS: ReadonlySet<string> = new Set(
  Object.values(TABLES).flatMap((cols) =>
    cols.split(" ").filter((c) => c.endsWith(":b")).map((c) => c.slice(0, -2))
  ),
);

/** Every relation name of the catalog, upper-cased (what marks a query as a catalog query). */
export const CATALOG_RELATIONS: ReadonlySet<string> = new Set(
  Object.keys(TABLES).map((t) => t.toUpperCase()),
);

/** information_schema relation names. */
export const INFO_RELATIONS: ReadonlySet<string> = new Set(Object.keys(INFO_TABLES));

function ddl(schema: string, name: string, cols: string): string {
  const defs = cols.split(" ").map((c) => {
    const [n, t] = c.split(":");
    const q = `"${n}"`;
    if (t === "i") return `${q} INTEGER DEFAULT 0`;
    if (t === "b") return `${q} BOOLEAN DEFAULT 0`;
    if (t === "n") return `${q} INTEGER`;
    return `${q} TEXT`;
  });
  return `CREATE TABLE ${schema}.${name} (${defs.join(", ")})`;
}

/** Creates the catalog schemas and tables (empty) in `db`. */
export function createCatalog(db: DatabaseSync): void {
  db.exec("ATTACH ':memory:' AS pg_catalog; ATTACH ':memory:' AS information_schema");
  for (const [name, cols] of Object.entries(TABLES)) db.exec(ddl("pg_catalog", name, cols));
  for (const [name, cols] of Object.entries(INFO_TABLES)) {
    db.exec(ddl("information_schema", name, cols));
  }
  const ins = inserter(db);
  for (const [name, oid] of Object.entries(NS)) {
    ins("pg_catalog.pg_namespace", { oid, nspname: name, nspowner: ROLE_OID });
  }
  for (const t of PG_TYPES) {
    ins("pg_catalog.pg_type", {
      oid: t.oid,
      typname: t.name,
      typnamespace: NS.pg_catalog,
      typowner: ROLE_OID,
      typlen: t.len,
      typbyval: t.len > 0 && t.len <= 8 ? 1 : 0,
      typtype: "b",
      typcategory: t.category,
      typisdefined: 1,
      typdelim: ",",
      typinput: `${t.name}in`,
      typoutput: `${t.name}out`,
      typalign: "i",
      typstorage: t.len > 0 ? "p" : "x",
      typtypmod: -1,
      typcollation: t.category === "S" ? 100 : 0,
    });
  }
  ins("pg_catalog.pg_am", {
    oid: 2,
    amname: "heap",
    amhandler: "heap_tableam_handler",
    amtype: "t",
  });
  ins("pg_catalog.pg_am", { oid: 403, amname: "btree", amhandler: "bthandler", amtype: "i" });
  ins("pg_catalog.pg_tablespace", { oid: 1663, spcname: "pg_default", spcowner: ROLE_OID });
  ins("pg_catalog.pg_language", { oid: 12, lanname: "internal", lanowner: ROLE_OID });
  ins("pg_catalog.pg_language", { oid: 14, lanname: "sql", lanowner: ROLE_OID });
  ins("pg_catalog.pg_collation", {
    oid: 100,
    collname: "default",
    collnamespace: NS.pg_catalog,
    collowner: ROLE_OID,
    collprovider: "d",
    collisdeterministic: 1,
    collencoding: -1,
  });
}

export type Insert = (table: string, row: Record<string, unknown>) => void;

/** Inserts rows into catalog tables, one prepared statement per table and column set. */
export function inserter(db: DatabaseSync): Insert {
  const prepared = new Map<string, StatementSync>();
  return (table, row) => {
    const keys = Object.keys(row);
    const sql = `INSERT INTO ${table} (${keys.map((k) => `"${k}"`).join(", ")}) VALUES (${
      keys.map(() => "?").join(", ")
    })`;
    let stmt = prepared.get(sql);
    if (!stmt) prepared.set(sql, stmt = db.prepare(sql));
    stmt.run(...keys.map((k) => row[k] as null | number | bigint | string));
  };
}
