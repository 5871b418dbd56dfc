/**
 * The import rules of tests/README.md and ARCHITECTURE.md, checked on the source text: no folder
 * of src/ but http/ (and the composer node.ts) imports http/; a test imports another folder only
 * through its `mod.ts` (or `testing.ts`), and internal files only of the folder it is named for.
 */
import assert from "node:assert/strict";

const ROOT = new URL("../../", import.meta.url);

/** Every `.ts` file under `dir` (relative to the repository root). */
function tsFiles(dir: string): string[] {
  const out: string[] = [];
  for (const e of Deno.readDirSync(new URL(dir, ROOT))) {
    const path = `${dir}/${e.name}`;
    if (e.isDirectory) out.push(...tsFiles(path));
    else if (e.name.endsWith(".ts")) out.push(path);
  }
  return out;
}

/** The module specifiers a file imports or re-exports (static and dynamic). */
function imports(path: string): string[] {
  const text = Deno.readTextFileSync(new URL(path, ROOT));
  return [...text.matchAll(/(?:from|import)\s*\(?\s*"([^"]+)"/g)].map((m) => m[1]);
}

Deno.test("no domain folder imports http/", () => {
  const offending = tsFiles("src")
    .filter((f) => !f.startsWith("src/http/") && f !== "src/node.ts")
    .flatMap((f) => imports(f).filter((s) => /(^|\/)http\//.test(s)).map((s) => `${f} → ${s}`));
  assert.deepEqual(offending, []);
});

Deno.test("tests import other folders through mod.ts, internals only of their own", () => {
  const offending: string[] = [];
  for (const f of tsFiles("tests")) {
    const own = f.split("/").pop()!.split(/[_.]/)[0];
    for (const s of imports(f)) {
      const m = /\/src\/(\w+)\/(\w+)\.ts$/.exec(s);
      if (!m || m[2] === "mod" || m[2] === "testing" || m[1] === own) continue;
      offending.push(`${f} → ${s}`);
    }
  }
  assert.deepEqual(offending, []);
});
