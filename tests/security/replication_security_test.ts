/**
 * Replication security (issue 11, findings 2, 5, 6): real ha processes and their embedded
 * nats-server. A client of the NATS port publishes forged and malformed changesets to the
 * stream subject; the node refuses each one into its dead-letter store, says so in
 * `/replications`, stays ready and goes on replicating. With `--nats-user`/`--nats-pass` the
 * NATS port refuses clients without credentials; with `--cluster-key` unsigned or badly signed
 * changesets are refused while signed ones (and a second node's real writes) apply.
 */
import assert from "node:assert/strict";
import { jetstream } from "@nats-io/jetstream";
import { connect, headers } from "@nats-io/transport-node";
import { createLogger } from "../../src/log/mod.ts";
import { connectNats, type NatsClient } from "../../src/nats/mod.ts";
import { subjectOf } from "../../src/replication/naming.ts";
import { SIGNATURE_HEADER, signPayload } from "../../src/replication/signature.ts";
import { waitFor } from "../integration/helpers/cluster.ts";
import { selfSignedCert } from "../integration/pgwire_helpers.ts";
import { freePort, type HaProcess, post, startHa } from "../integration/helpers/ha.ts";

const opts = { sanitizeOps: false, sanitizeResources: false };
const logger = createLogger("error");
const SUBJECT = subjectOf("ha_replication", "ha.db");

interface Started {
  ha: HaProcess;
  natsPort: number;
  dir: string;
}

async function startNode(name: string, extra: string[] = []): Promise<Started> {
  const dir = await Deno.makeTempDir({ prefix: "ha-sec-" });
  const natsPort = freePort();
  const ha = await startHa({
    cwd: dir,
    args: [
      "-n",
      name,
      "-m",
      "--pg-port",
      "0",
      "--nats-port",
      String(natsPort),
      "--nats-store-dir",
      `${dir}/nats`,
      "--nats-user",
      "ha",
      "--nats-pass",
      "s3cret",
      ...extra,
    ],
  });
  await waitFor("node ready", async () =>
    (await fetch(`${ha.url}/readyz`).then(async (r) => {
      await r.body?.cancel();
      return r.status;
    })) === 200, 60_000);
  return { ha, natsPort, dir };
}

async function stopNode(s: Started): Promise<void> {
  await s.ha.stop();
  await Deno.remove(s.dir, { recursive: true }).catch(() => {});
}

function natsClient(s: Started): Promise<NatsClient> {
  return connectNats({
    servers: [`nats://127.0.0.1:${s.natsPort}`],
    user: "ha",
    pass: "s3cret",
    name: "attacker",
    logger,
  });
}

async function sql(s: Started, text: string): Promise<unknown[][]> {
  const r = await post(s.ha.url, { sql: text });
  assert.equal(r.status, 200, r.text);
  return r.body.rows;
}

async function subscriberStatus(s: Started) {
  const r = await fetch(`${s.ha.url}/replications`);
  const body = await r.json();
  return body.status.find((x: { database: string }) => x.database === "ha.db").subscriber as {
    appliedSeq: number;
    deadLettered: number;
    lastDeadLetter: { seq: number; reason: string } | null;
    failing: unknown;
  };
}

/** A well-formed changeset from node `node` inserting (id, v) into t. */
function insert(id: number, v: string, hlc = Date.now() * 1000, node = "peer"): string {
  return JSON.stringify({
    id: `ha.db:${node}:${hlc}:${id}`,
    node,
    incarnation: "i",
    db: "ha.db",
    hlc,
    timestamp_ns: 0,
    changes: [{
      database: "main",
      table: "t",
      columns: ["id", "v"],
      pk_columns: ["id"],
      operation: "INSERT",
      new_rowid: id,
      new_values: [id, v],
      hlc,
    }],
  });
}

function withChange(change: Record<string, unknown>, hlc = Date.now() * 1000): string {
  return JSON.stringify({
    id: `ha.db:peer:${hlc}:${crypto.randomUUID()}`,
    node: "peer",
    incarnation: "i",
    db: "ha.db",
    hlc,
    timestamp_ns: 0,
    changes: [{ database: "main", hlc, ...change }],
  });
}

Deno.test(
  "NATS with --nats-user/--nats-pass refuses clients without credentials",
  opts,
  async () => {
    const s = await startNode("sec-auth");
    try {
      for (const creds of [{}, { user: "ha", pass: "wrong" }, { token: "s3cret" }]) {
        await assert.rejects(
          connectNats({
            servers: [`nats://127.0.0.1:${s.natsPort}`],
            ...creds,
            name: "anon",
            logger,
          }),
          /Authorization Violation|authorization/i,
          JSON.stringify(creds),
        );
      }
      const ok = await natsClient(s);
      await ok.close();
    } finally {
      await stopNode(s);
    }
  },
);

Deno.test(
  "malformed and forged changesets are dead-lettered; replication goes on",
  opts,
  async () => {
    const s = await startNode("sec-dead");
    const client = await natsClient(s);
    try {
      await sql(s, "CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT)");
      await sql(s, "INSERT INTO t VALUES (1, 'original')");
      const js = jetstream(client.nc);
      const attached = `${s.dir}/stolen.db`;
      const future = (Date.now() + 3_600_000) * 1000;
      const bad: [string, RegExp][] = [
        ["hello world", /undecodable/],
        ['{"x":1}', /undecodable/],
        ["null", /undecodable/],
        [
          withChange({
            table: "t",
            columns: ["id", "v"],
            pk_columns: ["id"],
            operation: "INSERT",
            new_values: [9],
          }),
          /1 new_values for 2 columns/,
        ],
        [
          withChange({
            table: "nope",
            columns: ["id"],
            pk_columns: ["id"],
            operation: "INSERT",
            new_values: [1],
          }),
          /no table "nope"/,
        ],
        [
          withChange({
            table: "t",
            columns: ["id", "evil"],
            pk_columns: ["id"],
            operation: "INSERT",
            new_values: [5, "x"],
          }),
          /no column "evil"/,
        ],
        [insert(1, "forged-hlc", 1e300), /not a positive safe integer/],
        [insert(1, "forged-future", future), /further ahead of the local clock/],
        [
          withChange({
            table: "",
            columns: [],
            pk_columns: [],
            operation: "SQL",
            command: `COMMIT; ATTACH DATABASE '${attached}' AS x; CREATE TABLE x.t(a)`,
          }),
          /one statement/,
        ],
        [
          withChange({
            table: "",
            columns: [],
            pk_columns: [],
            operation: "SQL",
            command: "UPDATE t SET v = 'via-sql'",
          }),
          /not a schema statement/,
        ],
      ];
      const before = (await subscriberStatus(s)).deadLettered;
      for (const [data, reason] of bad) {
        const ack = await js.publish(SUBJECT, data);
        await waitFor(`dead letter for ${data.slice(0, 60)}`, async () => {
          const st = await subscriberStatus(s);
          return st.lastDeadLetter?.seq === ack.seq;
        });
        const st = await subscriberStatus(s);
        assert.match(st.lastDeadLetter!.reason, reason, data.slice(0, 80));
        assert.equal(st.failing, null);
      }
      // A valid change published after all of them applies.
      await js.publish(SUBJECT, insert(2, "valid"));
      await waitFor(
        "valid change applied",
        async () => (await sql(s, "SELECT v FROM t WHERE id = 2")).length === 1,
      );
      assert.deepEqual(await sql(s, "SELECT id, v FROM t ORDER BY id"), [[1, "original"], [
        2,
        "valid",
      ]]);
      const st = await subscriberStatus(s);
      assert.equal(st.deadLettered - before, bad.length);
      const r = await fetch(`${s.ha.url}/readyz`);
      await r.body?.cancel();
      assert.equal(r.status, 200);
      const stored = await sql(s, "SELECT count(*) FROM _ha_dead_letters");
      assert.equal(stored[0][0], bad.length);
      await assert.rejects(Deno.stat(attached), Deno.errors.NotFound);
      // The forged far-future HLC never became the row's version: a later local write wins.
      await sql(s, "UPDATE t SET v = 'later' WHERE id = 1");
      await js.publish(SUBJECT, insert(3, "still-replicating"));
      await waitFor(
        "replication goes on",
        async () => (await sql(s, "SELECT v FROM t WHERE id = 3")).length === 1,
      );
      assert.deepEqual(await sql(s, "SELECT v FROM t WHERE id = 1"), [["later"]]);
      console.info(
        `replication bad input: ${bad.length} forged/malformed messages tried, 0 crashes, ` +
          `0 stalls, ${bad.length} dead letters, never failing, ready afterwards`,
      );
    } finally {
      await client.close();
      await stopNode(s);
    }
  },
);

Deno.test(
  "--cluster-key: unsigned and badly signed changesets are refused, signed ones apply",
  opts,
  async () => {
    const key = "cluster-secret";
    const s1 = await startNode("sec-key1", ["--cluster-key", key]);
    const dir2 = await Deno.makeTempDir({ prefix: "ha-sec-" });
    const n2 = await startHa({
      cwd: dir2,
      args: [
        "-n",
        "sec-key2",
        "-m",
        "--pg-port",
        "0",
        "--nats-port",
        "0",
        "--replication-url",
        `nats://ha:s3cret@127.0.0.1:${s1.natsPort}`,
        "--cluster-key",
        key,
      ],
    });
    const client = await natsClient(s1);
    try {
      await sql(s1, "CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT)");
      const js = jetstream(client.nc);
      const publish = async (data: string, sig?: string) => {
        const h = headers();
        if (sig !== undefined) h.set(SIGNATURE_HEADER, sig);
        return await js.publish(SUBJECT, data, { headers: h });
      };
      for (
        const [data, sig, reason] of [
          [insert(10, "unsigned"), undefined, /unsigned/],
          [insert(11, "wrong key"), signPayload("other", insert(11, "wrong key")), /bad signature/],
        ] as const
      ) {
        const ack = await publish(data, sig);
        await waitFor(
          "refused",
          async () => (await subscriberStatus(s1)).lastDeadLetter?.seq === ack.seq,
        );
        assert.match((await subscriberStatus(s1)).lastDeadLetter!.reason, reason);
      }
      const good = insert(12, "signed");
      await publish(good, signPayload(key, good));
      await waitFor(
        "signed change applied",
        async () => (await sql(s1, "SELECT v FROM t WHERE id = 12")).length === 1,
      );
      // Real writes of a node with the same key replicate both ways.
      await waitFor("table replicated", async () => {
        const r = await post(n2.url, { sql: "INSERT INTO t VALUES (20, 'from node 2')" });
        return r.status === 200;
      });
      await waitFor(
        "node 2's write on node 1",
        async () => (await sql(s1, "SELECT v FROM t WHERE id = 20")).length === 1,
      );
      assert.deepEqual(await sql(s1, "SELECT id FROM t ORDER BY id"), [[12], [20]]);
      assert.equal((await subscriberStatus(s1)).deadLettered, 2);
    } finally {
      await client.close();
      await n2.stop();
      await Deno.remove(dir2, { recursive: true }).catch(() => {});
      await stopNode(s1);
    }
  },
);

Deno.test(
  "--nats-tls-cert/--nats-tls-key: NATS requires TLS; nodes replicate over it",
  opts,
  async () => {
    const { dir: certDir, cert, key } = await selfSignedCert();
    const s1 = await startNode("sec-tls1", [
      "--nats-tls-cert",
      cert,
      "--nats-tls-key",
      key,
    ]);
    const dir2 = await Deno.makeTempDir({ prefix: "ha-sec-" });
    let n2: HaProcess | null = null;
    try {
      // Without the CA the server's certificate is not trusted; with it (and credentials) it is.
      await assert.rejects(connect({
        servers: [`nats://127.0.0.1:${s1.natsPort}`],
        user: "ha",
        pass: "s3cret",
        reconnect: false,
        timeout: 5_000,
      }));
      const ok = await connectNats({
        servers: [`tls://127.0.0.1:${s1.natsPort}`],
        user: "ha",
        pass: "s3cret",
        tls: { caFile: cert },
        name: "with-ca",
        logger,
      });
      await ok.close();
      n2 = await startHa({
        cwd: dir2,
        args: [
          "-n",
          "sec-tls2",
          "-m",
          "--pg-port",
          "0",
          "--nats-port",
          "0",
          "--replication-url",
          `tls://ha:s3cret@127.0.0.1:${s1.natsPort}`,
          "--nats-tls-ca",
          cert,
        ],
      });
      await sql(s1, "CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT)");
      const node2 = n2;
      await waitFor("table on node 2", async () => {
        const r = await post(node2.url, { sql: "INSERT INTO t VALUES (1, 'over tls')" });
        return r.status === 200;
      });
      await waitFor(
        "node 2's write on node 1",
        async () => (await sql(s1, "SELECT v FROM t WHERE id = 1")).length === 1,
      );
    } finally {
      await n2?.stop();
      await Deno.remove(dir2, { recursive: true }).catch(() => {});
      await stopNode(s1);
      await Deno.remove(certDir, { recursive: true }).catch(() => {});
    }
  },
);
