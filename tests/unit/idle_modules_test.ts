/**
 * The modules a node loads before it is used (issue 13, idle memory): the main isolate's start-up
 * graph (main.ts and the modules node.ts imports while nats-server starts) and the writer
 * isolate's (worker.ts and its two plugins) leave out what loads on first use. Read from
 * `deno info --json`: static imports that carry code, plus the named start-up `import()`s.
 */
import assert from "node:assert/strict";

const ROOT = new URL("../../", import.meta.url);

interface Dep {
  specifier: string;
  code?: { specifier: string };
  isDynamic?: boolean;
}
interface Info {
  roots: string[];
  modules: { specifier: string; dependencies?: Dep[] }[];
}

/** Local modules (paths from the repository root) loaded from `roots`, following `dynamic`. */
async function loaded(roots: string[], dynamic: string[] = []): Promise<Set<string>> {
  const out = new Set<string>();
  for (const root of roots) {
    const { stdout, success } = await new Deno.Command(Deno.execPath(), {
      args: ["info", "--json", root],
      cwd: ROOT,
      stdout: "piped",
      stderr: "null",
    }).output();
    assert.ok(success, `deno info ${root}`);
    const info = JSON.parse(new TextDecoder().decode(stdout)) as Info;
    const mods = new Map(info.modules.map((m) => [m.specifier, m]));
    const stack = [...info.roots];
    const seen = new Set<string>();
    while (stack.length) {
      const s = stack.pop()!;
      if (seen.has(s)) continue;
      seen.add(s);
      if (s.startsWith(ROOT.href)) out.add(s.slice(ROOT.href.length));
      if (s.startsWith("npm:")) out.add(s);
      for (const d of mods.get(s)?.dependencies ?? []) {
        const to = d.code?.specifier;
        if (!to) continue;
        if (d.isDynamic && !dynamic.includes(d.specifier)) continue;
        stack.push(to);
      }
    }
  }
  return out;
}

Deno.test("main isolate: snapshot, interceptor, PG connection and catalog modules load on use", async () => {
  const mods = await loaded(["main.ts"], [
    "./http/mod.ts",
    "./pgwire/mod.ts",
    "./ids/mod.ts",
    "./metrics/mod.ts",
  ]);
  // What the node does use at start is there.
  for (const m of ["src/node.ts", "src/pgwire/server.ts", "src/http/mod.ts"]) {
    assert.ok(mods.has(m), m);
  }
  const onUse = [...mods].filter((m) =>
    m.startsWith("src/snapshot/") || m.includes("@nats-io/obj") ||
    /^src\/interceptor\/(host|load|sandbox|bundle|child|bootstrap|wire)\.ts$/.test(m) ||
    m === "src/pgwire/connection.ts" || m === "src/pgwire/executor.ts" ||
    m === "src/pgwire/pg_catalog/mod.ts"
  );
  assert.deepEqual(onUse, []);
});

Deno.test("writer isolate: the plugins do not pull in the main thread's engine", async () => {
  const mods = await loaded([
    "src/engine/worker.ts",
    "src/replication/writer_plugin.ts",
    "src/ids/plugin.ts",
  ]);
  assert.ok(mods.has("src/engine/connection.ts"));
  const mainThread = [...mods].filter((m) =>
    /^src\/engine\/(mod|database|engine|reader_pool|checkpointer|worker_client|inline_reader)\.ts$/
      .test(m)
  );
  assert.deepEqual(mainThread, []);
});
