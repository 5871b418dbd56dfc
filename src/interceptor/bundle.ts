/**
 * Bundles the user's interceptor file with esbuild into one ES module (plus its source map).
 * Type-only imports (such as the `interceptors/` API) vanish; relative imports of other user
 * files inside the interceptor's directory tree are bundled; any other import (outside that
 * tree, absolute paths, `npm:`, `jsr:`, URLs, bare names, `node:`) is rejected.
 *
 * @module
 */
import * as esbuild from "esbuild";
import { dirname, isAbsolute, relative, resolve } from "node:path";
import { HaError } from "../errors/mod.ts";

/** The bundled module. */
export interface Bundle {
  /** Absolute path of the entry file. */
  file: string;
  /** How to name the entry file in messages (relative to the cwd when inside it). */
  display: string;
  /** Bundled ES module text. */
  code: string;
  /** Source map (v3 JSON) of `code`. */
  map: string;
  /** The entry file's source text. */
  source: string;
}

/** Name for a path in messages: relative to the cwd when below it, else absolute. */
export function displayPath(abs: string): string {
  const rel = relative(Deno.cwd(), abs);
  return rel && !rel.startsWith("..") && !isAbsolute(rel) ? rel : abs;
}

// The esbuild service is one child process per JS process: stop it when no build is running,
// so that nothing outlives a load (tests, short-lived tools).
let activeBuilds = 0;

/**
 * Bundles `path`; throws `HaError("config")` with `file:line:column: message` lines on a
 * missing file or any build error.
 *
 * @example
 * ```ts
 * const b = await bundleInterceptor("resolver.ts");
 * b.code; // "function resolveConflict(c) { … }\nexport { resolveConflict };"
 * ```
 */
export async function bundleInterceptor(path: string): Promise<Bundle> {
  const file = resolve(path);
  const display = displayPath(file);
  let source: string;
  try {
    const st = await Deno.stat(file);
    if (!st.isFile) throw new HaError("config", `--interceptor ${display}: not a file`);
    source = await Deno.readTextFile(file);
  } catch (e) {
    if (e instanceof HaError) throw e;
    const why = e instanceof Deno.errors.NotFound ? "file not found" : (e as Error).message;
    throw new HaError("config", `--interceptor ${display}: ${why}`);
  }
  const dir = dirname(file);
  activeBuilds++;
  try {
    const result = await esbuild.build({
      entryPoints: [file],
      absWorkingDir: dir,
      outfile: resolve(dir, "__ha_interceptor.js"),
      bundle: true,
      format: "esm",
      platform: "neutral",
      target: "esnext",
      write: false,
      sourcemap: "external",
      sourcesContent: false,
      logLevel: "silent",
      charset: "utf8",
      tsconfigRaw: {},
      plugins: [onlyOwnFiles(dir)],
    });
    const js = result.outputFiles.find((f) => f.path.endsWith(".js"));
    const map = result.outputFiles.find((f) => f.path.endsWith(".map"));
    if (!js || !map) throw new HaError("internal", "esbuild produced no output");
    return { file, display, code: js.text, map: map.text, source };
  } catch (e) {
    if (e instanceof HaError) throw e;
    throw new HaError("config", formatBuildError(e, dir), { file }, { cause: e });
  } finally {
    if (--activeBuilds === 0) await esbuild.stop();
  }
}

/**
 * Imports must be relative paths that stay inside the interceptor's own directory tree
 * (symbolic links followed): the bundle must not embed other files of the machine (`.json`,
 * text) into a module that other code may log or expose.
 */
function onlyOwnFiles(root: string): esbuild.Plugin {
  const realRoot = realPath(root);
  return {
    name: "ha-only-own-files",
    setup(build) {
      build.onResolve({ filter: /.*/ }, (args) => {
        if (args.kind === "entry-point") return undefined;
        const p = args.path;
        if (!p.startsWith("./") && !p.startsWith("../")) {
          return {
            errors: [{
              text: `cannot import "${p}": an interceptor may import only its own files by ` +
                `relative path (type-only imports are fine); it runs without file, network or ` +
                `package access`,
            }],
          };
        }
        const target = realPath(resolve(args.resolveDir, p));
        const rel = relative(realRoot, target);
        if (rel.startsWith("..") || isAbsolute(rel)) {
          return {
            errors: [{
              text: `cannot import "${p}": it is outside the interceptor's directory ${root}`,
            }],
          };
        }
        return undefined;
      });
    },
  };
}

/** The real path of `p` when it exists (symbolic links resolved), else `p`. */
function realPath(p: string): string {
  try {
    return Deno.realPathSync(p);
  } catch {
    return p;
  }
}

function formatBuildError(e: unknown, dir: string): string {
  const errors = (e as { errors?: esbuild.Message[] }).errors;
  if (!Array.isArray(errors) || errors.length === 0) {
    return `--interceptor: ${(e as Error).message}`;
  }
  const lines = errors.slice(0, 10).map((m) => {
    if (!m.location) return `--interceptor: ${m.text}`;
    const l = m.location;
    return `${displayPath(resolve(dir, l.file))}:${l.line}:${l.column + 1}: ${m.text}`;
  });
  if (errors.length > 10) lines.push(`… and ${errors.length - 10} more errors`);
  return lines.join("\n");
}
