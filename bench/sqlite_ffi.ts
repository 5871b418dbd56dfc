/**
 * Issue 11 finding 7 (statements that can be stopped): what a Deno FFI binding to libsqlite3
 * costs per statement next to node:sqlite, what a statement in a killable process costs, and how
 * fast `sqlite3_interrupt` from another thread stops a runaway statement. The decision is in
 * docs/decisions/statement-interrupt.md. A minimal prototype, not the engine.
 *
 * Figures (µs per statement, the best of 7 rounds, cached prepared statement, same file database
 * in WAL mode):
 * - point SELECT by primary key, 2 columns read; INSERT of 2 values (inside a transaction, so
 *   the commit does not dominate);
 * - the same through FFI calls that run on Deno's blocking thread pool (`nonblocking`), which
 *   lets the calling thread stay free and interrupt the statement itself;
 * - a statement round trip to a child process over pipes (the "killable process" candidate);
 * - latency from `sqlite3_interrupt` (main thread) to SQLITE_INTERRUPT in a worker running a
 *   recursive CTE that never ends.
 *
 * Run: `bash scripts/build-sqlite.sh && deno run -A bench/sqlite_ffi.ts`
 * (`HA_SQLITE_LIB` to use another libsqlite3 with the session extension; `BENCH_N` statements
 * per figure, default 20000).
 */
import { DatabaseSync } from "node:sqlite";
import { table } from "./stats.ts";

const N = Number(Deno.env.get("BENCH_N") ?? 20_000);
const LIB = Deno.env.get("HA_SQLITE_LIB") ??
  new URL("../vendor/libsqlite3.so", import.meta.url).pathname;

const SQLITE_ROW = 100;
const SQLITE_DONE = 101;
const SQLITE_INTERRUPT = 9;
const OPEN_FLAGS = 0x2 | 0x4 | 0x10000; // READWRITE | CREATE | NOMUTEX (one thread per handle)

const SYMBOLS = {
  sqlite3_libversion: { parameters: [], result: "pointer" },
  sqlite3_open_v2: { parameters: ["buffer", "buffer", "i32", "pointer"], result: "i32" },
  sqlite3_close_v2: { parameters: ["pointer"], result: "i32" },
  sqlite3_exec: {
    parameters: ["pointer", "buffer", "pointer", "pointer", "pointer"],
    result: "i32",
  },
  sqlite3_prepare_v2: {
    parameters: ["pointer", "buffer", "i32", "buffer", "pointer"],
    result: "i32",
  },
  sqlite3_bind_int64: { parameters: ["pointer", "i32", "i64"], result: "i32" },
  sqlite3_bind_text: {
    parameters: ["pointer", "i32", "buffer", "i32", "isize"],
    result: "i32",
  },
  sqlite3_step: { parameters: ["pointer"], result: "i32" },
  sqlite3_step_nb: {
    name: "sqlite3_step",
    parameters: ["pointer"],
    result: "i32",
    nonblocking: true,
  },
  sqlite3_reset: { parameters: ["pointer"], result: "i32" },
  sqlite3_finalize: { parameters: ["pointer"], result: "i32" },
  sqlite3_column_int64: { parameters: ["pointer", "i32"], result: "i64" },
  sqlite3_column_text: { parameters: ["pointer", "i32"], result: "pointer" },
  sqlite3_column_bytes: { parameters: ["pointer", "i32"], result: "i32" },
  sqlite3_interrupt: { parameters: ["pointer"], result: "void" },
  sqlite3_errmsg: { parameters: ["pointer"], result: "pointer" },
} as const;

type Lib = Deno.DynamicLibrary<typeof SYMBOLS>["symbols"];

const cstr = (s: string) => new TextEncoder().encode(s + "\0");
const SQLITE_TRANSIENT = -1n;
const DECODER = new TextDecoder();

/** The few calls a binding needs, over FFI. */
class FfiDb {
  readonly db: Deno.PointerValue;
  constructor(readonly lib: Lib, path: string) {
    const out = new BigUint64Array(1);
    const rc = lib.sqlite3_open_v2(cstr(path), new Uint8Array(out.buffer), OPEN_FLAGS, null);
    this.db = Deno.UnsafePointer.create(out[0]);
    if (rc !== 0) throw new Error(`open: ${rc}`);
  }
  exec(sql: string): void {
    const rc = this.lib.sqlite3_exec(this.db, cstr(sql), null, null, null);
    if (rc !== 0) throw new Error(`exec ${sql}: ${this.error()}`);
  }
  prepare(sql: string): Deno.PointerValue {
    const out = new BigUint64Array(1);
    const rc = this.lib.sqlite3_prepare_v2(
      this.db,
      cstr(sql),
      -1,
      new Uint8Array(out.buffer),
      null,
    );
    if (rc !== 0) throw new Error(`prepare: ${this.error()}`);
    return Deno.UnsafePointer.create(out[0]);
  }
  error(): string {
    return Deno.UnsafePointerView.getCString(this.lib.sqlite3_errmsg(this.db)!);
  }
  /** A row as node:sqlite returns it: column values by name. */
  text(stmt: Deno.PointerValue, i: number): string {
    const p = this.lib.sqlite3_column_text(stmt, i);
    const n = this.lib.sqlite3_column_bytes(stmt, i);
    return p ? DECODER.decode(new Deno.UnsafePointerView(p).getArrayBuffer(n)) : "";
  }
  close(): void {
    this.lib.sqlite3_close_v2(this.db);
  }
}

/** Rounds per figure: the fastest one counts (the machine may be shared and busy). */
const ROUNDS = 7;

/** µs per call of `op`: the best of ROUNDS rounds of n/ROUNDS calls. */
function time(n: number, op: (i: number) => void): number {
  for (let i = 0; i < Math.min(1000, n); i++) op(i);
  let best = Infinity;
  const per = Math.ceil(n / ROUNDS);
  for (let r = 0; r < ROUNDS; r++) {
    const t0 = performance.now();
    for (let i = r * per; i < (r + 1) * per; i++) op(i);
    best = Math.min(best, (performance.now() - t0) * 1000 / per);
  }
  return best;
}

async function timeAsync(n: number, op: (i: number) => Promise<void>): Promise<number> {
  for (let i = 0; i < Math.min(1000, n); i++) await op(i);
  let best = Infinity;
  const per = Math.ceil(n / ROUNDS);
  for (let r = 0; r < ROUNDS; r++) {
    const t0 = performance.now();
    for (let i = r * per; i < (r + 1) * per; i++) await op(i);
    best = Math.min(best, (performance.now() - t0) * 1000 / per);
  }
  return best;
}

const ROWS = 10_000;

function fresh(dir: string, name: string): string {
  const path = `${dir}/${name}.db`;
  const db = new DatabaseSync(path);
  db.exec("PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;");
  db.exec("CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT, n INTEGER)");
  db.exec("BEGIN");
  const ins = db.prepare("INSERT INTO t VALUES (?, ?, ?)");
  for (let i = 0; i < ROWS; i++) ins.run(i, `row ${i}`, i);
  db.exec("COMMIT");
  db.close();
  return path;
}

/** node:sqlite and FFI side by side for a point SELECT and an INSERT. */
async function perStatement(lib: Lib, dir: string): Promise<(string | number)[][]> {
  const node = new DatabaseSync(fresh(dir, "node"));
  node.exec("PRAGMA synchronous=NORMAL");
  const ffi = new FfiDb(lib, fresh(dir, "ffi"));
  ffi.exec("PRAGMA synchronous=NORMAL");

  const nodeGet = node.prepare("SELECT id, v FROM t WHERE id = ?");
  const sel = ffi.prepare("SELECT id, v FROM t WHERE id = ?");
  const readRow = (i: number) => {
    const r = { id: Number(lib.sqlite3_column_int64(sel, 0)), v: ffi.text(sel, 1) };
    if (r.id !== i % ROWS) throw new Error("ffi: wrong row");
  };
  /** Autocommit (each statement its own read transaction) or inside one read transaction. */
  const selects = async (inTx: boolean) => {
    if (inTx) (node.exec("BEGIN"), ffi.exec("BEGIN"));
    const r = {
      node: time(N, (i) => {
        const r = nodeGet.get(i % ROWS) as { id: number; v: string };
        if (r.id !== i % ROWS) throw new Error("node: wrong row");
      }),
      ffi: time(N, (i) => {
        lib.sqlite3_bind_int64(sel, 1, BigInt(i % ROWS));
        if (lib.sqlite3_step(sel) !== SQLITE_ROW) throw new Error(ffi.error());
        readRow(i);
        lib.sqlite3_reset(sel);
      }),
      ffiNb: await timeAsync(N / 4, async (i) => {
        lib.sqlite3_bind_int64(sel, 1, BigInt(i % ROWS));
        if (await lib.sqlite3_step_nb(sel) !== SQLITE_ROW) throw new Error(ffi.error());
        readRow(i);
        lib.sqlite3_reset(sel);
      }),
    };
    if (inTx) (node.exec("COMMIT"), ffi.exec("COMMIT"));
    return r;
  };
  const select = await selects(false);
  const selectTx = await selects(true);

  const nodeIns = node.prepare("INSERT INTO t(v, n) VALUES (?, ?)");
  node.exec("BEGIN");
  const insert = { node: time(N, (i) => void nodeIns.run(`new ${i}`, i)), ffi: 0, ffiNb: 0 };
  node.exec("COMMIT");
  const ins = ffi.prepare("INSERT INTO t(v, n) VALUES (?, ?)");
  const bind = (i: number) => {
    lib.sqlite3_bind_text(ins, 1, cstr(`new ${i}`), -1, SQLITE_TRANSIENT);
    lib.sqlite3_bind_int64(ins, 2, BigInt(i));
  };
  ffi.exec("BEGIN");
  insert.ffi = time(N, (i) => {
    bind(i);
    if (lib.sqlite3_step(ins) !== SQLITE_DONE) throw new Error(ffi.error());
    lib.sqlite3_reset(ins);
  });
  insert.ffiNb = await timeAsync(N / 4, async (i) => {
    bind(i);
    if (await lib.sqlite3_step_nb(ins) !== SQLITE_DONE) throw new Error(ffi.error());
    lib.sqlite3_reset(ins);
  });
  ffi.exec("COMMIT");
  lib.sqlite3_finalize(sel);
  lib.sqlite3_finalize(ins);
  ffi.close();
  node.close();
  const row = (name: string, r: { node: number; ffi: number; ffiNb: number }) => [
    name,
    r.node,
    r.ffi,
    `${(r.ffi / r.node).toFixed(2)}x`,
    r.ffiNb,
    `${(r.ffiNb / r.node).toFixed(2)}x`,
  ];
  return [
    row("point SELECT (2 columns)", select),
    row("point SELECT, in a tx", selectTx),
    row("INSERT (2 values), in a tx", insert),
  ];
}

/** One statement's round trip to a child process that runs it (pipes, JSON lines). */
async function processRoundTrip(dir: string): Promise<number> {
  const path = fresh(dir, "child");
  const code = `
import { DatabaseSync } from "node:sqlite";
const db = new DatabaseSync(${JSON.stringify(path)});
const get = db.prepare("SELECT id, v FROM t WHERE id = ?");
const out = Deno.stdout.writable.getWriter();
const enc = new TextEncoder();
let buf = "";
for await (const chunk of Deno.stdin.readable.pipeThrough(new TextDecoderStream())) {
  buf += chunk;
  let nl;
  while ((nl = buf.indexOf("\\n")) >= 0) {
    const id = JSON.parse(buf.slice(0, nl));
    buf = buf.slice(nl + 1);
    await out.write(enc.encode(JSON.stringify(get.get(id)) + "\\n"));
  }
}`;
  const file = `${dir}/child.ts`;
  Deno.writeTextFileSync(file, code);
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "--no-config", file],
    stdin: "piped",
    stdout: "piped",
  }).spawn();
  const w = child.stdin.getWriter();
  const lines = child.stdout.pipeThrough(new TextDecoderStream())[Symbol.asyncIterator]();
  let pending = "";
  const next = async (): Promise<string> => {
    while (!pending.includes("\n")) pending += (await lines.next()).value;
    const nl = pending.indexOf("\n");
    const line = pending.slice(0, nl);
    pending = pending.slice(nl + 1);
    return line;
  };
  const enc = new TextEncoder();
  const us = await timeAsync(N / 4, async (i) => {
    await w.write(enc.encode(`${i % ROWS}\n`));
    if (JSON.parse(await next()).id !== i % ROWS) throw new Error("child: wrong row");
  });
  await w.close();
  await child.status;
  return us;
}

/** ms from sqlite3_interrupt on this thread to SQLITE_INTERRUPT in a worker's runaway CTE. */
async function interruptLatency(): Promise<{ ms: number; rc: number }> {
  const src = `
const lib = Deno.dlopen(${JSON.stringify(LIB)}, {
  sqlite3_open_v2: { parameters: ["buffer", "buffer", "i32", "pointer"], result: "i32" },
  sqlite3_exec: { parameters: ["pointer", "buffer", "pointer", "pointer", "pointer"], result: "i32" },
}).symbols;
const out = new BigUint64Array(1);
lib.sqlite3_open_v2(new TextEncoder().encode(":memory:\\0"), new Uint8Array(out.buffer), 6, null);
self.postMessage({ db: out[0] });
const sql = "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT count(*) FROM c;\\0";
self.postMessage({ rc: lib.sqlite3_exec(Deno.UnsafePointer.create(out[0]), new TextEncoder().encode(sql), null, null, null) });`;
  const worker = new Worker(`data:text/javascript,${encodeURIComponent(src)}`, { type: "module" });
  const lib = Deno.dlopen(LIB, { sqlite3_interrupt: SYMBOLS.sqlite3_interrupt }).symbols;
  return await new Promise((resolve) => {
    let t0 = 0;
    worker.onmessage = (e: MessageEvent<{ db?: bigint; rc?: number }>) => {
      if (e.data.db !== undefined) {
        const db = Deno.UnsafePointer.create(e.data.db);
        setTimeout(() => {
          t0 = performance.now();
          lib.sqlite3_interrupt(db);
        }, 300);
      } else {
        worker.terminate();
        resolve({ ms: performance.now() - t0, rc: e.data.rc! });
      }
    };
  });
}

if (import.meta.main) {
  let dl: Deno.DynamicLibrary<typeof SYMBOLS>;
  try {
    dl = Deno.dlopen(LIB, SYMBOLS);
  } catch (e) {
    console.error(`${LIB}: ${(e as Error).message}\nbuild it with: bash scripts/build-sqlite.sh`);
    Deno.exit(2);
  }
  const lib = dl.symbols;
  const version = Deno.UnsafePointerView.getCString(lib.sqlite3_libversion()!);
  const nodeVersion = (new DatabaseSync(":memory:").prepare("SELECT sqlite_version() v").get() as {
    v: string;
  }).v;
  console.log(`FFI libsqlite3 ${version}, node:sqlite ${nodeVersion}, ${N} statements per figure`);
  const dir = Deno.makeTempDirSync({ prefix: "ha-sqlite-ffi-" });
  try {
    table(
      ["statement", "node:sqlite µs", "FFI µs", "FFI/node", "FFI nonblocking µs", "nb/node"],
      await perStatement(lib, dir),
    );
    console.log(
      `point SELECT in a child process (pipe round trip): ${
        (await processRoundTrip(dir)).toFixed(1)
      } µs`,
    );
    const int = await interruptLatency();
    console.log(
      `sqlite3_interrupt → runaway CTE stopped in ${int.ms.toFixed(2)} ms ` +
        `(rc ${int.rc}${int.rc === SQLITE_INTERRUPT ? " SQLITE_INTERRUPT" : ""})`,
    );
  } finally {
    Deno.removeSync(dir, { recursive: true });
    dl.close();
  }
}
