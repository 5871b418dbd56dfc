/**
 * The sandbox process: ha starts it (`sandbox.ts`) as `deno run child.ts` from source, or as its
 * own compiled binary with {@link SANDBOX_FLAG}. It gives up every permission, then runs the
 * bootstrap and the user module on its main thread, with frames on stdin/stdout. It exits when
 * ha's end of stdin closes. ha kills the whole process on a call timeout or when it stops
 * answering pings; if ha itself dies while a hook spins, the CPU lease ha keeps renewing
 * (RLIMIT_CPU, see `limits.ts`) runs out and the kernel ends it.
 *
 * @module
 */
import { sandboxMain, type SandboxScope } from "./bootstrap.ts";
import type { SandboxInit } from "./protocol.ts";
import { decodeWire, encodeWire, frame, LogBudget, rawChunks, readFrames } from "./wire.ts";

export { SANDBOX_FLAG } from "./flag.ts";

const PONG = encodeWire({ type: "pong" });

/** Runs the sandbox process until stdin closes; resolves to the exit code. */
export async function runSandboxProcess(): Promise<number> {
  revokeAll();
  // Synchronous writes: a frame is out before the next line of user code runs (a hook that
  // answers and then blocks the thread still delivers its answer); ha always reads.
  const stdout = Deno.stdout;
  const send = (text: string) => {
    const bytes = frame(text);
    try {
      for (let at = 0; at < bytes.length;) at += stdout.writeSync(bytes.subarray(at));
    } catch {
      Deno.exit(0); // ha is gone
    }
  };
  const frames = readFrames(rawChunks(Deno.stdin));
  const first = await frames.next();
  if (first.done) return 0;
  const init = decodeWire(first.value) as SandboxInit;
  // The log budget lives here, out of the user module's reach (ha keeps one too).
  const budget = new LogBudget(init.logPerSecond, init.logBurst);
  setInterval(() => {
    const lines = budget.takeDropped();
    if (lines) send(encodeWire({ type: "dropped", lines }));
  }, 1000);
  const scope: SandboxScope = {
    postMessage([type, text]) {
      if (type === "log" && !budget.take()) return;
      send(type === "pong" ? PONG : text);
    },
    onmessage: null,
  };
  const url = URL.createObjectURL(new Blob([init.code], { type: "text/javascript" }));
  sandboxMain(scope, { url, stackUrl: init.stackUrl, node: init.node });
  try {
    for await (const text of frames) scope.onmessage?.({ data: text });
  } catch (e) {
    console.error(`sandbox input: ${(e as Error).message}`);
  }
  return 0;
}

/**
 * The compiled binary starts with every permission: give them all up before touching user code.
 * From source it starts with none.
 */
function revokeAll(): void {
  const names = ["read", "write", "net", "env", "sys", "run", "ffi", "import"] as const;
  for (const name of names) Deno.permissions.revokeSync({ name });
}

if (import.meta.main) Deno.exit(await runSandboxProcess());
