/**
 * Nodes for testing the replication writer plugin inside real engines without NATS: each node is
 * an in-memory engine with the plugin; {@link ship} hands one node's committed changesets to
 * others as stream messages, the way the subscriber does.
 *
 * @example
 * ```ts
 * const a = await node("a");
 * const b = await node("b");
 * await sql(a, "CREATE TABLE t(id INTEGER PRIMARY KEY)");
 * await ship(a, [b]);
 * ```
 * @module
 */
import assert from "node:assert/strict";
import { type Engine, openEngine, type StatementResult } from "../../../src/engine/mod.ts";
import { createLogger } from "../../../src/log/mod.ts";
import { findInterruptExtension } from "../../../src/engine/native/locate.ts";
import type { RowIdentify } from "../../../src/config/mod.ts";
import {
  type ApplyMessage,
  type ApplyResult,
  type CommitPayload,
  REPLICATION_PLUGIN,
  replicationClient,
  type ReplicationPluginOptions,
} from "../../../src/replication/plugin_api.ts";

const PLUGIN = new URL("../../../src/replication/writer_plugin.ts", import.meta.url).href;
const logger = createLogger("error");

/** An engine with the replication plugin and the changesets it committed, not yet shipped. */
export interface TestNode {
  name: string;
  engine: Engine;
  out: CommitPayload[];
}

/** Options of {@link node}. */
export interface NodeOptions {
  rowIdentify?: RowIdentify;
  /** `maxPayload` of the plugin (0 = no limit). */
  maxPayload?: number;
  /** Load `ha_interrupt.so` (its capture switch gates the capture triggers). */
  interrupt?: boolean;
}

/** Opens a node (memory database, plugin at index 0). */
export async function node(name: string, o: NodeOptions = {}): Promise<TestNode> {
  const options: ReplicationPluginOptions = {
    node: name,
    incarnation: crypto.randomUUID(),
    rowIdentify: o.rowIdentify ?? "pk",
    disableDdlSync: false,
    memory: true,
    outboxDir: null,
    maxPayload: o.maxPayload ?? 0,
  };
  const engine = await openEngine({
    dsns: [],
    memory: true,
    concurrentQueries: 4,
    plugins: [{ name: REPLICATION_PLUGIN, url: PLUGIN, options }],
    logger,
    interrupt: o.interrupt ? await findInterruptExtension() : null,
  });
  const out: CommitPayload[] = [];
  engine.defaultDb.onCommit((p) => {
    out.push(...(p as CommitPayload[]));
  });
  return { name, engine, out };
}

/** Runs one statement on a node. */
export async function sql(
  n: TestNode,
  text: string,
  params?: unknown[],
): Promise<StatementResult[]> {
  return await n.engine.defaultDb.execute([{ sql: text, params: params as never }]);
}

/** The rows of a query as JSON (bigints as strings), for comparisons across nodes. */
export async function rows(n: TestNode, text: string): Promise<string> {
  const [r] = await sql(n, text);
  return JSON.stringify(r.rows, (_k, v) => typeof v === "bigint" ? String(v) : v);
}

let seq = 0;

/** The next stream sequence (one counter for every node: a test's messages never go back). */
export function nextSeq(): number {
  return ++seq;
}

/** Takes `payloads` (default: all of `from`'s unshipped ones) as stream messages. */
export function take(from: TestNode, payloads = from.out.splice(0)): ApplyMessage[] {
  return payloads.map((p) => ({ seq: ++seq, subject: "s", data: p.data }));
}

/** Drops what the nodes committed so far (their set-up), unshipped. */
export function forget(...ns: TestNode[]): void {
  for (const n of ns) n.out.splice(0);
}

/** Applies `payloads` (default: all of `from`'s unshipped ones) on every node of `to`. */
export async function ship(
  from: TestNode,
  to: TestNode[],
  payloads: CommitPayload[] = from.out.splice(0),
): Promise<ApplyMessage[]> {
  const msgs = take(from, payloads);
  for (const t of to) {
    const r = await replicationClient(t.engine.defaultDb).call("apply", msgs);
    assert.equal(r.error, null, JSON.stringify(r.error));
  }
  return msgs;
}

/** Applies the same data again as new stream messages (a republished duplicate). */
export async function redeliver(msgs: ApplyMessage[], to: TestNode[]): Promise<ApplyResult[]> {
  const again = msgs.map((m) => ({ ...m, seq: ++seq }));
  return await Promise.all(
    to.map((t) => replicationClient(t.engine.defaultDb).call("apply", again)),
  );
}

/** Closes nodes. */
export async function close(...ns: TestNode[]): Promise<void> {
  for (const n of ns) await n.engine.close();
}
