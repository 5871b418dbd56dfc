/**
 * A node's id slot, claimed once per node name in the JetStream stream `<stream>_IDS` (one
 * message per subject, written only if the subject is still empty, like a KV create): subject
 * `slot.<n>` names the node that owns slot n, `node.<hex name>` the slot of a node. A node that
 * restarts (from its file, a snapshot or in memory) finds its slot again by name; a node with a
 * new name takes the lowest free slot. Claims are never released: the slot count bounds how
 * many node names a cluster can ever use (see `scheme.ts`).
 *
 * @module
 */
import {
  jetstream,
  type JetStreamManager,
  jetstreamManager,
  StorageType,
} from "@nats-io/jetstream";
import type { NatsConnection } from "@nats-io/transport-node";
import { HaError } from "../errors/mod.ts";
import { isNotFound, isStreamNameInUse, isWrongLastSequence } from "../nats/mod.ts";

/** Options of {@link claimIdSlot}. */
export interface ClaimOptions {
  /** The replication stream's name; the claims live in `<stream>_IDS`. */
  stream: string;
  node: string;
  /** Number of slots of the id scheme. */
  slots: number;
  replicas: number;
  /** Ends the retries (the node stops). */
  signal?: AbortSignal;
}

/** The stream that holds the claims. */
export function slotStreamOf(stream: string): string {
  return `${stream}_IDS`;
}

function hex(s: string): string {
  return [...new TextEncoder().encode(s)].map((b) => b.toString(16).padStart(2, "0")).join("");
}

/** JetStream may not be ready right after a server (re)start: retries, and their wait. */
const CLAIM_RETRIES = 20;
const CLAIM_RETRY_MS = 500;

/**
 * Returns this node's slot, claiming the lowest free one the first time. JetStream may not be
 * ready yet right after a server (re)start: other errors are retried for about ten seconds.
 */
export async function claimIdSlot(nc: NatsConnection, o: ClaimOptions): Promise<number> {
  for (let attempt = 0;; attempt++) {
    try {
      return await claim(nc, o);
    } catch (e) {
      if (e instanceof HaError) throw e;
      if (attempt >= CLAIM_RETRIES || o.signal?.aborted) {
        throw new HaError(
          "unavailable",
          `cannot claim an id slot in stream ${slotStreamOf(o.stream)}: ${(e as Error).message}`,
        );
      }
      await new Promise((r) => setTimeout(r, CLAIM_RETRY_MS));
    }
  }
}

async function claim(nc: NatsConnection, o: ClaimOptions): Promise<number> {
  const name = slotStreamOf(o.stream);
  const jsm = await jetstreamManager(nc);
  await ensureStream(jsm, name, o.replicas);
  const js = jetstream(nc);
  const nodeKey = `${name}.node.${hex(o.node)}`;
  const mine = async () => {
    const m = await jsm.streams.getMessage(name, { last_by_subj: nodeKey }).catch((e) => {
      if (isNotFound(e)) return null;
      throw e;
    });
    return m ? Number(m.string()) : null;
  };
  const known = await mine();
  if (known !== null) return checked(known, o);
  for (let slot = 0; slot < o.slots; slot++) {
    try {
      await js.publish(`${name}.slot.${slot}`, o.node, { expect: { lastSubjectSequence: 0 } });
    } catch (e) {
      if (isWrongLastSequence(e)) continue;
      throw e;
    }
    try {
      await js.publish(nodeKey, String(slot), { expect: { lastSubjectSequence: 0 } });
      return slot;
    } catch (e) {
      // Another process of the same name claimed a slot at the same time: use that one.
      if (!isWrongLastSequence(e)) throw e;
      return checked((await mine())!, o);
    }
  }
  throw new HaError(
    "config",
    `all ${o.slots} id slots of stream ${name} are taken by other node names: reuse a node ` +
      `name, or use --id-scheme cluster (1024 slots)`,
  );
}

function checked(slot: number, o: ClaimOptions): number {
  if (Number.isInteger(slot) && slot >= 0 && slot < o.slots) return slot;
  throw new HaError(
    "config",
    `node ${o.node} owns id slot ${slot}, beyond the ${o.slots} slots of this --id-scheme ` +
      `(every node of a cluster must use the same --id-scheme)`,
  );
}

async function ensureStream(jsm: JetStreamManager, name: string, replicas: number) {
  try {
    await jsm.streams.info(name);
    return;
  } catch (e) {
    if (!isNotFound(e)) throw e;
  }
  try {
    await jsm.streams.add({
      name,
      subjects: [`${name}.>`],
      storage: StorageType.File,
      max_msgs_per_subject: 1,
      num_replicas: replicas,
    });
  } catch (e) {
    if (!isStreamNameInUse(e)) throw e;
  }
}
