/**
 * How a flag is declared: {@link FlagSpec} (names, `HA_*` variable, config-file key, default,
 * parser, help) and the {@link flag}/{@link boolFlag} builders the schema uses.
 *
 * @module
 */

import type { Config, ConfigField } from "./types.ts";
import { parseBoolean } from "./values.ts";

/** Everything a flag can set: the {@link Config} fields plus `help` and `version`. */
export interface Settings extends Omit<Config, "dsns"> {
  /** `-h/--help`: print help and exit. */
  readonly help: boolean;
  /** `--version`: print the version and exit. */
  readonly version: boolean;
}

/** A field of {@link Settings} set by a flag. */
export type FlagField = ConfigField | "help" | "version";

/**
 * What a default may depend on: the host and the (already resolved) node name.
 *
 * @example
 * ```ts
 * import type { DefaultContext } from "./flag_spec.ts";
 * const ctx: DefaultContext = { hostname: () => "h", tmpDir: () => "/tmp", name: () => "n1" };
 * ```
 */
export interface DefaultContext {
  /** The machine's hostname. */
  hostname(): string;
  /** The temporary directory (never empty, no trailing separator). */
  tmpDir(): string;
  /** The resolved `--name`. */
  name(): string;
}

/**
 * One flag. `metavar === null` marks a boolean switch (`--flag`, `--flag=false`).
 *
 * @example
 * ```ts
 * import { FLAGS } from "./schema.ts";
 * for (const f of FLAGS) console.info(`--${f.long}`, f.env ?? "", f.defaultText);
 * ```
 */
export interface FlagSpec<K extends FlagField = FlagField> {
  /** The field of {@link Settings} this flag sets. */
  readonly field: K;
  /** Long name without dashes (`nats-port`). */
  readonly long: string;
  /** Other accepted long names (also config-file keys), e.g. the README's misspelling. */
  readonly aliases: readonly string[];
  /** One-letter short name without dash, or null. */
  readonly short: string | null;
  /** Environment variable (`HA_` + upper(long), `-` → `_`), or null when none. */
  readonly env: string | null;
  /** Whether the flag may be set in a config file. */
  readonly inFile: boolean;
  /** Placeholder of the value in help (`PORT`), or null for a boolean switch. */
  readonly metavar: string | null;
  /** Whether repeated occurrences in one source add up (comma lists). */
  readonly repeatable: boolean;
  /** One-line description. */
  readonly help: string;
  /** The default as shown in help. */
  readonly defaultText: string;
  /** Computes the default. */
  readonly default: (ctx: DefaultContext) => Settings[K];
  /** Parses a raw value; throws {@link ValueError}. */
  readonly parse: (raw: string) => Settings[K];
}

/** Declaration form of {@link FlagSpec}: derived parts are optional. */
interface FlagDecl<K extends FlagField> {
  field: K;
  long: string;
  aliases?: readonly string[];
  short?: string;
  /** false = no environment variable. */
  env?: false;
  inFile?: boolean;
  metavar: string | null;
  repeatable?: boolean;
  help: string;
  defaultText: string;
  default: (ctx: DefaultContext) => NoInfer<Settings[K]>;
  parse: (raw: string) => NoInfer<Settings[K]>;
}

/**
 * The environment variable of a long flag name: `HA_` + upper(long), `-` → `_`.
 *
 * @example
 * ```ts
 * import { envName } from "./flag_spec.ts";
 * envName("nats-store-dir"); // "HA_NATS_STORE_DIR"
 * ```
 */
export function envName(long: string): string {
  return "HA_" + long.toUpperCase().replaceAll("-", "_");
}

/** A flag from its declaration: the environment variable and defaults filled in. */
export function flag<K extends FlagField>(d: FlagDecl<K>): FlagSpec<K> {
  return {
    field: d.field,
    long: d.long,
    aliases: d.aliases ?? [],
    short: d.short ?? null,
    env: d.env === false ? null : envName(d.long),
    inFile: d.inFile ?? true,
    metavar: d.metavar,
    repeatable: d.repeatable ?? false,
    help: d.help,
    defaultText: d.defaultText,
    default: d.default,
    parse: d.parse,
  };
}

type BoolField = { [K in FlagField]: Settings[K] extends boolean ? K : never }[FlagField];

/** A boolean flag: no value needed (`--x`, `--x=false`), default false. */
export function boolFlag<K extends BoolField>(
  field: K,
  long: string,
  help: string,
  extra: Partial<FlagDecl<K>> = {},
): FlagSpec<K> {
  return flag<K>({
    field,
    long,
    metavar: null,
    help,
    defaultText: "false",
    default: () => false as Settings[K],
    parse: (raw) => parseBoolean(raw) as Settings[K],
    ...extra,
  });
}
