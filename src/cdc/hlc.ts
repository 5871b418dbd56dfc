/**
 * A hybrid logical clock packed into one safe integer: microsecond-resolution wall time
 * (`Date.now() * 1000`) plus a logical counter that may run ahead of it. Monotonic, and after
 * {@link Hlc.observe} greater than every timestamp seen, so a write made after applying a remote
 * one always wins last-writer-wins comparisons against it.
 *
 * Ties between nodes are broken by node name: see {@link compareVersion}.
 *
 * @example
 * ```ts
 * const clock = new Hlc();
 * const a = clock.next();
 * clock.observe(a + 10);
 * clock.next() > a + 10; // true
 * ```
 * @module
 */

/** A clock; one per database writer. */
export class Hlc {
  #last = 0;

  /** @param now wall clock in ms (injectable for tests). */
  constructor(private readonly now: () => number = Date.now) {}

  /** A new timestamp, greater than every previous one and every observed one. */
  next(): number {
    this.#last = Math.max(this.now() * 1000, this.#last + 1);
    return this.#last;
  }

  /** Takes a remote timestamp into account. */
  observe(hlc: number): void {
    if (Number.isSafeInteger(hlc) && hlc > this.#last) this.#last = hlc;
  }

  /** The last timestamp issued or observed. */
  get last(): number {
    return this.#last;
  }
}

/**
 * Orders two versions by (hlc, node): negative when `a` is older than `b`.
 *
 * @example
 * ```ts
 * compareVersion(5, "node1", 5, "node2"); // < 0
 * ```
 */
export function compareVersion(aHlc: number, aNode: string, bHlc: number, bNode: string): number {
  if (aHlc !== bHlc) return aHlc < bHlc ? -1 : 1;
  return aNode < bNode ? -1 : aNode > bNode ? 1 : 0;
}
