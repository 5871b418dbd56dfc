/**
 * The PostgreSQL catalog and COPY against a real `ha`: psql's meta-commands (`\dt`, `\d t`,
 * `\di`, `\dv`, `\l`, `\dn`, `\du`, `psql -l`, `\copy`), the exact catalog queries DBeaver and
 * pgAdmin send, SQLAlchemy 1.4 Core (Debian's python3-sqlalchemy + psycopg2) and Knex with `pg`.
 */
import assert from "node:assert/strict";
import knexLib from "knex";
import pg from "pg";
import postgres from "postgres";
import { Cluster, freePort, waitFor } from "./helpers/cluster.ts";
import { type PgTarget, psql, run, startPg } from "./pgwire_helpers.ts";

const opts = { sanitizeResources: false, sanitizeOps: false };

const SCHEMA = `
CREATE TABLE users (id INTEGER PRIMARY KEY, name VARCHAR(50) NOT NULL DEFAULT 'anon',
  active BOOLEAN, created TIMESTAMP);
CREATE INDEX users_name ON users(name);
CREATE TABLE posts (id INTEGER PRIMARY KEY, user_id INTEGER REFERENCES users(id),
  slug TEXT UNIQUE, body TEXT);
CREATE VIEW active_users AS SELECT id, name FROM users WHERE active;
`;

async function ok(port: number, args: string[], stdin?: string): Promise<string> {
  const r = await psql(port, ["-v", "ON_ERROR_STOP=1", ...args], { stdin });
  assert.equal(r.code, 0, `psql ${args.join(" ")}: ${r.stderr}`);
  return r.stdout;
}

type Row = Record<string, unknown>;

/** The rows of a query as plain records. */
async function rows(c: pg.Client, sql: string, params?: unknown[]): Promise<Row[]> {
  return (await c.query(sql, params)).rows as Row[];
}

function client(port: number): pg.Client {
  return new pg.Client({ host: "127.0.0.1", port, user: "ha", password: "ha", database: "ha" });
}

Deno.test("psql meta-commands answered from SQLite's schema", opts, async (t) => {
  const server: PgTarget = await startPg();
  try {
    await ok(server.port, ["-c", SCHEMA]);
    await t.step("\\dt lists the tables", async () => {
      const out = await ok(server.port, ["-c", "\\dt"]);
      assert.match(out, /public \| posts +\| table \| ha/);
      assert.match(out, /public \| users +\| table \| ha/);
      assert.match(out, /\(2 rows\)/);
      assert.doesNotMatch(out, /_ha_/);
    });
    await t.step("\\d users: columns with PostgreSQL types, indexes, referenced by", async () => {
      const out = await ok(server.port, ["-c", "\\d users"]);
      assert.match(out, /Table "public\.users"/);
      assert.match(out, /id +\| bigint +\| +\| not null \|/);
      assert.match(out, /name +\| character varying\(50\) +\| +\| not null \| 'anon'/);
      assert.match(out, /active +\| boolean/);
      assert.match(out, /created +\| timestamp without time zone/);
      assert.match(out, /"users_pkey" PRIMARY KEY, btree \(id\)/);
      assert.match(out, /"users_name" btree \(name\)/);
      assert.match(
        out,
        /TABLE "posts" CONSTRAINT "posts_user_id_fkey" FOREIGN KEY \(user_id\) REFERENCES users\(id\)/,
      );
    });
    await t.step("\\d posts: unique constraint and foreign key", async () => {
      const out = await ok(server.port, ["-c", "\\d posts"]);
      assert.match(out, /"posts_slug_key" UNIQUE CONSTRAINT, btree \(slug\)/);
      assert.match(
        out,
        /Foreign-key constraints:\n +"posts_user_id_fkey" FOREIGN KEY \(user_id\) REFERENCES users\(id\)/,
      );
    });
    await t.step("\\di, \\dv, \\d", async () => {
      const di = await ok(server.port, ["-c", "\\di"]);
      for (const ix of ["posts_pkey", "posts_slug_key", "users_name", "users_pkey"]) {
        assert.match(di, new RegExp(`public \\| ${ix} +\\| index \\| ha +\\| (users|posts)`));
      }
      const dv = await ok(server.port, ["-c", "\\dv"]);
      assert.match(dv, /public \| active_users \| view \| ha/);
      const d = await ok(server.port, ["-c", "\\d"]);
      assert.match(d, /\(3 rows\)/);
      const view = await ok(server.port, ["-c", "\\d active_users"]);
      assert.match(view, /View "public\.active_users"/);
    });
    await t.step("\\l, psql -l, \\dn, \\du", async () => {
      for (const out of [await ok(server.port, ["-c", "\\l"]), await ok(server.port, ["-l"])]) {
        assert.match(out, /ha\.db +\| ha +\| UTF8/);
      }
      assert.match(await ok(server.port, ["-c", "\\dn"]), /public \| ha/);
      assert.match(await ok(server.port, ["-c", "\\du"]), /ha +\| Superuser/);
    });
    await t.step("a schema change is seen by the next catalog query", async () => {
      await ok(server.port, ["-c", "CREATE TABLE later (x TEXT)"]);
      assert.match(await ok(server.port, ["-c", "\\dt"]), /later/);
    });
    await t.step("information_schema, pg_settings, pg_tables", async () => {
      const out = await ok(server.port, [
        "-tA",
        "-c",
        "SELECT table_name, table_type FROM information_schema.tables " +
        "WHERE table_schema = 'public' ORDER BY 1",
      ]);
      assert.equal(
        out.trim(),
        "active_users|VIEW\nlater|BASE TABLE\nposts|BASE TABLE\nusers|BASE TABLE",
      );
      const cols = await ok(server.port, [
        "-tA",
        "-c",
        "SELECT column_name, data_type, is_nullable, character_maximum_length " +
        "FROM information_schema.columns WHERE table_name = 'users' ORDER BY ordinal_position",
      ]);
      assert.equal(
        cols.trim(),
        "id|bigint|NO|\nname|character varying|NO|50\nactive|boolean|YES|\ncreated|timestamp without time zone|YES|",
      );
      const s = await ok(server.port, [
        "-tA",
        "-c",
        "SET application_name = 'cat'; SELECT setting FROM pg_settings WHERE name = 'application_name'",
      ]);
      assert.match(s, /^SET\ncat\n$/);
      assert.equal(
        (await ok(server.port, [
          "-tA",
          "-c",
          "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'",
        ])).trim(),
        "3",
      );
    });
    await t.step("an unsupported catalog query names what is missing (0A000)", async () => {
      const r = await psql(server.port, [
        "-v",
        "VERBOSITY=verbose",
        "-c",
        "SELECT * FROM pg_catalog.pg_stat_replication",
      ]);
      assert.notEqual(r.code, 0);
      assert.match(r.stderr, /0A000/);
      assert.match(r.stderr, /pg_stat_replication is not supported by ha/);
      const f = await psql(server.port, [
        "-v",
        "VERBOSITY=verbose",
        "-c",
        "SELECT pg_catalog.pg_current_wal_lsn() FROM pg_catalog.pg_class",
      ]);
      assert.match(f.stderr, /0A000.*function pg_current_wal_lsn\(\) is not supported/s);
    });
  } finally {
    await server.stop();
  }
});

/** DBeaver's navigator queries (PostgreDataSource/PostgreDatabase/PostgreSchema), as sent. */
const DBEAVER = {
  init: "SELECT current_schema(),session_user",
  searchPath: "SELECT reset_val FROM pg_settings WHERE name = 'search_path'",
  databases: "SELECT db.oid,db.* FROM pg_catalog.pg_database db WHERE 1 = 1 AND datallowconn " +
    "AND NOT datistemplate  ORDER BY db.datname",
  database: "SELECT db.oid,db.* FROM pg_catalog.pg_database db WHERE datname=$1",
  schemas: "SELECT n.oid,n.*,d.description FROM pg_catalog.pg_namespace n\n" +
    "LEFT OUTER JOIN pg_catalog.pg_description d ON d.objoid=n.oid AND d.objsubid=0 AND " +
    "d.classoid='pg_namespace'::regclass\n ORDER BY nspname",
  tables: "SELECT c.oid,c.*,d.description,pg_catalog.pg_get_expr(c.relpartbound, c.oid) as " +
    "partition_expr,  pg_catalog.pg_get_partkeydef(c.oid) as partition_key \n" +
    "FROM pg_catalog.pg_class c\nLEFT OUTER JOIN pg_catalog.pg_description d ON d.objoid=c.oid " +
    "AND d.objsubid=0 AND d.classoid='pg_class'::regclass\n" +
    "WHERE c.relnamespace=$1 AND c.relkind not in ('i','I','c')",
  columns: "SELECT c.relname,a.*,pg_catalog.pg_get_expr(ad.adbin, ad.adrelid, true) as " +
    "def_value,dsc.description,dep.objid\nFROM pg_catalog.pg_attribute a\n" +
    "INNER JOIN pg_catalog.pg_class c ON (a.attrelid=c.oid)\n" +
    "LEFT OUTER JOIN pg_catalog.pg_attrdef ad ON (a.attrelid=ad.adrelid AND a.attnum = ad.adnum)\n" +
    "LEFT OUTER JOIN pg_catalog.pg_description dsc ON (c.oid=dsc.objoid AND a.attnum = dsc.objsubid)\n" +
    "LEFT OUTER JOIN pg_depend dep on dep.refobjid = a.attrelid AND dep.deptype = 'i' and " +
    "dep.refobjsubid = a.attnum and dep.classid = dep.refclassid\n" +
    "WHERE NOT a.attisdropped AND c.relkind not in ('i','I','c') AND c.oid=$1 ORDER BY a.attnum",
  type: "SELECT t.oid,t.*,c.relkind,format_type(nullif(t.typbasetype, 0), t.typtypmod) as " +
    "base_type_name FROM pg_catalog.pg_type t\nLEFT OUTER JOIN pg_class c ON c.oid=t.typrelid\n" +
    "LEFT OUTER JOIN pg_catalog.pg_description d ON t.oid=d.objoid\nWHERE t.oid=$1 ",
  constraints: "SELECT c.oid,c.*,t.relname as tabrelname,rt.relnamespace as refnamespace," +
    "d.description, case when c.contype='c' then \"substring\"(pg_get_constraintdef(c.oid), 7) " +
    "else null end consrc_copy\nFROM pg_catalog.pg_constraint c\n" +
    "INNER JOIN pg_catalog.pg_class t ON t.oid=c.conrelid\n" +
    "LEFT OUTER JOIN pg_catalog.pg_class rt ON rt.oid=c.confrelid\n" +
    "LEFT OUTER JOIN pg_catalog.pg_description d ON d.objoid=c.oid AND d.objsubid=0 AND " +
    "d.classoid='pg_constraint'::regclass\nWHERE c.conrelid=$1\nORDER BY c.oid",
  indexes: "SELECT i.*,i.indkey as keys,c.relname,c.relnamespace,c.relam,c.reltablespace," +
    "tc.relname as tabrelname,dsc.description,pg_catalog.pg_get_expr(i.indpred, i.indrelid) as " +
    "pred_expr,pg_catalog.pg_get_expr(i.indexprs, i.indrelid, true) as expr," +
    "pg_catalog.pg_relation_size(i.indexrelid) as index_rel_size," +
    "pg_catalog.pg_stat_get_numscans(i.indexrelid) as index_num_scans\n" +
    "FROM pg_catalog.pg_index i\nINNER JOIN pg_catalog.pg_class c ON c.oid=i.indexrelid\n" +
    "INNER JOIN pg_catalog.pg_class tc ON tc.oid=i.indrelid\n" +
    "LEFT OUTER JOIN pg_catalog.pg_description dsc ON i.indexrelid=dsc.objoid\n" +
    "WHERE  i.indrelid=$1 ORDER BY tabrelname, c.relname",
};

/** pgAdmin 4's browser-tree queries (databases, schemas, tables, columns nodes.sql). */
const PGADMIN = {
  databases: "SELECT db.oid as did, db.datname as name, ta.spcname as spcname, db.datallowconn,\n" +
    "    db.datistemplate AS is_template,\n" +
    "    pg_catalog.has_database_privilege(db.oid, 'CREATE') as cancreate, datdba as owner,\n" +
    "    descr.description\nFROM pg_catalog.pg_database db\n" +
    "    LEFT OUTER JOIN pg_catalog.pg_tablespace ta ON db.dattablespace = ta.oid\n" +
    "    LEFT OUTER JOIN pg_catalog.pg_shdescription descr ON (\n" +
    "        db.oid=descr.objoid AND descr.classoid='pg_database'::regclass\n    )\n" +
    "WHERE db.oid > 16383::OID OR db.datname IN ('postgres', 'edb')\nORDER BY datname;",
  schemas: "SELECT\n    nsp.oid,\n    nsp.nspname as name,\n" +
    "    pg_catalog.has_schema_privilege(nsp.oid, 'CREATE') as can_create,\n" +
    "    pg_catalog.has_schema_privilege(nsp.oid, 'USAGE') as has_usage,\n" +
    "    des.description\nFROM\n    pg_catalog.pg_namespace nsp\n" +
    "    LEFT OUTER JOIN pg_catalog.pg_description des ON\n" +
    "        (des.objoid=nsp.oid AND des.classoid='pg_namespace'::regclass)\n" +
    "WHERE\n    nspname NOT LIKE E'pg\\\\_%' AND\n    NOT (\n" +
    "(nsp.nspname = 'pg_catalog' AND EXISTS\n" +
    "        (SELECT 1 FROM pg_catalog.pg_class WHERE relname = 'pg_class' AND\n" +
    "            relnamespace = nsp.oid LIMIT 1)) OR\n" +
    "(nsp.nspname = 'information_schema' AND EXISTS\n" +
    "        (SELECT 1 FROM pg_catalog.pg_class WHERE relname = 'tables' AND\n" +
    "            relnamespace = nsp.oid LIMIT 1))\n    )\nORDER BY nspname;",
  tables: "SELECT rel.oid, rel.relname AS name,\n" +
    "    (SELECT count(*) FROM pg_catalog.pg_trigger WHERE tgrelid=rel.oid AND tgisinternal = FALSE) AS triggercount,\n" +
    "    (SELECT count(*) FROM pg_catalog.pg_trigger WHERE tgrelid=rel.oid AND tgisinternal = FALSE AND tgenabled = 'O') AS has_enable_triggers,\n" +
    "    (CASE WHEN rel.relkind = 'p' THEN true ELSE false END) AS is_partitioned,\n" +
    "    (SELECT count(1) FROM pg_catalog.pg_inherits WHERE inhrelid=rel.oid LIMIT 1) as is_inherits,\n" +
    "    (SELECT count(1) FROM pg_catalog.pg_inherits WHERE inhparent=rel.oid LIMIT 1) as is_inherited,\n" +
    "    des.description\nFROM pg_catalog.pg_class rel\n" +
    "    LEFT OUTER JOIN pg_catalog.pg_description des ON (des.objoid=rel.oid AND des.objsubid=0 AND des.classoid='pg_class'::regclass)\n" +
    "    WHERE rel.relkind IN ('r','s','t','p') AND rel.relnamespace = 2200::oid\n" +
    "    AND NOT rel.relispartition\n    ORDER BY rel.relname;",
  columns: "SELECT DISTINCT att.attname as name, att.attnum as OID, " +
    "pg_catalog.format_type(ty.oid,NULL) AS datatype,\n" +
    "att.attnotnull as not_null, att.atthasdef as has_default_val, des.description\n" +
    "FROM pg_catalog.pg_attribute att\n" +
    "    JOIN pg_catalog.pg_type ty ON ty.oid=atttypid\n" +
    "    JOIN pg_catalog.pg_namespace tn ON tn.oid=ty.typnamespace\n" +
    "    JOIN pg_catalog.pg_class cl ON cl.oid=att.attrelid\n" +
    "    JOIN pg_catalog.pg_namespace na ON na.oid=cl.relnamespace\n" +
    "    LEFT OUTER JOIN pg_catalog.pg_type et ON et.oid=ty.typelem\n" +
    "    LEFT OUTER JOIN pg_catalog.pg_attrdef def ON adrelid=att.attrelid AND adnum=att.attnum\n" +
    "    LEFT OUTER JOIN (pg_catalog.pg_depend dep JOIN pg_catalog.pg_class cs ON dep.classid='pg_class'::regclass AND dep.objid=cs.oid AND cs.relkind='S') ON dep.refobjid=att.attrelid AND dep.refobjsubid=att.attnum\n" +
    "    LEFT OUTER JOIN pg_catalog.pg_namespace ns ON ns.oid=cs.relnamespace\n" +
    "    LEFT OUTER JOIN pg_catalog.pg_index pi ON pi.indrelid=att.attrelid AND indisprimary\n" +
    "    LEFT OUTER JOIN pg_catalog.pg_description des ON (des.objoid=att.attrelid AND des.objsubid=att.attnum AND des.classoid='pg_class'::regclass)\n" +
    "WHERE\n    att.attrelid = $1::oid\n    AND att.attnum > 0\n    AND att.attisdropped IS FALSE\n" +
    "ORDER BY att.attnum;",
};

Deno.test("DBeaver and pgAdmin catalog queries (extended protocol, as sent)", opts, async (t) => {
  const server = await startPg();
  const c = client(server.port);
  await c.connect();
  try {
    await c.query(SCHEMA);
    let usersOid = 0;
    await t.step("DBeaver navigator", async () => {
      assert.deepEqual(await rows(c, DBEAVER.init), [{
        current_schema: "public",
        session_user: "ha",
      }]);
      assert.equal((await rows(c, DBEAVER.searchPath))[0].reset_val, '"$user", public');
      const dbs = await rows(c, DBEAVER.databases);
      assert.deepEqual(dbs.map((r) => r.datname), ["ha.db"]);
      assert.equal((await rows(c, DBEAVER.database, ["ha.db"]))[0].datname, "ha.db");
      const ns = await rows(c, DBEAVER.schemas);
      const pub = ns.find((r) => r.nspname === "public");
      assert.ok(pub, JSON.stringify(ns));
      const tables = await rows(c, DBEAVER.tables, [pub.oid]);
      assert.deepEqual(tables.map((r) => `${r.relname}:${r.relkind}`).sort(), [
        "active_users:v",
        "posts:r",
        "users:r",
      ]);
      usersOid = Number(tables.find((r) => r.relname === "users")?.oid);
      const cols = await rows(c, DBEAVER.columns, [usersOid]);
      assert.deepEqual(cols.map((r) => [r.attname, r.attnotnull, r.def_value]), [
        ["id", true, null],
        ["name", true, "'anon'"],
        ["active", false, null],
        ["created", false, null],
      ]);
      const type = await rows(c, DBEAVER.type, [1043]);
      assert.equal(type[0].typname, "varchar");
      const postsOid = Number(tables.find((r) => r.relname === "posts")?.oid);
      const cons = await rows(c, DBEAVER.constraints, [postsOid]);
      assert.deepEqual(cons.map((r) => [r.conname, r.contype]), [
        ["posts_pkey", "p"],
        ["posts_slug_key", "u"],
        ["posts_user_id_fkey", "f"],
      ]);
      const ix = await rows(c, DBEAVER.indexes, [postsOid]);
      assert.deepEqual(ix.map((r) => [r.relname, r.indisunique, r.indisprimary, r.keys]), [
        ["posts_pkey", true, true, "1"],
        ["posts_slug_key", true, false, "3"],
      ]);
    });
    await t.step(
      "postgres.js: catalog query described before it runs (Parse, Describe S)",
      async () => {
        const sql = postgres({
          host: "127.0.0.1",
          port: server.port,
          user: "ha",
          password: "ha",
          database: "ha",
        });
        try {
          const r = await sql`SELECT relname, relhasindex FROM pg_catalog.pg_class
          WHERE relname = ${"users"} AND pg_catalog.pg_table_is_visible(oid)`;
          assert.deepEqual([...r], [{ relname: "users", relhasindex: true }]);
          await assert.rejects(sql`SELECT * FROM pg_catalog.pg_nope`, /pg_nope is not supported/);
        } finally {
          await sql.end();
        }
      },
    );
    await t.step("pgAdmin browser tree", async () => {
      const dbs = await rows(c, PGADMIN.databases);
      assert.deepEqual(dbs.map((r) => [r.name, r.datallowconn, r.cancreate]), [[
        "ha.db",
        true,
        true,
      ]]);
      const schemas = await rows(c, PGADMIN.schemas);
      assert.deepEqual(schemas.map((r) => r.name), ["information_schema", "public"]);
      const tables = await rows(c, PGADMIN.tables);
      assert.deepEqual(tables.map((r) => [r.name, r.triggercount]), [["posts", "0"], [
        "users",
        "0",
      ]]);
      const cols = await rows(c, PGADMIN.columns, [usersOid]);
      assert.deepEqual(cols.map((r) => [r.name, r.datatype, r.not_null]), [
        ["id", "bigint", true],
        ["name", "character varying", true],
        ["active", "boolean", false],
        ["created", "timestamp without time zone", false],
      ]);
    });
  } finally {
    await c.end();
    await server.stop();
  }
});

Deno.test(
  "SQLAlchemy 1.4 Core and Knex: create, insert RETURNING ids, select, reflect",
  opts,
  async (t) => {
    const server = await startPg();
    try {
      await t.step("SQLAlchemy (python3-sqlalchemy + psycopg2)", async () => {
        const r = await run("/usr/bin/python3", [
          new URL("./orm/sqlalchemy_core.py", import.meta.url).pathname,
          `postgresql+psycopg2://ha:ha@127.0.0.1:${server.port}/ha`,
        ], { timeoutMs: 60_000 });
        assert.equal(r.code, 0, r.stderr);
        const out = JSON.parse(r.stdout.trim().split("\n").pop()!);
        assert.equal(out.ids.length, 2);
        assert.notEqual(out.ids[0], out.ids[1]);
        assert.deepEqual(out.rows, [["ann", true, true, "hello"], ["bob", false, true, "x"]]);
        assert.deepEqual(out.tables, ["sa_posts", "sa_users"]);
        assert.deepEqual(out.columns, [
          ["id", "BIGINT", false],
          ["name", "VARCHAR(50)", false],
          ["active", "BOOLEAN", true],
          ["created", "TIMESTAMP", true],
        ]);
        assert.deepEqual(out.pk, ["id"]);
        assert.deepEqual(out.fks, [[["user_id"], "sa_users", ["id"]]]);
        assert.deepEqual(out.indexes, [["ix_sa_posts_user_id", ["user_id"], false]]);
        assert.deepEqual(out.reflected, ["sa_posts", "sa_users"]);
        assert.deepEqual(out.after_drop, []);
      });
      await t.step("Knex 3 with pg", async () => {
        const knex = knexLib({
          client: "pg",
          connection: {
            host: "127.0.0.1",
            port: server.port,
            user: "ha",
            password: "ha",
            database: "ha",
          },
        });
        try {
          assert.equal(await knex.schema.hasTable("k_users"), false);
          await knex.schema.createTable("k_users", (tb) => {
            tb.increments("id");
            tb.string("name").notNullable();
            tb.boolean("active").defaultTo(true);
            tb.timestamp("created_at").defaultTo(knex.fn.now());
          });
          await knex.schema.createTable("k_posts", (tb) => {
            tb.bigIncrements("id");
            tb.integer("user_id").index();
            tb.jsonb("meta");
          });
          assert.equal(await knex.schema.hasTable("k_users"), true);
          assert.equal(await knex.schema.hasColumn("k_users", "name"), true);
          // rows with different keys: Knex sends VALUES (DEFAULT, $1), ($2, $3)
          const ids = await knex("k_users").insert([{ name: "ann" }, {
            name: "bob",
            active: false,
          }])
            .returning("id");
          assert.equal(ids.length, 2);
          await knex("k_posts").insert({ user_id: ids[0].id, meta: JSON.stringify({ a: 1 }) });
          const rows = await knex("k_users").join("k_posts", "k_posts.user_id", "k_users.id")
            .select("k_users.name", "k_users.active", "k_posts.meta");
          assert.deepEqual(rows, [{ name: "ann", active: true, meta: { a: 1 } }]);
          const info = await knex("k_users").columnInfo();
          assert.equal(info.name.type, "character varying");
          assert.equal(info.name.nullable, false);
          assert.equal(info.created_at.defaultValue, "CURRENT_TIMESTAMP");
          const [{ created_at }] = await knex("k_users").select("created_at").where({
            name: "ann",
          });
          assert.ok(created_at, "DEFAULT now() filled the column");
          await knex.schema.dropTable("k_posts");
          await knex.schema.dropTable("k_users");
          assert.equal(await knex.schema.hasTable("k_users"), false);
        } finally {
          await knex.destroy();
        }
      });
    } finally {
      await server.stop();
    }
  },
);

Deno.test("psql \\copy in and out: text, CSV, options, one transaction", opts, async (t) => {
  const server = await startPg();
  const dir = await Deno.makeTempDir({ prefix: "ha-copy-" });
  try {
    await ok(server.port, [
      "-c",
      "CREATE TABLE c (id INTEGER PRIMARY KEY, name TEXT, ok BOOLEAN, n REAL)",
    ]);
    await t.step("text from stdin, escapes and \\N", async () => {
      const out = await ok(
        server.port,
        ["-c", "\\copy c from stdin"],
        "1\tann\tt\t1.5\n2\tb\\tob\tf\t\\N\n\\.\n",
      );
      assert.match(out, /COPY 2/);
    });
    await t.step("CSV with header, quotes and newlines, from a file", async () => {
      await Deno.writeTextFile(
        `${dir}/in.csv`,
        'id,name,ok,n\n3,"x, ""y""",true,\n4,"multi\nline",false,2\n',
      );
      assert.match(
        await ok(server.port, ["-c", `\\copy c from '${dir}/in.csv' with (format csv, header)`]),
        /COPY 2/,
      );
      const rows = await ok(server.port, [
        "-tA",
        "-c",
        "SELECT id, name, ok, n FROM c ORDER BY id",
      ]);
      assert.equal(rows, '1|ann|t|1.5\n2|b\tob|f|\n3|x, "y"|t|\n4|multi\nline|f|2\n');
    });
    await t.step("delimiter and NULL options", async () => {
      await ok(server.port, [
        "-c",
        "\\copy c (id, name) from stdin with (delimiter '|', null 'NIL')",
      ], "5|NIL\n6|six\n");
      assert.equal(
        await ok(server.port, [
          "-tA",
          "-c",
          "SELECT coalesce(name, 'null') FROM c WHERE id IN (5, 6) ORDER BY id",
        ]),
        "null\nsix\n",
      );
    });
    await t.step("out: text, CSV with header, a query", async () => {
      const text = await ok(server.port, [
        "-c",
        "\\copy (SELECT id, name, ok FROM c WHERE id <= 2 ORDER BY id) to stdout",
      ]);
      assert.equal(text, "1\tann\tt\n2\tb\\tob\tf\n");
      await ok(server.port, ["-c", `\\copy c to '${dir}/out.csv' with csv header`]);
      const csv = await Deno.readTextFile(`${dir}/out.csv`);
      assert.match(csv, /^id,name,ok,n\n1,ann,t,1.5\n/);
      assert.match(csv, /\n3,"x, ""y""",t,\n4,"multi\nline",f,2\n/);
    });
    await t.step("a bad row rejects the whole COPY; the session goes on", async () => {
      const r = await psql(server.port, ["-c", "\\copy c from stdin"], {
        stdin: "10\ta\tt\t1\n11\tb\tmaybe\t2\n",
      });
      assert.notEqual(r.code, 0);
      assert.match(r.stderr, /invalid input syntax for type boolean: "maybe"/);
      const n = await ok(server.port, ["-tA", "-c", "SELECT count(*) FROM c WHERE id >= 10"]);
      assert.equal(n.trim(), "0");
      // inside a transaction block: the rows commit with it
      const out = await ok(
        server.port,
        [],
        "BEGIN;\n\\copy c (id, name) from stdin\n20\ttx\n\\.\nCOMMIT;\nSELECT name FROM c WHERE id = 20;\n",
      );
      assert.match(out, /COPY 1\nCOMMIT\n.*tx/s);
    });
    await t.step("COPY to a file is refused with a pointer to \\copy", async () => {
      const r = await psql(server.port, ["-c", "COPY c TO '/tmp/x'"]);
      assert.match(r.stderr, /use STDIN\/STDOUT \(psql's \\copy\)/);
    });
  } finally {
    await server.stop();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("COPY FROM STDIN rows are replicated with cluster ids", opts, async () => {
  const cluster = new Cluster();
  try {
    const pgPort = freePort();
    const n1 = await cluster.start("cp1", {
      embeddedNats: true,
      args: ["--pg-port", String(pgPort)],
    });
    const n2 = await cluster.start("cp2", { natsUrl: n1.natsUrl! });
    await n1.sql("CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT)");
    await waitFor(
      "items on cp2",
      async () =>
        (await n2.sql("SELECT count(*) FROM pragma_table_info('items')")).rows[0][0] === 2,
    );
    const rows = Array.from({ length: 500 }, (_, i) => `name ${i}`).join("\n") + "\n";
    const out = await ok(pgPort, ["-c", "\\copy items (name) from stdin"], rows);
    assert.match(out, /COPY 500/);
    await cluster.waitConverged([n1, n2], ["items"]);
    // ha's own tables (progress, outbox, …) are in the database but not in the catalog
    const internal = await ok(pgPort, [
      "-tA",
      "-c",
      "SELECT count(*) FROM sqlite_schema WHERE name LIKE '\\_ha\\_%' ESCAPE '\\'",
    ]);
    assert.ok(Number(internal.trim()) > 0, "expected _ha_ tables in the database");
    const dt = await ok(pgPort, ["-c", "\\dt"]);
    assert.match(dt, /public \| items \| table \| ha\n\(1 row\)/);
    const pgClass = await ok(pgPort, [
      "-tA",
      "-c",
      "SELECT count(*) FROM pg_class WHERE relname LIKE '\\_ha%'",
    ]);
    assert.equal(pgClass.trim(), "0");
    const r = await n2.sql("SELECT count(*), min(id) FROM items");
    assert.equal(r.rows[0][0], 500);
    // ids chosen by the cluster scheme (41 bits of time above 22 bits), not SQLite's 1, 2, 3…
    assert.ok(BigInt(String(r.rows[0][1])) > 1n << 40n, `min id ${r.rows[0][1]}`);
  } finally {
    await cluster.stop();
  }
});
