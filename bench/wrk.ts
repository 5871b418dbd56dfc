/**
 * Runs `wrk` with one of the `bench/wrk/*.lua` scripts (each prints
 * `RESULT requests errors duration_us p50_us p99_us`), over one URL or spread over several.
 *
 * @module
 */
const HERE = new URL(".", import.meta.url).pathname;

/** What wrk measured: answers and successful answers per second, latency of the first URL. */
export interface WrkResult {
  /** Answers per second, failed ones included. */
  ops: number;
  /** Successful answers per second. */
  ok: number;
  errors: number;
  p50: number;
  p99: number;
}

/** Options of {@link wrk}. */
export interface WrkOptions {
  /** `bench/wrk/<script>`. */
  script: string;
  /** Connections in total, split evenly over the URLs (one wrk process per URL, run at once). */
  conns: number;
  seconds: number;
  /** The script's arguments for the i-th URL. */
  args: (i: number) => string[];
}

/** Drives `urls` as `o` says; latency percentiles are the first URL's (exact when one). */
export async function wrk(urls: string[], o: WrkOptions): Promise<WrkResult> {
  const runs = urls.slice(0, o.conns).map((url, i) => {
    const c = Math.floor(o.conns / urls.length) + (i < o.conns % urls.length ? 1 : 0);
    return new Deno.Command("wrk", {
      args: [
        "-t1",
        `-c${c}`,
        `-d${o.seconds}s`,
        "--timeout",
        "10s",
        "-s",
        `${HERE}wrk/${o.script}`,
        url,
        "--",
        ...o.args(i),
      ],
      stdout: "piped",
      stderr: "piped",
    }).output();
  });
  const parsed = (await Promise.all(runs)).map((out) => {
    const text = new TextDecoder().decode(out.stdout);
    const m = /RESULT (\d+) (\d+) (\d+) (\d+) (\d+)/.exec(text);
    if (!out.success || !m) {
      throw new Error(`wrk failed: ${text}${new TextDecoder().decode(out.stderr)}`);
    }
    const [req, err, dur, p50, p99] = m.slice(1).map(Number);
    const secs = dur / 1e6;
    return {
      ops: req / secs,
      ok: (req - err) / secs,
      errors: err,
      p50: p50 / 1000,
      p99: p99 / 1000,
    };
  });
  return {
    ops: parsed.reduce((a, r) => a + r.ops, 0),
    ok: parsed.reduce((a, r) => a + r.ok, 0),
    errors: parsed.reduce((a, r) => a + r.errors, 0),
    p50: parsed[0].p50,
    p99: parsed[0].p99,
  };
}
