/**
 * Applies stream messages through an `--interceptor` (`interceptor/`): its hooks see remote
 * changesets before they are applied (skip, rewrite), resolve row conflicts the writer plugin
 * detects, and see the outcome after. Used by the subscriber instead of the plain `apply`
 * command when an interceptor is loaded.
 *
 * @module
 */
import type { ChangeSet, Conflict, Resolution } from "../../interceptors/types.ts";
import {
  type ChangeSet as WireChangeSet,
  decodeChangeSet,
  decodeValue,
  encodeChangeSet,
  encodeValue,
  type WireValue,
} from "../cdc/mod.ts";
import type { Database } from "../engine/mod.ts";
import type { InterceptorHost } from "../interceptor/mod.ts";
import { toHookChangeSet, toWireChangeSet } from "../interceptor/convert.ts";
import type { Logger } from "../log/mod.ts";
import {
  type ApplyMessage,
  type ApplyResult,
  type InterceptedBatch,
  replicationClient,
  type WireConflict,
  type WireResolution,
} from "./plugin_api.ts";
import { checkMessage, loadVerifier, type MessageRules } from "./validate.ts";

/** What {@link applyIntercepted} needs. */
export interface InterceptedApply {
  host: InterceptorHost;
  db: Database;
  self: { node: string };
  logger: Logger;
  /** Named in log lines. */
  consumer: string;
  /** What a message must be: invalid ones are not shown to hooks (the plugin dead-letters them). */
  rules?: MessageRules;
}

/**
 * Applies a batch of messages through the interceptor, in stream order:
 * 1. `beforeApply` for every remote changeset (calls in flight together): skip → recorded as
 *    done unapplied, rewrite → the rewritten changes are applied;
 * 2. under one writer lock: the plugin applies the batch in one transaction (a savepoint per
 *    changeset); with a `resolveConflict` hook it stops before a changeset with row conflicts,
 *    which are resolved in one sandbox call, and goes on with that changeset applied per the
 *    resolutions;
 * 3. `afterApply` for every applied changeset and for the one that failed (its transaction
 *    rolled back): null records the failed one as done, an error keeps it failing (retried).
 * Own changesets get no hooks. Resolves to what was committed (`through`) and the final error.
 */
export async function applyIntercepted(
  o: InterceptedApply,
  batch: ApplyMessage[],
): Promise<ApplyResult> {
  const { host, db } = o;
  if (o.rules?.clusterKey) await loadVerifier();
  const plugin = replicationClient(db);
  const views = new Map<number, ChangeSet>();
  const remote: { at: number; wire: WireChangeSet; cs: ChangeSet }[] = [];
  batch.forEach((m, at) => {
    let wire: WireChangeSet;
    try {
      wire = o.rules ? checkMessage(m, o.rules) : decodeChangeSet(m.data);
    } catch {
      return; // the plugin dead-letters it
    }
    // Hooks never run for this node's own changesets (earlier runs replayed on memory databases).
    if (wire.node === o.self.node) return;
    remote.push({ at, wire, cs: toHookChangeSet(wire, { stream_seq: m.seq, subject: m.subject }) });
  });
  // One sandbox round trip for the whole batch.
  const befores = await host.beforeApplyBatch(remote.map((r) => r.cs), db.id);
  const msgs = [...batch];
  remote.forEach((r, i) => {
    const m = batch[r.at];
    const before = befores[i];
    if (before.skip) msgs[r.at] = { ...m, skip: true };
    else if (!before.rewritten) views.set(m.seq, r.cs);
    else {
      views.set(m.seq, before.changeset);
      msgs[r.at] = {
        ...m,
        data: encodeChangeSet(toWireChangeSet(before.changeset, r.wire)),
        signed: m.data,
      };
    }
  });
  const detect = host.has("resolveConflict");
  const total: ApplyResult = { through: 0, applied: 0, skipped: 0, error: null, deadLetters: [] };
  const applied: number[] = [];
  await plugin.locked(async (call) => {
    let rest = msgs;
    let resolved: Pick<InterceptedBatch, "resolvedSeq" | "resolutions"> = {};
    while (rest.length > 0) {
      let r: ApplyResult;
      try {
        const args: InterceptedBatch = { msgs: rest, detect, ...resolved };
        r = await call("applyIntercepted", args);
      } catch (e) {
        r = { through: 0, applied: 0, skipped: 0, error: { seq: rest[0].seq, message: String(e) } };
      }
      total.applied += r.applied;
      total.skipped += r.skipped;
      total.deadLetters!.push(...r.deadLetters ?? []);
      (total.lags ??= []).push(...r.lags ?? []);
      if (r.through > 0) {
        total.through = r.through;
        total.committedAt = r.committedAt;
      }
      applied.push(...r.appliedSeqs ?? []);
      total.error = r.error;
      if (r.error || !r.conflicts) return;
      const seq = r.conflicts.seq;
      const cs = views.get(seq)!;
      const res = await host.resolveConflicts(
        r.conflicts.list.map((w) => toConflict(w, cs)),
        db.id,
      );
      const resolutions: [number, WireResolution][] = [];
      res.forEach((x, i) => {
        const w = toWireResolution(x);
        if (w !== undefined) resolutions.push([r.conflicts!.list[i].change_index, w]);
      });
      resolved = { resolvedSeq: seq, resolutions };
      rest = rest.slice(rest.findIndex((m) => m.seq === seq));
    }
  });
  // One sandbox round trip: every applied changeset, then the failed one (if any).
  const failed = total.error;
  const after: { changeset: ChangeSet; error: { message: string } | null }[] = applied
    .filter((seq) => views.has(seq))
    .map((seq) => ({ changeset: views.get(seq)!, error: null }));
  const cs = failed ? views.get(failed.seq) : undefined;
  if (failed && cs) after.push({ changeset: cs, error: { message: failed.message } });
  const outcomes = await host.afterApplyBatch(after, db.id);
  if (!failed || !cs) return total;
  const err = outcomes[outcomes.length - 1];
  if (err !== null) return { ...total, error: { seq: failed.seq, message: err.message } };
  await plugin.call("skip", { subject: batch[0].subject, seq: failed.seq });
  o.logger.warn("changeset failed; error swallowed by the interceptor", {
    consumer: o.consumer,
    seq: failed.seq,
    error: failed.message,
  });
  return { ...total, through: failed.seq, skipped: total.skipped + 1, error: null };
}

/** The hook's view of a conflict the writer plugin found. */
function toConflict(w: WireConflict, changeset: Conflict["changeset"]): Conflict {
  const dec = (v: WireValue[] | null) => v === null ? null : v.map(decodeValue);
  return {
    table: w.table,
    columns: w.columns,
    pk_columns: w.pk_columns,
    local: { values: dec(w.local.values), hlc: w.local.hlc, node: w.local.node },
    remote: {
      operation: w.remote.operation,
      values: dec(w.remote.values),
      old_values: dec(w.remote.old_values),
      hlc: w.remote.hlc,
      node: w.remote.node,
    },
    change_index: w.change_index,
    changeset,
  };
}

function toWireResolution(r: Resolution): WireResolution | undefined {
  if (r === undefined) return undefined;
  if (r === "local" || r === "remote") return r;
  return { values: r.values.map(encodeValue) };
}
