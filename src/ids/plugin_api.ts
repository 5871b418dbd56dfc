/**
 * The id writer plugin's command interface (see `engine/plugin.ts`), declared once for the plugin
 * (`plugin.ts`) and the main thread ({@link idClient}).
 *
 * @module
 */
import type { Database, PluginClient } from "../engine/mod.ts";

/** The plugin's `PluginSpec.name`. */
export const ID_PLUGIN = "ids";

/** The commands of the id plugin: name → arguments and result. */
export type IdCommands = {
  /** This node's slot, claimed once NATS is first reached (`slot.ts`). */
  setSlot: { args: number; result: null };
};

/** The id plugin of `db` (loaded by `idPlugin()`). */
export function idClient(db: Database): PluginClient<IdCommands> {
  return db.plugin<IdCommands>(ID_PLUGIN);
}
