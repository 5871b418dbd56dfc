// The dashboard's script: reads the node's own HTTP API (same origin, `Authorization: Bearer`
// from the token kept in sessionStorage) and renders it with textContent only (no HTML from data).
"use strict";

const TOKEN_KEY = "ha-token";
const $ = (id) => document.getElementById(id);

/** JSON.parse keeping integers beyond 2^53 exact (as BigInt) when the browser gives the source. */
function parseExact(text) {
  return JSON.parse(
    text,
    (_k, v, ctx) =>
      typeof v === "number" && !Number.isSafeInteger(v) && ctx && /^-?\d+$/.test(ctx.source)
        ? BigInt(ctx.source)
        : v,
  );
}

class HttpError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

/** Calls the API; resolves to { status, body, headers }; throws HttpError on non-2xx. */
async function api(method, path, body) {
  const headers = {};
  const token = sessionStorage.getItem(TOKEN_KEY);
  if (token) headers.authorization = "Bearer " + token;
  if (body !== undefined) headers["content-type"] = "application/json";
  const res = await fetch(path, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = method === "HEAD" ? "" : await res.text();
  let parsed = null;
  if (text && (res.headers.get("content-type") || "").includes("json")) parsed = parseExact(text);
  if (!res.ok) {
    if (res.status === 401) showMessage("Unauthorized: enter the node's --token above.");
    throw new HttpError(
      res.status,
      (parsed && parsed.error) || res.statusText || "HTTP " + res.status,
    );
  }
  return { status: res.status, body: parsed, text, headers: res.headers };
}

function showMessage(text) {
  const m = $("message");
  m.textContent = text;
  m.hidden = !text;
}

function cell(value) {
  const td = document.createElement("td");
  td.textContent = value === null || value === undefined ? "—" : String(value);
  return td;
}

/** Replaces a table body's rows; each row is an array of values or DOM nodes. */
function fill(tableId, rows) {
  const tbody = $(tableId).querySelector("tbody");
  tbody.replaceChildren(...rows.map((r) => {
    const tr = document.createElement("tr");
    for (const v of r) {
      if (v instanceof Node) {
        const td = document.createElement("td");
        td.append(v);
        tr.append(td);
      } else tr.append(cell(v));
    }
    return tr;
  }));
}

function button(label, onClick) {
  const b = document.createElement("button");
  b.type = "button";
  b.textContent = label;
  b.addEventListener("click", onClick);
  return b;
}

/** `<db>_<node>` split with the subject `<stream>.<db>`. */
function nodeOf(consumer, subject, stream) {
  const db = subject.slice(stream.length + 1);
  return consumer.startsWith(db + "_") ? consumer.slice(db.length + 1) : consumer;
}

/** Average lag per `database|origin` from the `ha_replication_lag_seconds` sum and count. */
function lagAverages(metricsText) {
  const sums = new Map();
  const counts = new Map();
  const re =
    /^ha_replication_lag_seconds_(sum|count)\{database="([^"]*)",origin="([^"]*)"\} (\S+)$/;
  for (const line of metricsText.split("\n")) {
    const m = re.exec(line);
    if (m) (m[1] === "sum" ? sums : counts).set(m[2] + "|" + m[3], Number(m[4]));
  }
  const out = new Map();
  for (const [k, n] of counts) if (n > 0) out.set(k, (sums.get(k) / n).toFixed(3));
  return out;
}

function badge(id, text, good) {
  const b = $(id);
  b.textContent = text;
  b.className = "badge " + (good ? "ok" : "bad");
}

let databases = [];

async function refresh() {
  try {
    const [dbs, ready] = await Promise.all([
      api("GET", "/databases"),
      fetch("/readyz").then((r) => r.json()),
    ]);
    showMessage("");
    badge("ready", ready.status, ready.status === "ready");
    databases = dbs.body.databases.map(String);
    syncDbSelect();
    const repl = await api("GET", "/replications").catch((e) => {
      if (e.status === 404) return null; // a standalone node
      throw e;
    });
    const metrics = await api("GET", "/metrics").then((r) => r.text).catch(() => "");
    renderReplication(repl && repl.body, lagAverages(metrics));
    await renderSnapshots(repl !== null);
  } catch (e) {
    if (!(e instanceof HttpError && e.status === 401)) showMessage("Refresh failed: " + e.message);
  }
}

function renderReplication(r, lags) {
  if (!r) {
    badge("nats", "standalone", true);
    fill("nodes", []);
    fill("local", databases.map((d) => [d, null, null, null, null, null, null, null]));
    fill("failing", []);
    return;
  }
  badge("nats", "NATS " + r.nats, r.nats === "connected");
  const local = r.status;
  let self = "";
  for (const s of local) {
    if (s.subscriber) {
      const stream = s.subscriber.subject.slice(0, s.subscriber.subject.indexOf("."));
      self = nodeOf(s.subscriber.consumer, s.subscriber.subject, stream);
    }
  }
  $("node").textContent = self;
  const rows = [];
  if (r.replications === null) {
    for (const s of local) {
      rows.push([
        self,
        s.database,
        s.subscriber && s.subscriber.consumer,
        null,
        null,
        null,
        "NATS " + r.nats,
      ]);
    }
  } else {
    const dbBySubject = new Map(local.map((s) => [s.publisher.subject, s.database]));
    for (const c of r.replications) {
      const subject = c.config.filter_subject || "";
      const node = nodeOf(c.name, subject, c.stream_name);
      const db = dbBySubject.get(subject) || subject.slice(c.stream_name.length + 1);
      rows.push([
        node,
        db,
        c.name,
        c.delivered.stream_seq,
        c.num_pending,
        null,
        c.delivered.last_active || null,
      ]);
    }
    rows.sort((a, b) => (a[0] + a[1]).localeCompare(b[0] + b[1]));
  }
  // Lag is measured where changesets are applied: this node's view of each origin.
  for (const row of rows) {
    const mine = [...lags.entries()].filter(([k]) =>
      k.startsWith(row[1] + "|") && !k.endsWith("|" + self)
    );
    if (row[0] === self && mine.length) {
      row[5] = mine.map(([k, v]) => k.split("|")[1] + ": " + v).join(", ");
    }
  }
  fill("nodes", rows);
  fill(
    "local",
    local.map((s) => {
      const sub = s.subscriber;
      const conflicts = Object.entries(r.conflicts[s.database] || {}).map(([t, n]) => t + ": " + n)
        .join(", ");
      return [
        s.database,
        sub && sub.appliedSeq,
        sub && sub.receivedSeq,
        sub && sub.applied,
        s.publisher.pending,
        s.publisher.published,
        s.publisher.lastError,
        conflicts || "0",
      ];
    }),
  );
  const failing = local.filter((s) => s.subscriber && s.subscriber.failing);
  $("no-failing").hidden = failing.length > 0;
  fill(
    "failing",
    failing.map((s) => {
      const f = s.subscriber.failing;
      return [
        s.subscriber.consumer,
        f.seq,
        f.error,
        f.attempts,
        f.since,
        button("Skip", async () => {
          if (
            !confirm(
              "Skip changeset " + f.seq + " of " + s.database + "? Its changes are lost here.",
            )
          ) return;
          try {
            await api(
              "POST",
              "/replications/" + encodeURIComponent(s.subscriber.consumer) + "/skip?seq=" + f.seq,
            );
            await refresh();
          } catch (e) {
            showMessage("Skip failed: " + e.message);
          }
        }),
      ];
    }),
  );
}

async function renderSnapshots(replicated) {
  if (!replicated) {
    fill("snapshots", databases.map((d) => [d, "snapshots need NATS", null, null, null, ""]));
    return;
  }
  const rows = await Promise.all(databases.map(async (d) => {
    const path = "/databases/" + encodeURIComponent(d) + "/snapshot";
    const take = button("Take now", async () => {
      try {
        await api("POST", path);
        await refresh();
      } catch (e) {
        showMessage("Snapshot failed: " + e.message);
      }
    });
    try {
      const h = (await api("HEAD", path)).headers;
      return [
        d,
        h.get("x-sequence"),
        h.get("content-length"),
        h.get("x-snapshot-node"),
        h.get("x-snapshot-created"),
        take,
      ];
    } catch (e) {
      return [d, e.status === 404 ? "none yet" : e.message, null, null, null, take];
    }
  }));
  fill("snapshots", rows);
}

function syncDbSelect() {
  const sel = $("sql-db");
  const have = [...sel.options].map((o) => o.value);
  if (have.join("\n") === databases.join("\n")) return;
  sel.replaceChildren(...databases.map((d) => {
    const o = document.createElement("option");
    o.value = o.textContent = d;
    return o;
  }));
}

async function runSql(ev) {
  ev.preventDefault();
  const sql = $("sql").value.trim();
  if (!sql) return;
  const db = $("sql-db").value || databases[0];
  const table = $("sql-result");
  const err = $("sql-error");
  err.hidden = true;
  try {
    const r = (await api("POST", "/databases/" + encodeURIComponent(db) + "/query", { sql })).body;
    const head = document.createElement("tr");
    for (const c of r.columns) {
      const th = document.createElement("th");
      th.textContent = c;
      head.append(th);
    }
    table.querySelector("thead").replaceChildren(head);
    fill("sql-result", r.rows);
  } catch (e) {
    table.querySelector("thead").replaceChildren();
    fill("sql-result", []);
    err.textContent = e.message;
    err.hidden = false;
  }
}

let timer = null;

function schedule() {
  clearInterval(timer);
  timer = $("auto").checked ? setInterval(refresh, 2000) : null;
}

document.addEventListener("DOMContentLoaded", () => {
  $("token").value = sessionStorage.getItem(TOKEN_KEY) || "";
  $("token-form").addEventListener("submit", (ev) => {
    ev.preventDefault();
    const t = $("token").value.trim();
    if (t) sessionStorage.setItem(TOKEN_KEY, t);
    else sessionStorage.removeItem(TOKEN_KEY);
    refresh();
  });
  $("refresh").addEventListener("click", refresh);
  $("auto").addEventListener("change", schedule);
  $("sql-form").addEventListener("submit", runSql);
  schedule();
  refresh();
});
