/**
 * The invariants a chaos run must keep, checked once faults healed and the load stopped:
 *
 * - `lost`: an acknowledged write (200, or 503 "committed locally") of a unique key is missing,
 *   or has another value, on some node;
 * - `divergent`: a table whose checksum (columns by name) is not the same on every node;
 * - `phantom`: a write of an operation that certainly failed (4xx, refused, rolled back) is
 *   present;
 * - `lww`: a hot key's value on a node is not the one last-writer-wins by (hlc, node) picks among
 *   every change to it in the replication stream;
 * - `doubleApplied`: a node's `totals` count of a client's ledger rows (kept by a trigger that runs
 *   on each node for each applied insert) differs from its number of ledger rows: a changeset
 *   was applied twice (or a trigger effect was replicated);
 * - `deadLettered`: a node refused a stream message as invalid (`_ha_dead_letters`): every
 *   message of the load is legitimate, so its writes are lost on that node.
 *
 * {@link checkRun} is pure; {@link dumpNode} and {@link readHotFromStream} gather its inputs.
 * @module
 */
import { connect } from "@nats-io/transport-node";
import { DeliverPolicy, jetstream, jetstreamManager } from "@nats-io/jetstream";
import { compareVersion, decodeChangeSet, type WireValue } from "../../src/cdc/mod.ts";
import type { HaNode } from "../integration/helpers/cluster.ts";
import type { Op } from "./history.ts";

/** What one node holds after the run. */
export interface NodeDump {
  name: string;
  /** Per user table: `HaNode.checksum` (`<rows>:<hash>`). */
  checksums: Record<string, string>;
  /** Per user table: its columns, in order (a diverging schema shows here). */
  columns: Record<string, string[]>;
  /** Per checked table: key → value column. */
  rows: Record<string, Map<string, string>>;
  /** `totals`: client → n. */
  totals: Map<string, number>;
  /** `ledger`: client → number of rows. */
  ledger: Map<string, number>;
  /** `_ha_dead_letters`: `seq: reason` of each refused message. */
  deadLetters?: string[];
}

/** One violation, for the report. */
export interface Finding {
  check: "lost" | "divergent" | "phantom" | "lww" | "doubleApplied" | "deadLettered";
  detail: string;
}

/** Counts and the first findings of each check. */
export interface CheckResult {
  lost: number;
  divergent: number;
  phantom: number;
  lww: number;
  doubleApplied: number;
  deadLettered: number;
  /** Tables whose columns are in different orders on different nodes (not a violation). */
  columnOrder: number;
  /** Acknowledged writes missing (or wrong) per node. */
  lostByNode: Record<string, number>;
  /** Up to 20 findings per check. */
  findings: Finding[];
}

/** Checks the history against every node's content and the stream's LWW view of hot keys. */
export function checkRun(
  ops: readonly Op[],
  dumps: readonly NodeDump[],
  hotExpected: ReadonlyMap<string, string | null>,
): CheckResult {
  const r: CheckResult = {
    lost: 0,
    divergent: 0,
    phantom: 0,
    lww: 0,
    doubleApplied: 0,
    deadLettered: 0,
    columnOrder: 0,
    lostByNode: {},
    findings: [],
  };
  const note = (check: Finding["check"], detail: string) => {
    if (r.findings.filter((f) => f.check === check).length < 20) r.findings.push({ check, detail });
  };

  for (const op of ops) {
    for (const w of op.writes) {
      if (w.table === "hot") continue;
      if (op.outcome === "ok") {
        const wrong = dumps.filter((d) => d.rows[w.table]?.get(w.key) !== w.value);
        if (wrong.length === 0) continue;
        r.lost++;
        for (const d of wrong) r.lostByNode[d.name] = (r.lostByNode[d.name] ?? 0) + 1;
        note(
          "lost",
          `op ${op.id} (${op.client} on ${op.node}, ${op.kind}, ${op.status}, t=${op.start}ms): ` +
            `${w.table}[${w.key}]=${w.value} missing or wrong on ` +
            wrong.map((d) => `${d.name}(${d.rows[w.table]?.get(w.key) ?? "absent"})`).join(", "),
        );
      } else if (op.outcome === "fail") {
        const there = dumps.filter((d) => d.rows[w.table]?.has(w.key));
        if (there.length === 0) continue;
        r.phantom++;
        note(
          "phantom",
          `op ${op.id} (${op.kind}, ${op.status}: ${op.body}) failed but ${w.table}[${w.key}] is on ` +
            there.map((d) => d.name).join(", "),
        );
      }
    }
  }

  const tables = new Set(dumps.flatMap((d) => Object.keys(d.checksums)));
  for (const t of [...tables].sort()) {
    const sums = dumps.map((d) => d.checksums[t] ?? "missing");
    if (sums.every((s) => s === sums[0])) continue;
    r.divergent++;
    note(
      "divergent",
      `${t}: ${
        dumps.map((d, i) => `${d.name}=${sums[i]}(${d.columns[t]?.join(",") ?? ""})`).join(" ")
      }`,
    );
  }

  for (const t of tables) {
    const orders = new Set(dumps.map((d) => d.columns[t]?.join(",")));
    if (orders.size > 1) r.columnOrder++;
  }

  for (const [key, want] of hotExpected) {
    for (const d of dumps) {
      const have = d.rows.hot?.get(key) ?? null;
      if (have === want) continue;
      r.lww++;
      note("lww", `hot[${key}] on ${d.name} is ${have ?? "absent"}, LWW says ${want ?? "deleted"}`);
    }
  }

  for (const d of dumps) {
    const clients = new Set([...d.totals.keys(), ...d.ledger.keys()]);
    for (const c of clients) {
      const n = d.totals.get(c) ?? 0;
      const rows = d.ledger.get(c) ?? 0;
      if (n === rows) continue;
      r.doubleApplied++;
      note("doubleApplied", `${d.name}: totals[${c}]=${n} but ${rows} ledger rows`);
    }
  }

  for (const d of dumps) {
    for (const x of d.deadLetters ?? []) {
      r.deadLettered++;
      note("deadLettered", `${d.name}: ${x}`);
    }
  }
  return r;
}

/** Tables whose content the checker compares key by key (`side_*` too). */
const KEYED: Record<string, string> = {
  u: "SELECT k, v FROM u",
  ledger: "SELECT id, client FROM ledger",
};

/** Checksums of a node's user tables (HTTP). */
export async function checksumsOf(node: HaNode): Promise<Record<string, string>> {
  const names = (await node.sql(
    "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\' " +
      "AND name NOT LIKE '\\_ha\\_%' ESCAPE '\\' ORDER BY name",
  )).rows.map((r) => String(r[0]));
  const checksums: Record<string, string> = {};
  // By column name: concurrent ADD COLUMNs leave the columns in different orders (see load.ts).
  for (const t of names) checksums[t] = await node.checksum(t, true);
  return checksums;
}

/** Reads a node's tables (HTTP). */
export async function dumpNode(node: HaNode): Promise<NodeDump> {
  const checksums = await checksumsOf(node);
  const names = Object.keys(checksums);
  const rows: Record<string, Map<string, string>> = {};
  const queries: [string, string][] = [
    ...Object.entries(KEYED),
    ["hot", "SELECT k, v FROM hot"],
    ...names.filter((t) => /^side_\d+$/.test(t)).map((
      t,
    ): [string, string] => [t, `SELECT id, v FROM ${t}`]),
  ];
  for (const [t, sql] of queries) {
    if (!names.includes(t)) continue;
    rows[t] = new Map((await node.sql(sql)).rows.map((r) => [String(r[0]), String(r[1])]));
  }
  const count = async (sql: string) =>
    new Map(
      (await node.sql(sql)).rows.map((r) => [String(r[0]), Number(r[1])] as [string, number]),
    );
  const columns: Record<string, string[]> = {};
  for (const t of names) {
    columns[t] = (await node.sql("SELECT name FROM pragma_table_info(?)", [t])).rows.map((r) =>
      String(r[0])
    );
  }
  // The table exists once replication started; a node that never applied may lack it.
  const deadLetters = await node.sql("SELECT seq, reason FROM _ha_dead_letters ORDER BY id")
    .then((r) => r.rows.map((x) => `${x[0]}: ${x[1]}`))
    .catch((e: Error) => /no such table/.test(e.message) ? [] : Promise.reject(e));
  return {
    name: node.name,
    deadLetters,
    checksums,
    columns,
    rows,
    totals: names.includes("totals") ? await count("SELECT client, n FROM totals") : new Map(),
    ledger: names.includes("ledger")
      ? await count("SELECT client, count(*) FROM ledger GROUP BY client")
      : new Map(),
  };
}

/**
 * Empty fetches in a row after which the stream read gives up. An ordered consumer is R1 on one
 * peer; after a server restart that peer's replica can stay stuck behind and the consumer then
 * delivers nothing: each retry creates a new consumer (from the next sequence), placed at random.
 */
const STREAM_READ_RETRIES = 6;

/**
 * The value of each hot key that last-writer-wins by (hlc, node) gives over every change to
 * `hot` in the stream (null = deleted).
 */
export async function readHotFromStream(
  ports: number[],
  stream = "ha_replication",
): Promise<Map<string, string | null>> {
  const nc = await connect({ servers: ports.map((p) => `127.0.0.1:${p}`), timeout: 10_000 });
  try {
    const last = (await (await jetstreamManager(nc)).streams.info(stream)).state.last_seq;
    const best = new Map<string, { hlc: number; node: string; value: string | null }>();
    if (last === 0) return new Map();
    const js = jetstream(nc);
    let c = await js.consumers.get(stream);
    let seq = 0;
    let empty = 0;
    while (seq < last) {
      const batch = await c.fetch({ max_messages: 1_000, expires: 5_000 });
      let got = 0;
      for await (const m of batch) {
        got++;
        seq = m.seq;
        foldHot(best, m.data);
      }
      if (got > 0) {
        empty = 0;
        continue;
      }
      if (++empty > STREAM_READ_RETRIES) {
        throw new Error(`stream read stalled at ${seq} of ${last} (${empty} consumers tried)`);
      }
      c = await js.consumers.get(stream, {
        deliver_policy: DeliverPolicy.StartSequence,
        opt_start_seq: seq + 1,
      });
    }
    return new Map([...best].map(([k, v]) => [k, v.value]));
  } finally {
    await nc.close();
  }
}

/** Folds one changeset's changes to `hot` into the per-key winner. */
export function foldHot(
  best: Map<string, { hlc: number; node: string; value: string | null }>,
  data: Uint8Array | string,
): void {
  const cs = decodeChangeSet(data);
  for (const c of cs.changes) {
    if (c.table !== "hot" || c.operation === "SQL") continue;
    const ik = c.columns.indexOf("k");
    const iv = c.columns.indexOf("v");
    const image = (c.new_values ?? c.old_values) as WireValue[];
    const key = String(image[ik]);
    const hlc = typeof c.hlc === "number" ? c.hlc : cs.hlc;
    const prev = best.get(key);
    if (prev && compareVersion(prev.hlc, prev.node, hlc, cs.node) >= 0) continue;
    const value = c.operation === "DELETE" ? null : String(c.new_values![iv]);
    best.set(key, { hlc, node: cs.node, value });
  }
}
