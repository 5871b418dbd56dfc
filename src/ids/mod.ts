/**
 * Row ids chosen by the cluster (`--id-scheme`): the bit layout (`scheme.ts`), the rewrite of
 * INSERTs (`rewrite.ts`), the writer plugin (`plugin.ts`) and node slots (`slot.ts`).
 *
 * @example
 * ```ts
 * const spec = await idPlugin(config, nc); // null with --id-scheme sqlite
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

export { ID_EPOCH_MS, IdGenerator, LAYOUTS, slotCount } from "./scheme.ts";
export { type IdTable, rewriteInsert } from "./rewrite.ts";
export { claimIdSlot, slotStreamOf } from "./slot.ts";

/** The id writer plugin of a replicating node (claims its slot), or null for `sqlite`. */
export async function idPlugin(config: Config, nc: NatsConnection): Promise<PluginSpec | null> {
  const scheme = config.idScheme;
  if (scheme === "sqlite") return null;
  const slot = await claimIdSlot(nc, {
    stream: config.replicationStream,
    node: config.name,
    slots: slotCount(scheme),
    replicas: config.replicas,
  });
  const options: IdPluginOptions = { scheme, slot, node: config.name };
  return { url: new URL("./plugin.ts", import.meta.url).href, options };
}
