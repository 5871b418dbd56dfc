/**
 * Spawning nats-server so that it never outlives ha, not even when ha is killed with SIGKILL.
 *
 * Deno cannot set `PR_SET_PDEATHSIG`, so nats-server runs under a tiny `sh` wrapper
 * ({@link WATCHDOG_SCRIPT}):
 * - the wrapper starts nats-server in the background and prints `ha-nats-pid <pid>` on stdout, so
 *   ha signals nats-server itself, never the shell;
 * - a watchdog subshell blocks reading the wrapper's stdin, a pipe whose write end only ha holds.
 *   When ha closes it, or dies and the kernel closes it, `read` sees end-of-file and the watchdog
 *   sends SIGTERM to nats-server, then SIGKILL after 5 s;
 * - when nats-server exits, the wrapper kills and reaps the watchdog (no zombie is left for a PID 1
 *   ha to collect) and exits with nats-server's status (128 + signal number when it was killed by a
 *   signal), which ha observes as the child's status.
 *
 * The wrapper runs in its own session (`detached`), so a Ctrl-C in ha's terminal reaches ha only,
 * and ha decides how nats-server stops.
 *
 * @module
 */

import { LineTail, readLines } from "./log_lines.ts";

/** The POSIX `sh` wrapper; `$@` is the nats-server command line. */
export const WATCHDOG_SCRIPT = `exec 3<&0
"$@" </dev/null &
pid=$!
echo "ha-nats-pid $pid"
(
  while read -r _; do :; done
  kill -TERM "$pid" 2>/dev/null || exit 0
  n=0
  while kill -0 "$pid" 2>/dev/null; do
    n=$((n + 1))
    if [ "$n" -ge 50 ]; then kill -KILL "$pid" 2>/dev/null; exit 0; fi
    sleep 0.1
  done
) <&3 >/dev/null 2>&1 &
wd=$!
exec 3<&-
trap 'kill -TERM "$pid" 2>/dev/null' TERM INT HUP
while :; do
  wait "$pid"
  rc=$?
  kill -0 "$pid" 2>/dev/null || break
done
kill "$wd" 2>/dev/null
wait "$wd" 2>/dev/null
exit "$rc"
`;

const PID_LINE = /^ha-nats-pid (\d+)$/;

/**
 * One run of nats-server under the watchdog wrapper.
 *
 * @example
 * ```ts
 * const p = WatchedProcess.spawn("/usr/sbin/nats-server", ["-p", "4222"], () => {});
 * console.log(await p.pid);
 * await p.terminate(10_000);
 * ```
 */
export class WatchedProcess {
  /** nats-server's own pid, once the wrapper reported it (rejects if it never does). */
  readonly pid: Promise<number>;
  /** Resolves when the wrapper exited, i.e. nats-server is gone. */
  readonly status: Promise<Deno.CommandStatus>;
  /** The last lines of nats-server's output. */
  readonly tail: LineTail = new LineTail(50);
  #pid: number | null = null;
  #exit: Deno.CommandStatus | null = null;
  #stdin: WritableStreamDefaultWriter<Uint8Array>;
  #output: Promise<void>;
  #terminating: Promise<Deno.CommandStatus> | null = null;

  private constructor(
    readonly child: Deno.ChildProcess,
    onLine: (line: string) => void,
  ) {
    this.#stdin = child.stdin.getWriter();
    let gotPid!: (pid: number) => void;
    let noPid!: (e: Error) => void;
    this.pid = new Promise<number>((res, rej) => {
      gotPid = res;
      noPid = rej;
    });
    this.pid.catch(() => {});
    const line = (l: string) => {
      this.tail.push(l);
      onLine(l);
    };
    const stdout = readLines(child.stdout, (l) => {
      const m = this.#pid === null ? PID_LINE.exec(l) : null;
      if (m === null) return line(l);
      this.#pid = Number(m[1]);
      gotPid(this.#pid);
    }).finally(() => noPid(new Error("nats-server wrapper ended before reporting a pid")));
    this.#output = Promise.all([stdout, readLines(child.stderr, line)]).then(() => {});
    this.status = child.status.then((s) => {
      this.#exit = s;
      return s;
    });
  }

  /**
   * Starts `bin args...` under the wrapper (with `env` added to ha's environment); every output
   * line goes to `onLine` and {@link tail}.
   */
  static spawn(
    bin: string,
    args: string[],
    onLine: (line: string) => void,
    env: Record<string, string> = {},
  ): WatchedProcess {
    const child = new Deno.Command("/bin/sh", {
      args: ["-c", WATCHDOG_SCRIPT, "ha-nats-watchdog", bin, ...args],
      env,
      stdin: "piped",
      stdout: "piped",
      stderr: "piped",
      detached: true,
    }).spawn();
    return new WatchedProcess(child, onLine);
  }

  /** nats-server's pid while it runs, else `null`. */
  get runningPid(): number | null {
    return this.#exit === null ? this.#pid : null;
  }

  /** The wrapper's exit status once it exited. */
  get exitStatus(): Deno.CommandStatus | null {
    return this.#exit;
  }

  /** Sends `signal` to nats-server (not the wrapper) if it is still running. */
  signal(signal: Deno.Signal): void {
    const pid = this.runningPid;
    if (pid === null) return;
    try {
      Deno.kill(pid, signal);
    } catch {
      // already gone
    }
  }

  /**
   * Stops nats-server: SIGTERM, SIGKILL after `graceMs`, and as a last resort the wrapper too.
   * Idempotent; resolves once the wrapper exited and its output was read.
   */
  terminate(graceMs: number): Promise<Deno.CommandStatus> {
    this.#terminating ??= this.#terminate(graceMs);
    return this.#terminating;
  }

  async #terminate(graceMs: number): Promise<Deno.CommandStatus> {
    if (this.#exit === null) {
      // The pid line comes right after spawn; without it, closing stdin makes the watchdog act.
      await within(Promise.race([this.pid.catch(() => {}), this.status]), 2_000);
      if (this.#pid === null) await this.release();
      this.signal("SIGTERM");
      if (!(await within(this.status, graceMs))) {
        this.signal("SIGKILL");
        if (!(await within(this.status, 2_000))) {
          try {
            this.child.kill("SIGKILL");
          } catch {
            // already gone
          }
        }
      }
    }
    const status = await this.status;
    await this.release();
    await this.#output;
    return status;
  }

  /**
   * Closes the wrapper's stdin. While nats-server runs, this makes the watchdog stop it; after it
   * exited, this only lets the watchdog's pipe go.
   */
  async release(): Promise<void> {
    try {
      await this.#stdin.close();
    } catch {
      // already closed or broken
    }
  }
}

/** Whether `p` settles within `ms` (the timer is always cleared). */
export async function within(p: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<false>((res) => (timer = setTimeout(() => res(false), ms)));
  try {
    return await Promise.race([p.then(() => true, () => true), timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Describes a wrapper exit status: `exit code 1`, or `killed by SIGKILL` (the wrapper reports a
 * signal as 128 + its number).
 *
 * @example
 * ```ts
 * describeExit({ success: false, code: 137, signal: null }); // "killed by SIGKILL"
 * ```
 */
export function describeExit(s: Deno.CommandStatus): string {
  if (s.signal !== null) return `wrapper killed by ${s.signal}`;
  if (s.code > 128) {
    const n = s.code - 128;
    return `killed by ${SIGNAL_NAMES[n] ?? `signal ${n}`}`;
  }
  return `exit code ${s.code}`;
}

const SIGNAL_NAMES: Record<number, string> = {
  1: "SIGHUP",
  2: "SIGINT",
  3: "SIGQUIT",
  6: "SIGABRT",
  9: "SIGKILL",
  11: "SIGSEGV",
  15: "SIGTERM",
};
