/**
 * The README's examples, run as a new user would: its curl commands (with the responses shown in
 * the comments below them) and its psql session, against a node started like `deno task start`.
 * Other README blocks run where their feature is tested: the library snippet in
 * library_app_test.ts, the follower's Python and sqlite3 readers in follower_test.ts.
 */
import assert from "node:assert/strict";
import { Cluster } from "./helpers/cluster.ts";
import { freePort } from "./helpers/ha.ts";

const opts = { sanitizeOps: false, sanitizeResources: false };
const README = Deno.readTextFileSync(new URL("../../README.md", import.meta.url));

interface Example {
  command: string;
  /** The JSON response the README shows in `# …` lines right below, if any. */
  expected: string | undefined;
}

/** Fenced code blocks of a language. */
function blocks(lang: string): string[] {
  const out: string[] = [];
  const re = new RegExp("```" + lang + "\\n([\\s\\S]*?)```", "g");
  for (const m of README.matchAll(re)) out.push(m[1]);
  return out;
}

/** Splits a shell block into commands (quotes and `\` continuations joined) with expectations. */
function commands(block: string): Example[] {
  const out: Example[] = [];
  const lines = block.split("\n");
  for (let i = 0; i < lines.length; i++) {
    if (!lines[i].trim() || lines[i].startsWith("#")) continue;
    let cmd = lines[i];
    while ((cmd.split("'").length % 2 === 0 || cmd.endsWith("\\")) && i + 1 < lines.length) {
      cmd += "\n" + lines[++i];
    }
    let comment = "";
    while (i + 1 < lines.length && lines[i + 1].startsWith("#")) comment += lines[++i].slice(1);
    out.push({ command: cmd, expected: comment.trim() || undefined });
  }
  return out;
}

/**
 * Ids chosen by the cluster differ from run to run: the README's ids stand for the ids of this
 * run, one for one (the same README id is always the same id here, and vice versa).
 */
class IdMatcher {
  private readonly toReadme = new Map<string, string>();
  private readonly toRun = new Map<string, string>();

  /** `actual` with its ids replaced by the README's, checking that they correspond. */
  match(expected: string, actual: string): string {
    const want = expected.match(/\d{15,}/g) ?? [];
    const have = actual.match(/\d{15,}/g) ?? [];
    assert.equal(have.length, want.length, `ids in ${actual}, README: ${expected}`);
    have.forEach((id, i) => {
      assert.equal(this.toReadme.get(id) ?? want[i], want[i], `id ${id} in ${actual}`);
      assert.equal(this.toRun.get(want[i]) ?? id, id, `README id ${want[i]} in ${actual}`);
      this.toReadme.set(id, want[i]);
      this.toRun.set(want[i], id);
    });
    return actual.replace(/\d{15,}/g, (id) => this.toReadme.get(id)!);
  }
}

Deno.test("README: curl examples and their responses, psql session", opts, async () => {
  const cluster = new Cluster();
  const pgPort = freePort();
  try {
    const node = await cluster.start("node1", {
      embeddedNats: true,
      args: ["--pg-port", String(pgPort)],
    });
    const cwd = await Deno.makeTempDir({ prefix: "ha-readme-" });
    const ids = new IdMatcher();
    const curls = blocks("sh").flatMap(commands).filter((e) => e.command.startsWith("curl"));
    assert.ok(curls.length >= 7, `found ${curls.length} curl examples`);
    for (const ex of curls) {
      const cmd = ex.command.replace(/(\S)\s+#.*$/, "$1").replaceAll(
        "localhost:8080",
        `127.0.0.1:${node.port}`,
      );
      const r = await new Deno.Command("bash", {
        args: ["-c", `curl -sS ${cmd.slice(5)}`],
        cwd,
        stdout: "piped",
        stderr: "piped",
      }).output();
      const stdout = new TextDecoder().decode(r.stdout);
      assert.equal(r.code, 0, `${ex.command}\n${new TextDecoder().decode(r.stderr)}`);
      assert.ok(!stdout.includes('"error"'), `${ex.command}\n${stdout}`);
      if (ex.expected !== undefined) {
        assert.deepEqual(JSON.parse(ids.match(ex.expected, stdout)), JSON.parse(ex.expected), cmd);
      }
    }
    const saved = [...Deno.readDirSync(cwd)].map((e) => e.name);
    assert.ok(saved.some((n) => /^ha\.db-snapshot-\d+\.db$/.test(n)), saved.join(", "));

    const sql = blocks("sql")[0];
    const psql = await new Deno.Command("psql", {
      args: ["-X", "-h", "127.0.0.1", "-p", String(pgPort), "-U", "ha", "-v", "ON_ERROR_STOP=1"],
      env: { PGPASSWORD: "ha" },
      stdin: "piped",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    const w = psql.stdin.getWriter();
    await w.write(new TextEncoder().encode(sql));
    await w.close();
    const out = await psql.output();
    const text = new TextDecoder().decode(out.stdout);
    assert.equal(out.code, 0, new TextDecoder().decode(out.stderr));
    assert.match(text, /INSERT 0 1/);
    assert.match(text, /HA user from PostgreSQL Wire Protocol/);
    assert.match(text, /HA User/);
  } finally {
    await cluster.stop();
  }
});

Deno.test("README: the interceptor example loads and resolves conflicts", opts, async () => {
  const { loadInterceptor } = await import("../../src/interceptor/mod.ts");
  const { createLogger } = await import("../../src/log/mod.ts");
  const dir = await Deno.makeTempDir({ prefix: "ha-readme-ts-" });
  const api = new URL("../../interceptors/mod.ts", import.meta.url).pathname;
  const code = blocks("ts")[0].replace('"./interceptors/mod.ts"', JSON.stringify(api));
  await Deno.writeTextFile(`${dir}/resolver.ts`, code);
  const host = await loadInterceptor(`${dir}/resolver.ts`, {
    timeoutMs: 60_000,
    logger: createLogger("error"),
    query: () => Promise.reject(new Error("unused")),
  });
  try {
    const conflict = (local: bigint, remote: bigint) => ({
      table: "t",
      columns: ["id", "version"],
      pk_columns: ["id"],
      change_index: 0,
      local: { values: [1n, local], hlc: 1, node: "a" },
      remote: {
        operation: "UPDATE" as const,
        values: [1n, remote],
        old_values: [1n, 0n],
        hlc: 2,
        node: "b",
      },
      changeset: {
        node: "b",
        database: "ha.db",
        hlc: 2,
        timestamp_ns: 0,
        id: "x",
        changes: [],
      },
    });
    assert.deepEqual(
      await host.resolveConflicts([conflict(5n, 3n), conflict(3n, 5n), conflict(4n, 4n)], "ha.db"),
      ["local", "remote", undefined],
    );
  } finally {
    await host.stop();
  }
});
