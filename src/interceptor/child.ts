/**
 * The sandbox process: ha starts it (`sandbox.ts`) as `deno run child.ts` from source, or as its
 * own compiled binary with {@link SANDBOX_FLAG}. Its main thread only relays frames between the
 * pipes and one permission-less worker running the user module, so it stays responsive when the
 * hook spins: it exits when ha's end of stdin closes (ha died), drops log lines over the budget,
 * and exits when the worker stops answering pings (a hook spinning outside any call). ha kills
 * the whole process on a call timeout, which ends every thread and allocation of the hook.
 *
 * @module
 */
import { bootstrapSource } from "./bootstrap.ts";
import type { SandboxInit, WorkerMessage } from "./protocol.ts";
import {
  decodeWire,
  encodeWire,
  frame,
  LogBudget,
  rawChunks,
  readFrames,
  writeAll,
} from "./wire.ts";

/** First argument that makes the compiled `ha` binary run as a sandbox process. */
export const SANDBOX_FLAG = "--ha-interceptor-sandbox";

/** Exit code when the worker stopped answering pings. */
export const EXIT_UNRESPONSIVE = 70;

/** Runs the sandbox process until stdin closes; resolves to the exit code. */
export async function runSandboxProcess(): Promise<number> {
  revokeAll();
  // Raw reads and writes: a stream adds tens of µs to every message.
  let writing = Promise.resolve();
  const send = (text: string) => {
    const bytes = frame(text);
    writing = writing.then(() => writeAll(Deno.stdout, bytes)).catch(() => Deno.exit(0));
  };
  const frames = readFrames(rawChunks(Deno.stdin));
  const first = await frames.next();
  if (first.done) return 0;
  const init = decodeWire(first.value) as SandboxInit;
  const url = URL.createObjectURL(new Blob([init.code], { type: "text/javascript" }));
  const src = bootstrapSource({ url, stackUrl: init.stackUrl, node: init.node });
  const worker = new Worker(
    `data:text/javascript;base64,${new TextEncoder().encode(src).toBase64()}`,
    {
      type: "module",
      name: "ha-interceptor",
      deno: { permissions: "none" },
    } as WorkerOptions,
  );
  const budget = new LogBudget(init.logPerSecond, init.logBurst);
  let lastPong = performance.now();
  let pinging: ReturnType<typeof setInterval> | undefined;
  const report = setInterval(() => {
    const lines = budget.takeDropped();
    if (lines) send(encodeWire({ type: "dropped", lines } satisfies WorkerMessage));
  }, 1000);

  worker.onmessage = (e: MessageEvent<[string, string]>) => {
    const [type, text] = e.data;
    if (type === "pong") {
      lastPong = performance.now();
      return;
    }
    if (type === "log" && !budget.take()) return;
    send(text);
    if (type === "ready" && pinging === undefined) {
      pinging = setInterval(() => {
        if (performance.now() - lastPong > init.watchdogMs) {
          console.error(`interceptor worker did not answer for ${init.watchdogMs} ms`);
          Deno.exit(EXIT_UNRESPONSIVE);
        }
        worker.postMessage("ping");
      }, Math.max(50, Math.floor(init.watchdogMs / 4)));
    }
  };
  worker.onerror = (e) => {
    e.preventDefault();
    const error = { name: "Error", message: `uncaught error in the worker: ${e.message}` };
    send(encodeWire({ type: "fatal", error } satisfies WorkerMessage));
  };
  try {
    for await (const text of frames) worker.postMessage(text);
  } catch (e) {
    console.error(`sandbox input: ${(e as Error).message}`);
  }
  clearInterval(report);
  clearInterval(pinging);
  worker.terminate();
  return 0;
}

/**
 * The compiled binary starts with every permission: give them all up before touching user code
 * (the worker has none anyway; this also covers the relay). From source it starts with none.
 */
function revokeAll(): void {
  const names = ["read", "write", "net", "env", "sys", "run", "ffi", "import"] as const;
  for (const name of names) Deno.permissions.revokeSync({ name });
}

if (import.meta.main) Deno.exit(await runSandboxProcess());
