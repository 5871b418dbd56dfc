/** Shared figures for benchmarks: percentiles and aligned tables. */

/** The q-th percentile (0..1) of sorted-in-place latencies. */
export function percentile(sorted: number[], q: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))];
}

/** Runs `op` from `concurrency` loops for `ms`; returns ops/s and latency percentiles (ms). */
export async function load(
  concurrency: number,
  ms: number,
  op: (i: number) => Promise<void>,
): Promise<{ ops: number; p50: number; p99: number }> {
  const lat: number[] = [];
  const end = performance.now() + ms;
  let n = 0;
  const worker = async () => {
    while (performance.now() < end) {
      const t = performance.now();
      await op(n++);
      lat.push(performance.now() - t);
    }
  };
  const t0 = performance.now();
  await Promise.all(Array.from({ length: concurrency }, worker));
  const secs = (performance.now() - t0) / 1000;
  lat.sort((a, b) => a - b);
  return { ops: lat.length / secs, p50: percentile(lat, 0.5), p99: percentile(lat, 0.99) };
}

/** Prints rows as an aligned table. */
export function table(header: string[], rows: (string | number)[][]): void {
  const cells = [header, ...rows.map((r) => r.map((c) => typeof c === "number" ? fmt(c) : c))];
  const widths = header.map((_, i) => Math.max(...cells.map((r) => String(r[i]).length)));
  for (const r of cells) console.log(r.map((c, i) => String(c).padStart(widths[i])).join("  "));
}

function fmt(n: number): string {
  if (Number.isInteger(n)) return String(n);
  return n >= 100 ? n.toFixed(0) : n >= 1 ? n.toFixed(2) : n.toFixed(3);
}

/** The q-quantile (ms) of cumulative bucket counts, interpolated linearly inside its bucket. */
export function bucketQuantile(cum: [number, number][], q: number): number {
  const total = cum[cum.length - 1][1];
  const want = q * total;
  let lo = 0, below = 0;
  for (const [le, c] of cum) {
    if (c >= want && c > below) {
      if (le === Infinity) return lo * 1000;
      return (lo + (le - lo) * (want - below) / (c - below)) * 1000;
    }
    lo = le;
    below = c;
  }
  return NaN;
}
