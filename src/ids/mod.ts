/**
 * Row ids chosen by the cluster (`--id-scheme`): the bit layout (`scheme.ts`), the rewrite of
 * INSERTs (`rewrite.ts`), the writer plugin (`plugin.ts`) and node slots (`slot.ts`).
 *
 * @example
 * ```ts
 * const spec = idPlugin(config, await claimSlot(config, nc)); // null with --id-scheme sqlite
 * const engine = await openEngine({ ...opts, plugins: [replicationPlugin(...), ...(spec ? [spec] : [])] });
 * ```
 * @module
 */
import type { NatsConnection } from "@nats-io/transport-node";
import type { Config } from "../config/mod.ts";
import type { PluginSpec } from "../engine/mod.ts";
import type { IdPluginOptions } from "./plugin.ts";
import { slotCount } from "./scheme.ts";
import { claimIdSlot } from "./slot.ts";
import { HaError } from "../errors/mod.ts";
import { Backoff } from "../retry/mod.ts";
import { ID_PLUGIN } from "./plugin_api.ts";

export { ID_EPOCH_MS, IdGenerator, LAYOUTS, slotCount } from "./scheme.ts";
export { type IdTable, rewriteInsert } from "./rewrite.ts";
export { claimIdSlot, slotStreamOf } from "./slot.ts";
export { ID_PLUGIN, idClient, type IdCommands } from "./plugin_api.ts";

/**
 * The id writer plugin of a replicating node, or null for `sqlite`. `slot` null: NATS was not
 * reached yet; the plugin uses the slot its file remembers, else waits for `setSlot` (see
 * {@link claimSlot}) and refuses inserts that need an id meanwhile.
 */
export function idPlugin(config: Config, slot: number | null): PluginSpec | null {
  const scheme = config.idScheme;
  if (scheme === "sqlite") return null;
  const options: IdPluginOptions = { scheme, slot, node: config.name };
  return { name: ID_PLUGIN, url: new URL("./plugin.ts", import.meta.url).href, options };
}

/** This node's id slot for `--id-scheme` (claimed the first time); null for `sqlite`. */
export async function claimSlot(
  config: Config,
  nc: NatsConnection,
  signal?: AbortSignal,
): Promise<number | null> {
  const scheme = config.idScheme;
  if (scheme === "sqlite") return null;
  return await claimIdSlot(nc, {
    stream: config.replicationStream,
    node: config.name,
    slots: slotCount(scheme),
    replicas: config.replicas,
    signal,
  });
}

/** Retry of a slot claim JetStream keeps refusing: first wait, doubling up to the cap (ms). */
const CLAIM_LATER_INITIAL_MS = 1_000;
const CLAIM_LATER_MAX_MS = 15_000;

/**
 * {@link claimSlot} until it succeeds: JetStream may stay unavailable far longer than one claim's
 * retries (a cluster member restarting waits for its routes and a metadata leader). Only
 * `unavailable` errors are retried (`onRetry` is told of each); others are thrown. Resolves
 * `undefined` once `signal` aborts.
 */
export async function claimSlotUntil(
  config: Config,
  nc: NatsConnection,
  signal: AbortSignal,
  onRetry: (error: HaError, retryInMs: number) => void,
): Promise<number | null | undefined> {
  const backoff = new Backoff({ initialMs: CLAIM_LATER_INITIAL_MS, maxMs: CLAIM_LATER_MAX_MS });
  while (!signal.aborted) {
    try {
      return await claimSlot(config, nc, signal);
    } catch (e) {
      if (signal.aborted) break;
      if (!(e instanceof HaError) || e.code !== "unavailable") throw e;
      const ms = backoff.next();
      onRetry(e, ms);
      await new Promise<void>((r) => {
        const done = () => {
          clearTimeout(timer);
          signal.removeEventListener("abort", done);
          r();
        };
        const timer = setTimeout(done, ms);
        signal.addEventListener("abort", done);
      });
    }
  }
  return undefined;
}
