/**
 * Configuration: the one schema of every flag ({@link FLAGS}), parsing of command line,
 * `HA_*` environment and config file into a typed {@link Config}, and the help text.
 *
 * @example
 * ```ts
 * import { loadConfig } from "./mod.ts";
 * const outcome = loadConfig(Deno.args);
 * if (outcome.kind === "run") console.info(outcome.config.port);
 * else console.info(outcome.text);
 * ```
 * @module
 */

export type {
  Config,
  ConfigField,
  ConfigIO,
  ConfigSource,
  IdScheme,
  ParseOutcome,
  ReplicationPolicy,
  RowIdentify,
} from "./types.ts";
export { loadConfig, parseConfig } from "./parse.ts";
export { DEFAULT_PG_PASS, exposureProblem, isLoopback } from "./exposure.ts";
export { helpText, versionText } from "./help.ts";
export { VERSION } from "./version.ts";
export { FLAGS } from "./schema.ts";
export {
  type DefaultContext,
  envName,
  type FlagField,
  type FlagSpec,
  type Settings,
} from "./flag_spec.ts";
export {
  formatReplicationPolicy,
  ID_SCHEMES,
  parseIdScheme,
  parseReplicationPolicy,
  parseRowIdentify,
  parseTimestamp,
  ROW_IDENTIFY_STRATEGIES,
} from "./policy.ts";
export {
  type DurationLimits,
  formatDuration,
  formatSize,
  MAX_TIMER_MS,
  parseBoolean,
  parseDuration,
  parseInteger,
  parseList,
  parsePort,
  parseSize,
  ValueError,
} from "./values.ts";
