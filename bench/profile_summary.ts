/**
 * Summarises V8 `.cpuprofile` files (from `deno run --cpu-prof --cpu-prof-dir=DIR`, one per
 * isolate: main and each worker): busy vs idle time, then the top functions by self time and by
 * inclusive time, and self time per source file.
 *
 * Usage: `deno run -A bench/profile_summary.ts DIR_OR_FILES… [--top N]`.
 * @module
 */

interface Node {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}

interface Profile {
  nodes: Node[];
  samples: number[];
  timeDeltas: number[];
  startTime: number;
  endTime: number;
}

const IDLE = new Set(["(idle)", "(program)", "(garbage collector)"]);

function label(n: Node): string {
  const f = n.callFrame;
  const file = f.url.replace(/^.*\/(src|bench|node_modules|ext)\//, "$1/").replace(
    /^file:\/\//,
    "",
  );
  return `${f.functionName || "(anonymous)"} ${file}:${f.lineNumber + 1}`;
}

function summarise(path: string, top: number): void {
  const p = JSON.parse(Deno.readTextFileSync(path)) as Profile;
  const byId = new Map(p.nodes.map((n) => [n.id, n]));
  const parent = new Map<number, number>();
  for (const n of p.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const self = new Map<number, number>();
  for (let i = 0; i < p.samples.length; i++) {
    self.set(p.samples[i], (self.get(p.samples[i]) ?? 0) + (p.timeDeltas[i] ?? 0));
  }
  const total = (p.endTime - p.startTime) / 1000;
  const selfBy = new Map<string, number>();
  const fileBy = new Map<string, number>();
  const inclBy = new Map<string, number>();
  let busy = 0;
  const special = new Map<string, number>();
  for (const [id, us] of self) {
    const n = byId.get(id)!;
    const name = n.callFrame.functionName;
    if (IDLE.has(name)) {
      special.set(name, (special.get(name) ?? 0) + us / 1000);
      if (name === "(idle)") continue;
    }
    busy += us / 1000;
    const l = label(n);
    selfBy.set(l, (selfBy.get(l) ?? 0) + us / 1000);
    const file = n.callFrame.url.replace(/^.*\/(src|bench|node_modules|ext)\//, "$1/") ||
      "(native)";
    fileBy.set(file, (fileBy.get(file) ?? 0) + us / 1000);
    const seen = new Set<string>();
    for (let cur: number | undefined = id; cur !== undefined; cur = parent.get(cur)) {
      const lc = label(byId.get(cur)!);
      if (seen.has(lc)) continue;
      seen.add(lc);
      inclBy.set(lc, (inclBy.get(lc) ?? 0) + us / 1000);
    }
  }
  const pct = (ms: number) => `${(ms / busy * 100).toFixed(1)}%`.padStart(6);
  console.log(`\n== ${path}`);
  console.log(
    `wall ${total.toFixed(0)} ms, busy ${busy.toFixed(0)} ms (${
      [...special].map(([k, v]) => `${k} ${v.toFixed(0)}`).join(", ")
    })`,
  );
  const show = (title: string, m: Map<string, number>) => {
    console.log(`-- ${title}`);
    for (const [k, v] of [...m].sort((a, b) => b[1] - a[1]).slice(0, top)) {
      console.log(`${pct(v)} ${v.toFixed(0).padStart(7)} ms  ${k}`);
    }
  };
  show("self time by function", selfBy);
  show("self time by file", fileBy);
  show("inclusive time by function", inclBy);
}

const args = [...Deno.args];
const t = args.indexOf("--top");
const top = t >= 0 ? Number(args.splice(t, 2)[1]) : 25;
for (const a of args) {
  if (Deno.statSync(a).isDirectory) {
    for (const e of [...Deno.readDirSync(a)].sort((x, y) => x.name.localeCompare(y.name))) {
      if (e.name.endsWith(".cpuprofile")) summarise(`${a}/${e.name}`, top);
    }
  } else summarise(a, top);
}
