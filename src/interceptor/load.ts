/**
 * Loading an interceptor at start: bundle, start the sandbox, check the exports. Every problem
 * is an `HaError("config")` naming `file:line:column`, so the node exits 2 before serving.
 *
 * @module
 */
import { dirname, resolve } from "node:path";
import type { HookName } from "../../interceptors/types.ts";
import { HaError } from "../errors/mod.ts";
import { InterceptorHost, type InterceptorOptions } from "./host.ts";
import type { ReadyInfo } from "./protocol.ts";
import { HookFailure, Sandbox } from "./sandbox.ts";
import { SourceMap } from "./sourcemap.ts";

/** The hook names a module may export. */
export const HOOK_NAMES: readonly HookName[] = ["beforeApply", "afterApply", "resolveConflict"];

/**
 * Loads the interceptor module at `path` and starts its sandbox worker.
 *
 * @throws HaError("config") on a missing file, a syntax/type-stripping error, a forbidden import,
 *   a module that throws or blocks while loading, a hook export that is not a function, a
 *   misspelt hook name, or a module exporting no hook.
 *
 * @example
 * ```ts
 * const host = await loadInterceptor("resolver.ts", {
 *   timeoutMs: 5000,
 *   logger,
 *   query: (db, sql, params) => engine.query(db, sql, params),
 *   node: "node1",
 * });
 * host.has("resolveConflict");
 * await host.stop();
 * ```
 */
export async function loadInterceptor(
  path: string,
  opts: InterceptorOptions,
): Promise<InterceptorHost> {
  if (!(opts.timeoutMs > 0)) throw new HaError("config", "interceptor timeout must be positive");
  // esbuild (~20 MB of memory) loads only when a node has an interceptor.
  const { bundleInterceptor, displayPath } = await import("./bundle.ts");
  const bundle = await bundleInterceptor(path);
  const dir = dirname(bundle.file);
  const map = new SourceMap(bundle.map, (s) => displayPath(resolve(dir, s)));
  // The name stack traces give the module (the sandbox rewrites its own URL to this one).
  const url = `ha-interceptor:${bundle.display}`;
  const log = opts.logger.child({ interceptor: bundle.display });
  const host = new InterceptorHost({
    display: bundle.display,
    code: bundle.code,
    url,
    map,
    opts,
    log,
  });
  let started: { sandbox: Sandbox; info: ReadyInfo };
  try {
    started = await host.startSandbox();
  } catch (e) {
    await host.stop();
    const f = e as HookFailure;
    const at = f.userStack ? map.firstPosition(f.userStack, url) : null;
    const where = at ? `${at.file}:${at.line}:${at.column}` : bundle.display;
    const what = f instanceof HookFailure && f.kind === "timeout"
      ? f.message
      : `the module failed to load: ${(e as Error).message}`;
    throw new HaError("config", `${where}: ${what}`, { file: bundle.file });
  }
  let hooks: Set<HookName>;
  try {
    hooks = checkExports(started.info, bundle.source, bundle.display);
  } catch (e) {
    started.sandbox.stop();
    await host.stop();
    throw e;
  }
  host.adopt(started.sandbox, hooks);
  log.info("interceptor loaded", { hooks: [...hooks], timeout_ms: opts.timeoutMs });
  return host;
}

/**
 * The hooks a module provides, from what the sandbox found in it.
 *
 * @throws HaError("config") listing every problem as `file:line:column: message`.
 */
export function checkExports(info: ReadyInfo, source: string, display: string): Set<HookName> {
  const problems: string[] = [];
  const at = (name: string | "default") => {
    const p = exportPosition(source, name);
    return `${display}:${p.line}:${p.column}`;
  };
  const named = Object.keys(info.named) as HookName[];
  const inDefault = Object.keys(info.defaultHooks) as HookName[];

  for (const h of named) {
    if (info.named[h] !== "function") {
      problems.push(`${at(h)}: export "${h}" must be a function, got ${info.named[h]}`);
    }
  }
  if (named.length > 0 && inDefault.length > 0) {
    problems.push(
      `${at("default")}: hooks are exported both by name and in the default export; use one`,
    );
  } else if (named.length === 0) {
    const t = info.defaultType;
    if (t !== "undefined" && t !== "object") {
      problems.push(
        `${at("default")}: the default export must be an object with hook functions ` +
          `(${HOOK_NAMES.join(", ")}), got ${t === "null" ? "null" : `a ${t}`}`,
      );
    }
    for (const h of inDefault) {
      if (info.defaultHooks[h] !== "function") {
        problems.push(
          `${at("default")}: default export's "${h}" must be a function, got ${
            info.defaultHooks[h]
          }`,
        );
      }
    }
  }
  for (const name of info.exports) {
    const hint = nearMiss(name);
    if (hint) problems.push(`${at(name)}: export "${name}" is not a hook; did you mean "${hint}"?`);
  }
  const hooks = new Set<HookName>(named.length > 0 ? named : inDefault);
  if (problems.length === 0 && hooks.size === 0) {
    problems.push(`${display}: exports none of the hooks ${HOOK_NAMES.join(", ")}`);
  }
  if (problems.length) throw new HaError("config", problems.join("\n"), { file: display });
  return hooks;
}

/** A hook name that `name` is probably meant to be (typo, other case, the Go names). */
function nearMiss(name: string): HookName | null {
  if ((HOOK_NAMES as string[]).includes(name)) return null;
  const n = name.toLowerCase().replace(/[_-]/g, "");
  if (n === "before" || n === "beforeapply") return "beforeApply";
  if (n === "after" || n === "afterapply") return "afterApply";
  if (n === "resolve" || n === "resolveconflict" || n === "resolveconflicts") {
    return "resolveConflict";
  }
  return null;
}

/** Best-effort 1-based position of the declaration of export `name` in `source`. */
export function exportPosition(source: string, name: string): { line: number; column: number } {
  const id = name.replace(/[$]/g, "\\$");
  const patterns = name === "default" ? [/\bexport\s+default\b/] : [
    new RegExp(
      `\\bexport\\s+(?:async\\s+)?(?:function\\s*\\*?\\s*|const\\s+|let\\s+|var\\s+|class\\s+)(${id})\\b`,
    ),
    new RegExp(`\\bexport\\s*\\{[^}]*?\\bas\\s+(${id})\\b`),
    new RegExp(`\\bexport\\s*\\{[^}]*?\\b(${id})\\b`),
  ];
  for (const re of patterns) {
    const m = re.exec(source);
    if (m) {
      const index = m.index + (m[1] ? m[0].lastIndexOf(m[1]) : 0);
      const before = source.slice(0, index);
      const line = before.split("\n").length;
      return { line, column: index - before.lastIndexOf("\n") };
    }
  }
  return { line: 1, column: 1 };
}
