/**
 * The dashboard in headless Chromium against a real 2-node cluster with `--token`: the page
 * asks for the token, then shows both nodes, the failing changeset (skipped from the page),
 * a snapshot taken from the page and a query run in the SQL console. A screenshot is saved in
 * `.tmp/` (path printed). Skipped, loudly, only when Chromium cannot start.
 */
import assert from "node:assert/strict";
import { Cluster, type HaNode, waitFor } from "./helpers/cluster.ts";
import { Chromium, type Page } from "./helpers/chromium.ts";

const opts = { sanitizeOps: false, sanitizeResources: false };
const TOKEN = "ui-test-token";
const SHOT = new URL("../../.tmp/ui_test.png", import.meta.url);

async function sql(n: HaNode, q: string): Promise<{ rows: unknown[][] }> {
  const r = await fetch(`${n.url}/query`, {
    method: "POST",
    headers: { "content-type": "application/json", authorization: `Bearer ${TOKEN}` },
    body: JSON.stringify({ sql: q }),
  });
  const body = await r.json();
  if (!r.ok) throw new Error(`${q}: HTTP ${r.status} ${JSON.stringify(body)}`);
  return body;
}

/** The text of every cell of a table's body, row by row. */
function cells(page: Page, table: string): Promise<string[][]> {
  return page.eval(
    `[...document.querySelectorAll("#${table} tbody tr")].map((tr) => [...tr.cells].map((c) => c.textContent))`,
  );
}

let browser: Chromium | null = null;
let launchError: Error | null = null;
try {
  browser = await Chromium.launch();
} catch (e) {
  launchError = e as Error;
  console.error(`\n*** ui_test SKIPPED: Chromium cannot start ***\n${launchError.message}\n`);
}

Deno.test({
  name: "dashboard: nodes, failing changeset skipped, snapshot, SQL console (headless Chromium)",
  ignore: browser === null,
  ...opts,
  fn: async () => {
    const cluster = new Cluster();
    try {
      const n1 = await cluster.start("node1", {
        embeddedNats: true,
        args: ["--disable-ddl-sync", "--token", TOKEN],
      });
      const n2 = await cluster.start("node2", { natsUrl: n1.natsUrl!, args: ["--token", TOKEN] });
      // A changeset node2 cannot apply (its CHECK refuses 'bad'), then one it can.
      await sql(n1, "CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT)");
      await sql(n2, "CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT CHECK (v <> 'bad'))");
      await sql(n1, "INSERT INTO t VALUES (1, 'bad')");
      await sql(n1, "INSERT INTO t VALUES (2, 'ok')");

      const res = await fetch(`${n2.url}/ui`);
      assert.equal(res.status, 200);
      assert.match(res.headers.get("content-security-policy") ?? "", /script-src 'self'/);
      await res.body?.cancel();

      const page = await browser!.open(`${n2.url}/ui`);
      await waitFor(
        "the page asks for the token",
        async () =>
          /Unauthorized/.test(
            await page.eval<string>(`document.getElementById("message").textContent`),
          ),
      );
      await page.eval(`document.getElementById("token").value = ${JSON.stringify(TOKEN)};
        document.getElementById("token-form").requestSubmit()`);
      assert.equal(await page.eval(`sessionStorage.getItem("ha-token")`), TOKEN);

      await waitFor("both nodes and the failing changeset shown", async () => {
        const nodes = (await cells(page, "nodes")).map((r) => r[0]).sort();
        return nodes.join() === "node1,node2" && (await cells(page, "failing")).length === 1;
      }, 30_000);
      assert.equal(await page.eval(`document.getElementById("node").textContent`), "node2");
      assert.equal(
        await page.eval(`document.getElementById("nats").textContent`),
        "NATS connected",
      );
      const [failing] = await cells(page, "failing");
      assert.equal(failing[0], "ha_db_node2");
      assert.match(failing[2], /CHECK constraint/);

      // Skip it from the page (its confirm() accepted).
      await page.eval(`window.confirm = () => true;
        document.querySelector("#failing tbody button").click()`);
      await waitFor(
        "the later changeset applied",
        async () => (await sql(n2, "SELECT count(*) FROM t")).rows[0][0] === 1,
      );
      await waitFor(
        "no failing changeset shown",
        async () => (await cells(page, "failing")).length === 0,
      );
      await waitFor(
        "lag from node1 shown",
        async () =>
          (await cells(page, "nodes")).some((r) => r[0] === "node2" && /^node1: \d/.test(r[5])),
      );

      // A snapshot taken from the page is then described.
      await page.eval(`document.querySelector("#snapshots tbody button").click()`);
      await waitFor("snapshot shown", async () => {
        const [row] = await cells(page, "snapshots");
        return row?.[0] === "ha.db" && /^\d+$/.test(row[1]) && row[3] === "node2";
      }, 30_000);

      // The SQL console.
      await page.eval(`document.getElementById("sql").value = "SELECT nope";
        document.getElementById("sql-form").requestSubmit()`);
      await waitFor(
        "SQL error shown",
        async () =>
          /no such column/.test(
            await page.eval<string>(`document.getElementById("sql-error").textContent`),
          ),
      );
      await page.eval(`document.getElementById("sql").value = "SELECT id, v FROM t ORDER BY id";
        document.getElementById("sql-form").requestSubmit()`);
      await waitFor("query result shown", async () => (await cells(page, "sql-result")).length > 0);
      assert.deepEqual(
        await page.eval(
          `[...document.querySelectorAll("#sql-result th")].map((t) => t.textContent)`,
        ),
        ["id", "v"],
      );
      assert.deepEqual(await cells(page, "sql-result"), [["2", "ok"]]);
      assert.equal(await page.eval(`document.getElementById("sql-error").hidden`), true);

      await Deno.mkdir(new URL(".", SHOT), { recursive: true });
      await page.screenshot(SHOT.pathname);
      console.log(`ui_test screenshot: ${SHOT.pathname}`);
      // HTTP errors are expected (401 before the token, 503 readyz, 404 no snapshot yet, 400
      // the bad SQL); no CSP violation, no script error.
      const problems = page.problems().filter((p) => !/^Failed to load resource/.test(p));
      assert.deepEqual(problems, []);
    } finally {
      await cluster.stop();
    }
  },
});

Deno.test({
  name: "dashboard: Chromium closed",
  ignore: launchError !== null,
  ...opts,
  fn: async () => {
    await browser?.close();
  },
});
