/**
 * A cap on what a sandbox process may allocate outside the V8 heap (ArrayBuffers, WebAssembly
 * memories): RLIMIT_DATA set from ha with prlimit(2) once the process is up, at its data segment
 * then (V8's reservations for its isolates) plus the allowance. Allocations beyond it fail inside
 * the sandbox; V8 itself aborts the process when its heap cannot grow.
 *
 * @module
 */

const RLIMIT_DATA = 2;

let libc:
  | Deno.DynamicLibrary<{
    prlimit: { parameters: ["i32", "i32", "buffer", "buffer"]; result: "i32" };
  }>
  | null = null;

/**
 * Limits the data segment of process `pid` to its current size plus `extraBytes`. Returns null,
 * or why it could not (not Linux, no FFI permission, no libc).
 */
export function limitDataSegment(pid: number, extraBytes: number): string | null {
  if (Deno.build.os !== "linux") return `not supported on ${Deno.build.os}`;
  try {
    const status = Deno.readTextFileSync(`/proc/${pid}/status`);
    const kb = Number(/^VmData:\s+(\d+) kB/m.exec(status)?.[1]);
    if (!Number.isFinite(kb)) return "no VmData in /proc";
    libc ??= Deno.dlopen("libc.so.6", {
      prlimit: { parameters: ["i32", "i32", "buffer", "buffer"], result: "i32" },
    });
    const limit = BigInt(kb) * 1024n + BigInt(extraBytes);
    const rlimit = new BigUint64Array([limit, limit]);
    const rc = libc.symbols.prlimit(pid, RLIMIT_DATA, new Uint8Array(rlimit.buffer), null);
    return rc === 0 ? null : "prlimit failed";
  } catch (e) {
    return (e as Error).message;
  }
}
