/**
 * One full garbage collection of the main isolate once the node has started (issue 13, idle RSS).
 * Start-up leaves garbage behind (module sources being compiled, the NATS client's and Node
 * compatibility's set-up) and a grown heap; V8's memory reducer would give the pages back only
 * ~30 s after start. One major GC then: heap 16.5 → 11.5 MB, idle RssAnon 37–38 → 33 MB.
 *
 * Deno has no GC call without `--expose-gc` on the command line, which every launcher (the tasks,
 * the compiled binary, the container, the tests) would have to pass. The flag set at run time
 * applies to contexts made after it: `node:vm` makes one, whose `gc` collects the whole isolate;
 * the flag is unset at once and the context is garbage itself afterwards.
 * @module
 */

/** The `gc` of V8's GC extension (`--expose-gc`). */
type Gc = (options: { type: "major"; execution: "sync" }) => void;

/** Runs the collection; returns the main isolate's heap size before and after (bytes), its time. */
export async function releaseStartGarbage(): Promise<
  { before: number; after: number; ms: number }
> {
  const [{ setFlagsFromString }, { runInNewContext }] = await Promise.all([
    import("node:v8"),
    import("node:vm"),
  ]);
  const before = Deno.memoryUsage().heapTotal;
  setFlagsFromString("--expose-gc");
  let gc: Gc;
  try {
    gc = runInNewContext("gc") as Gc;
  } finally {
    setFlagsFromString("--no-expose-gc");
  }
  const t0 = performance.now();
  gc({ type: "major", execution: "sync" });
  return { before, after: Deno.memoryUsage().heapTotal, ms: performance.now() - t0 };
}
