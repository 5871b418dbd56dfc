/**
 * Turns arguments, environment and config file into a validated {@link Config}.
 * Precedence: flag > env > config file > default.
 *
 * @example
 * ```ts
 * import { parseConfig } from "./parse.ts";
 * const io = { readTextFile: () => "", hostname: () => "box", tmpDir: () => "/tmp" };
 * const outcome = parseConfig(["-n", "node1", "--port=8081", "app.db"], { HA_PG_PORT: "0" }, io);
 * if (outcome.kind === "run") outcome.config.pgPort; // 0
 * ```
 * @module
 */

import { tmpdir } from "node:os";
import { HaError } from "../errors/mod.ts";
import { helpText, versionText } from "./help.ts";
import { exposureProblem } from "./exposure.ts";
import { FLAGS } from "./schema.ts";
import { type DefaultContext, type FlagField, type FlagSpec, type Settings } from "./flag_spec.ts";
import type { Config, ConfigField, ConfigIO, ConfigSource, ParseOutcome } from "./types.ts";
import { ValueError } from "./values.ts";

/** One raw value and where it was written, for error messages. */
interface RawValue {
  readonly raw: string;
  /** e.g. `env HA_PORT`, `config file ha.conf line 3`; null for the command line. */
  readonly origin: string | null;
}

type RawValues = Map<FlagSpec, RawValue[]>;

const BY_LONG = new Map<string, FlagSpec>();
const BY_SHORT = new Map<string, FlagSpec>();
for (const spec of FLAGS) {
  for (const long of [spec.long, ...spec.aliases]) BY_LONG.set(long, spec);
  if (spec.short) BY_SHORT.set(spec.short, spec);
}

function configError(message: string): HaError {
  return new HaError("config", message);
}

function quote(raw: string): string {
  return JSON.stringify(raw);
}

function add(values: RawValues, spec: FlagSpec, value: RawValue): void {
  const list = values.get(spec);
  if (list) list.push(value);
  else values.set(spec, [value]);
}

/** Edit distance, for "did you mean" hints. */
function distance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const cur = [i];
    for (let j = 1; j <= b.length; j++) {
      cur[j] = Math.min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1));
    }
    prev = cur;
  }
  return prev[b.length];
}

function suggestion(name: string): string {
  let best: string | null = null;
  let bestDistance = 3;
  for (const long of BY_LONG.keys()) {
    const d = distance(name, long);
    if (d < bestDistance) [best, bestDistance] = [long, d];
  }
  return best ? ` (did you mean --${best}?)` : "";
}

/** The spec a command-line token names (`--port`, `-p`, `-port`), or undefined. */
function lookupFlag(token: string): FlagSpec | undefined {
  if (!token.startsWith("-") || token === "-") return undefined;
  const body = token.startsWith("--") ? token.slice(2) : token.slice(1);
  const name = body.split("=", 1)[0];
  if (!token.startsWith("--") && name.length === 1) return BY_SHORT.get(name);
  return BY_LONG.get(name);
}

function parseArgs(args: readonly string[]): { values: RawValues; dsns: string[] } {
  const values: RawValues = new Map();
  const dsns: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const arg = args[i];
    if (arg === "--") {
      dsns.push(...args.slice(i + 1));
      break;
    }
    if (!arg.startsWith("-") || arg === "-") {
      dsns.push(arg);
      continue;
    }
    const eq = arg.indexOf("=");
    const token = eq < 0 ? arg : arg.slice(0, eq);
    const spec = lookupFlag(token);
    if (!spec) {
      const name = token.replace(/^--?/, "");
      throw configError(`unknown flag ${token}${suggestion(name)}; see ha --help`);
    }
    let raw: string;
    if (eq >= 0) {
      raw = arg.slice(eq + 1);
    } else if (spec.metavar === null) {
      raw = "true";
    } else {
      const next = args[i + 1];
      if (next === undefined || next === "--" || lookupFlag(next)) {
        throw configError(
          `missing value for --${spec.long}: expected ${spec.metavar} ` +
            `(write --${spec.long}=VALUE for a value starting with -)`,
        );
      }
      raw = next;
      i++;
    }
    add(values, spec, { raw, origin: null });
  }
  return { values, dsns };
}

function parseEnv(env: Record<string, string | undefined>): RawValues {
  const values: RawValues = new Map();
  for (const spec of FLAGS) {
    if (spec.env === null) continue;
    const raw = env[spec.env];
    // An empty variable counts as unset (compose files often pass `HA_X=`).
    if (raw === undefined || raw.trim() === "") continue;
    add(values, spec, { raw, origin: `env ${spec.env}` });
  }
  return values;
}

/** TEST ONLY (the chaos suite's clock jumps): `HA_TEST_CLOCK_OFFSET_MS`, an integer in ms. */
function testClockOffset(env: Record<string, string | undefined>): Partial<Config> {
  const raw = env.HA_TEST_CLOCK_OFFSET_MS?.trim();
  if (!raw) return {};
  const ms = Number(raw);
  if (!Number.isSafeInteger(ms)) {
    throw configError(
      `invalid value ${quote(raw)} for HA_TEST_CLOCK_OFFSET_MS: expected an integer`,
    );
  }
  return { testClockOffsetMs: ms };
}

/**
 * Reads config-file text: one `flag value` or `flag=value` per line, leading dashes
 * optional, `#` full-line and ` #` end-of-line comments, a bare `flag` meaning true,
 * values optionally in single or double quotes.
 */
function parseFile(text: string, path: string): RawValues {
  const values: RawValues = new Map();
  const lines = text.split(/\r?\n/);
  for (let n = 0; n < lines.length; n++) {
    const where = `config file ${path} line ${n + 1}`;
    const line = lines[n].trim();
    if (line === "" || line.startsWith("#")) continue;
    const body = line.replace(/^--?/, "");
    const keyEnd = body.search(/[\s=]/);
    const key = keyEnd < 0 ? body : body.slice(0, keyEnd);
    let rest = keyEnd < 0 ? "" : body.slice(keyEnd).trimStart();
    const explicit = rest.startsWith("=");
    if (explicit) rest = rest.slice(1).trimStart();

    const spec = BY_LONG.get(key);
    if (!spec) throw configError(`unknown key ${quote(key)} in ${where}${suggestion(key)}`);
    if (!spec.inFile) throw configError(`--${spec.long} cannot be set in a config file (${where})`);

    let raw: string;
    const q = rest[0];
    if (q === '"' || q === "'") {
      const close = rest.indexOf(q, 1);
      const after = close < 0 ? "" : rest.slice(close + 1).trim();
      if (close < 0 || (after !== "" && !after.startsWith("#"))) {
        throw configError(`badly quoted value for --${spec.long} in ${where}`);
      }
      raw = rest.slice(1, close);
    } else {
      const comment = rest.search(/(^|\s)#/);
      raw = (comment < 0 ? rest : rest.slice(0, comment)).trimEnd();
      if (raw === "" && !explicit) {
        if (spec.metavar !== null) {
          throw configError(`missing value for --${spec.long} in ${where}`);
        }
        raw = "true";
      }
    }
    add(values, spec, { raw, origin: where });
  }
  return values;
}

/** The raw value of `spec` from the highest-precedence source that has one. */
function pick(
  spec: FlagSpec,
  sources: readonly [ConfigSource, RawValues][],
): { source: ConfigSource; value: RawValue } | null {
  for (const [source, values] of sources) {
    const list = values.get(spec);
    if (!list || list.length === 0) continue;
    const last = list[list.length - 1];
    const raw = spec.repeatable ? list.map((v) => v.raw).join(",") : last.raw;
    return { source, value: { raw, origin: last.origin } };
  }
  return null;
}

function parseValue<K extends FlagField>(spec: FlagSpec<K>, value: RawValue): Settings[K] {
  try {
    return spec.parse(value.raw);
  } catch (e) {
    if (!(e instanceof ValueError)) throw e;
    const origin = value.origin ? ` (${value.origin})` : "";
    return failValue(spec, e.value ?? value.raw, origin, e.expected);
  }
}

function failValue(spec: FlagSpec, raw: string, origin: string, expected: string): never {
  throw configError(
    `invalid value ${quote(raw)} for --${spec.long}${origin}: expected ${expected}`,
  );
}

/** Resolves one flag into `out`, recording its source. */
function resolve<K extends FlagField>(
  spec: FlagSpec<K>,
  sources: readonly [ConfigSource, RawValues][],
  ctx: DefaultContext,
  out: Partial<Settings>,
  seen: Partial<Record<FlagField, ConfigSource>>,
): Settings[K] {
  const picked = pick(spec, sources);
  let value: Settings[K];
  if (picked) {
    value = parseValue(spec, picked.value);
    seen[spec.field] = picked.source;
  } else {
    value = spec.default(ctx);
  }
  (out as Record<FlagField, unknown>)[spec.field] = value;
  return value;
}

function specOf(field: FlagField): FlagSpec {
  const spec = FLAGS.find((f) => f.field === field);
  if (!spec) throw new HaError("internal", `no flag for ${field}`);
  return spec;
}

function flagName(field: FlagField): string {
  return `--${specOf(field).long}`;
}

/** Checks rules that involve several fields. */
function crossValidate(c: Config): void {
  const pairs: [ConfigField, ConfigField][] = [
    ["natsUser", "natsPass"],
    ["pgCert", "pgKey"],
    ["natsTlsCert", "natsTlsKey"],
  ];
  for (const [a, b] of pairs) {
    const hasA = c[a] !== null;
    const hasB = c[b] !== null;
    if (hasA !== hasB) {
      const given = hasA ? a : b;
      const missing = hasA ? b : a;
      throw configError(
        `${flagName(a)} and ${flagName(b)} must be set together: ${flagName(given)} ` +
          `is set but ${flagName(missing)} is not`,
      );
    }
  }
  if (c.pgRequireTls && c.pgCert === null) {
    throw configError("--pg-require-tls needs --pg-cert and --pg-key");
  }
  clusterValidate(c);
  const exposed = exposureProblem(c);
  if (exposed) throw configError(exposed);
  const ports: [ConfigField, number][] = [["port", c.port], ["pgPort", c.pgPort], [
    "natsPort",
    c.natsPort,
  ], ["natsClusterPort", c.natsClusterPort]];
  for (let i = 0; i < ports.length; i++) {
    for (let j = i + 1; j < ports.length; j++) {
      const [fa, pa] = ports[i];
      const [fb, pb] = ports[j];
      if (pa !== 0 && pa === pb) {
        throw configError(
          `${flagName(fa)} and ${flagName(fb)} are both ${pa}: each listener needs its own port`,
        );
      }
    }
  }
}

/** The embedded NATS cluster flags: only with the generated config, replicas within its size. */
function clusterValidate(c: Config): void {
  if (c.natsClusterPort === 0) {
    if (c.natsRoutes.length > 0) throw configError("--nats-routes needs --nats-cluster-port");
    return;
  }
  if (c.natsConfig !== null) {
    throw configError(
      "--nats-cluster-port and --nats-config exclude each other: put the cluster block in the file",
    );
  }
  if (c.natsPort === 0) {
    throw configError("--nats-cluster-port needs the embedded server (--nats-port)");
  }
  if (c.natsRoutes.length === 0) {
    throw configError("--nats-cluster-port needs --nats-routes (the route URLs of the members)");
  }
  // The routes may or may not list this node: the cluster has at most routes + 1 servers.
  if (c.replicas > c.natsRoutes.length + 1) {
    throw configError(
      `--replicas ${c.replicas} exceeds the cluster size: --nats-routes names at most ` +
        `${c.natsRoutes.length + 1} servers with this one`,
    );
  }
}

function hostContext(io: ConfigIO, name: () => string): DefaultContext {
  return {
    hostname: () => {
      let host: string;
      try {
        host = io.hostname().trim();
      } catch (e) {
        const why = e instanceof Error ? e.message : String(e);
        throw configError(
          `cannot read the hostname for the default of --name (${why}); set --name or HA_NAME`,
        );
      }
      if (host === "") throw configError("the hostname is empty; set --name or HA_NAME");
      return host;
    },
    tmpDir: () => {
      const dir = io.tmpDir().replace(/[\\/]+$/, "");
      return dir === "" ? "/tmp" : dir;
    },
    name,
  };
}

/**
 * Parses the command line (`args`, without the program name), the environment and the
 * config file named by `-c/--config` or `HA_CONFIG` (read through `io`). Pure: all
 * outside input comes through the parameters. Throws {@link HaError} with code
 * `"config"` and a one-line message naming the flag for every invalid input.
 *
 * @example
 * ```ts
 * import { parseConfig } from "./parse.ts";
 * const io = { readTextFile: () => "port 9000\n", hostname: () => "box", tmpDir: () => "/tmp" };
 * const outcome = parseConfig(["-c", "ha.conf", "-m", "a.db"], {}, io);
 * if (outcome.kind === "run") {
 *   outcome.config.port; // 9000 (from the file)
 *   outcome.config.dsns; // ["a.db"]
 *   outcome.config.natsStoreDir; // "/tmp/nats/box"
 * }
 * ```
 */
export function parseConfig(
  args: readonly string[],
  env: Record<string, string | undefined>,
  io: ConfigIO,
): ParseOutcome {
  const { values: argValues, dsns } = parseArgs(args);
  const envValues = parseEnv(env);
  const out: Partial<Settings> = {};
  const seen: Partial<Record<FlagField, ConfigSource>> = {};
  const ctx = hostContext(io, () => {
    if (out.name === undefined) throw new HaError("internal", "name resolved too late");
    return out.name;
  });

  const early: [ConfigSource, RawValues][] = [["flag", argValues], ["env", envValues]];
  if (resolve(specOf("help"), [["flag", argValues]], ctx, out, seen)) {
    return { kind: "help", text: helpText() };
  }
  if (resolve(specOf("version"), early, ctx, out, seen)) {
    return { kind: "version", text: versionText() };
  }

  const configFile = resolve(specOf("configFile"), early, ctx, out, seen) as string | null;
  let fileValues: RawValues = new Map();
  if (configFile !== null) {
    let text: string;
    try {
      text = io.readTextFile(configFile);
    } catch (e) {
      const why = e instanceof Error ? e.message : String(e);
      throw configError(`cannot read config file ${quote(configFile)} (--config): ${why}`);
    }
    fileValues = parseFile(text, configFile);
  }
  const all: [ConfigSource, RawValues][] = [...early, ["file", fileValues]];
  if (resolve(specOf("version"), all, ctx, out, seen)) {
    return { kind: "version", text: versionText() };
  }

  for (const spec of FLAGS) {
    if (spec.field === "help" || spec.field === "version" || spec.field === "configFile") {
      continue;
    }
    resolve(spec, all, ctx, out, seen);
  }
  const { help: _help, version: _version, ...rest } = out as Settings;
  const config: Config = { ...rest, dsns, ...testClockOffset(env) };
  crossValidate(config);
  delete seen.help;
  delete seen.version;
  return { kind: "run", config, sources: seen as Partial<Record<ConfigField, ConfigSource>> };
}

/**
 * Parses the real process inputs: `Deno.env`, config files through
 * `Deno.readTextFileSync`, `Deno.hostname()` and the OS temporary directory. The only
 * place where configuration reads the environment or files.
 *
 * @example
 * ```ts
 * import { loadConfig } from "./parse.ts";
 * const outcome = loadConfig(Deno.args);
 * if (outcome.kind !== "run") console.info(outcome.text);
 * ```
 */
export function loadConfig(args: readonly string[] = Deno.args): ParseOutcome {
  return parseConfig(args, Deno.env.toObject(), {
    readTextFile: (path) => Deno.readTextFileSync(path),
    hostname: () => Deno.hostname(),
    tmpDir: () => tmpdir(),
  });
}
