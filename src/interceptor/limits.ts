/**
 * Kernel limits on a sandbox process, set from ha with prlimit(2) (Linux; elsewhere only the V8
 * heap limit and the call deadline hold):
 * - RLIMIT_DATA once the process is up: its data segment then (V8's reservations) plus an
 *   allowance, so ArrayBuffers and WebAssembly memories cannot grow without bound;
 * - RLIMIT_CPU as a lease ha renews while it lives: if ha dies while a hook spins, the kernel
 *   ends the process after the lease.
 *
 * @module
 */

const RLIMIT_CPU = 0;
const RLIMIT_DATA = 2;
/** Clock ticks per second of /proc/<pid>/stat (USER_HZ, 100 on every Linux ABI). */
const USER_HZ = 100;

let libc:
  | Deno.DynamicLibrary<{
    prlimit: { parameters: ["i32", "i32", "buffer", "buffer"]; result: "i32" };
  }>
  | null = null;

function prlimit(pid: number, resource: number, soft: bigint, hard: bigint): string | null {
  if (Deno.build.os !== "linux") return `not supported on ${Deno.build.os}`;
  try {
    libc ??= Deno.dlopen("libc.so.6", {
      prlimit: { parameters: ["i32", "i32", "buffer", "buffer"], result: "i32" },
    });
    const rlimit = new BigUint64Array([soft, hard]);
    const rc = libc.symbols.prlimit(pid, resource, new Uint8Array(rlimit.buffer), null);
    return rc === 0 ? null : "prlimit failed";
  } catch (e) {
    return (e as Error).message;
  }
}

/**
 * Limits the data segment of process `pid` to its current size plus `extraBytes`. Returns null,
 * or why it could not (not Linux, no FFI permission, no libc).
 */
export function limitDataSegment(pid: number, extraBytes: number): string | null {
  let kb: number;
  try {
    kb = Number(/^VmData:\s+(\d+) kB/m.exec(Deno.readTextFileSync(`/proc/${pid}/status`))?.[1]);
  } catch (e) {
    return (e as Error).message;
  }
  if (!Number.isFinite(kb)) return "no VmData in /proc";
  const limit = BigInt(kb) * 1024n + BigInt(extraBytes);
  return prlimit(pid, RLIMIT_DATA, limit, limit);
}

/**
 * Lets process `pid` use `seconds` more CPU time than it has used so far; past that the kernel
 * sends SIGXCPU, and SIGKILL 5 s later. Returns null, or why it could not.
 */
export function leaseCpu(pid: number, seconds: number): string | null {
  let used: number;
  try {
    const stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
    const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    used = (Number(f[11]) + Number(f[12])) / USER_HZ;
  } catch (e) {
    return (e as Error).message;
  }
  const soft = BigInt(Math.ceil(used + seconds));
  return prlimit(pid, RLIMIT_CPU, soft, soft + 5n);
}
