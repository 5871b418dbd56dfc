/**
 * Helpers for tests and benchmarks of interceptors: write a module to a temporary directory,
 * load it with a capturing logger, build sample changesets and conflicts. Not used by the node.
 *
 * @example
 * ```ts
 * await using t = await testInterceptor(`export const beforeApply = () => ({ skip: true });`);
 * await t.host.beforeApply(sampleChangeSet(1), "ha.db"); // { skip: true }
 * ```
 * @module
 */
import { dirname, join } from "node:path";
import type { ChangeSet, Conflict, QueryResult, SqlValue } from "../../interceptors/types.ts";
import { createLogger } from "../log/mod.ts";
import type { InterceptorHost, InterceptorOptions, QueryFn } from "./host.ts";
import { loadInterceptor } from "./load.ts";

/** A parsed log line. */
export type LogLine = Record<string, unknown> & { level: string; msg: string };

/** A loaded test interceptor; `await using` stops it and removes its directory. */
export interface TestInterceptor extends AsyncDisposable {
  host: InterceptorHost;
  /** Every log line so far. */
  logs: LogLine[];
  /** Directory holding the module (and any `files`). */
  dir: string;
  /**
   * The options the host reads on every call: a test may change `timeoutMs` between calls (a
   * short limit for a call meant to hang, a long one for calls that must succeed however busy
   * the machine is).
   */
  options: InterceptorOptions;
}

/** Options of {@link testInterceptor}. */
export interface TestInterceptorOptions extends Partial<Omit<InterceptorOptions, "logger">> {
  /** Extra files to write next to the module (name → text). */
  files?: Record<string, string>;
  /** Name of the module file. Default `interceptor.ts`. */
  name?: string;
}

/** A logger capturing parsed lines into `logs`. */
export function captureLogger(logs: LogLine[]): InterceptorOptions["logger"] {
  return createLogger("debug", (line) => logs.push(JSON.parse(line)));
}

/** Writes `files` into a new temporary directory. */
export async function writeFiles(files: Record<string, string>): Promise<string> {
  const dir = await Deno.makeTempDir({ prefix: "ha-interceptor-" });
  for (const [name, text] of Object.entries(files)) {
    await Deno.mkdir(dirname(join(dir, name)), { recursive: true });
    await Deno.writeTextFile(join(dir, name), text);
  }
  return dir;
}

const noQuery: QueryFn = () => Promise.resolve({ columns: [], rows: [] } as QueryResult);

/** Writes `code` as a module and loads it (timeout 2 s unless given). */
export async function testInterceptor(
  code: string,
  opts: TestInterceptorOptions = {},
): Promise<TestInterceptor> {
  const name = opts.name ?? "interceptor.ts";
  const dir = await writeFiles({ ...opts.files, [name]: code });
  const logs: LogLine[] = [];
  try {
    const options: InterceptorOptions = {
      timeoutMs: opts.timeoutMs ?? 2000,
      logger: captureLogger(logs),
      query: opts.query ?? noQuery,
      node: opts.node ?? "node1",
      startTimeoutMs: opts.startTimeoutMs,
      memoryMb: opts.memoryMb,
      now: opts.now,
    };
    const host = await loadInterceptor(join(dir, name), options);
    return {
      host,
      logs,
      dir,
      options,
      async [Symbol.asyncDispose]() {
        await host.stop();
        await Deno.remove(dir, { recursive: true });
      },
    };
  } catch (e) {
    await Deno.remove(dir, { recursive: true });
    throw e;
  }
}

/** A changeset of `rows` INSERTs into `t(id INTEGER PRIMARY KEY, name TEXT, n REAL, b BLOB)`. */
export function sampleChangeSet(rows: number, node = "node2"): ChangeSet {
  return {
    node,
    timestamp_ns: 1_700_000_000_000_000_000,
    hlc: 1_700_000_000_000_000,
    database: "ha.db",
    id: `ha.db:${node}:1`,
    changes: Array.from({ length: rows }, (_, i) => ({
      database: "main",
      table: "t",
      columns: ["id", "name", "n", "b"],
      pk_columns: ["id"],
      operation: "INSERT" as const,
      old_rowid: null,
      new_rowid: BigInt(i + 1),
      old_values: null,
      new_values: [BigInt(i + 1), `row ${i}`, i + 0.5, new Uint8Array([i & 255])],
    })),
  };
}

/** Conflicts for every change of `cs` (local row = remote row with `name` changed). */
export function sampleConflicts(cs: ChangeSet): Conflict[] {
  return cs.changes.map((c, i) => {
    const remote = c.new_values as SqlValue[];
    return {
      table: c.table,
      columns: c.columns,
      pk_columns: c.pk_columns,
      local: { values: [remote[0], "local", remote[2], remote[3]], hlc: 1, node: "node1" },
      remote: {
        operation: "UPDATE" as const,
        values: remote,
        old_values: remote,
        hlc: cs.hlc ?? 2,
        node: cs.node,
      },
      change_index: i,
      changeset: cs,
    };
  });
}
