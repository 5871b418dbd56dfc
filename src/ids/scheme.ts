/**
 * Cluster-unique row ids: a node's ids are `time | node slot | sequence` bit fields, so two nodes
 * never choose the same id as long as their slots differ (see `slot.ts`), and one node never
 * repeats an id while its clock does not step back past ids it already issued.
 *
 * | scheme    | bits | time (ms since 2025-01-01 UTC) | slot (nodes) | sequence (per ms) |
 * | --------- | ---- | ------------------------------ | ------------ | ----------------- |
 * | `cluster` | 63   | 41 (until 2094)                | 10 (1024)    | 12 (4096)         |
 * | `js-safe` | 53   | 41 (until 2094)                | 6 (64)       | 6 (64)            |
 *
 * Within one process the (time, sequence) pair only grows: a burst beyond the sequence's capacity
 * borrows the next milliseconds, like a hybrid logical clock. Ids therefore grow with time on each
 * node and are roughly time-ordered across nodes (not strictly: clocks differ).
 *
 * @example
 * ```ts
 * const ids = new IdGenerator("cluster", 3, () => Date.UTC(2026, 0, 1));
 * ids.next() < ids.next(); // true
 * ```
 * @module
 */

import type { IdScheme } from "../config/mod.ts";

/** Bit layout of a scheme. */
export interface IdLayout {
  slotBits: number;
  seqBits: number;
}

/** The layouts of the schemes that choose ids themselves. */
export const LAYOUTS: Record<Exclude<IdScheme, "sqlite">, IdLayout> = {
  cluster: { slotBits: 10, seqBits: 12 },
  "js-safe": { slotBits: 6, seqBits: 6 },
};

/** Time zero of the ids (2025-01-01T00:00:00Z). */
export const ID_EPOCH_MS = Date.UTC(2025, 0, 1);

/** The number of node slots a scheme has. */
export function slotCount(scheme: Exclude<IdScheme, "sqlite">): number {
  return 2 ** LAYOUTS[scheme].slotBits;
}

/** Issues ids of one node (one per database writer). */
export class IdGenerator {
  readonly #seqBits: bigint;
  readonly #timeShift: bigint;
  readonly #slotPart: bigint;
  readonly #seqMask: bigint;
  /** Last (time << seqBits | sequence) issued. */
  #last = 0n;

  /**
   * @param slot this node's slot, below {@link slotCount}.
   * @param now wall clock in ms (injectable for tests).
   */
  constructor(
    scheme: Exclude<IdScheme, "sqlite">,
    slot: number,
    private readonly now: () => number = Date.now,
  ) {
    const l = LAYOUTS[scheme];
    if (!Number.isInteger(slot) || slot < 0 || slot >= 2 ** l.slotBits) {
      throw new RangeError(`id slot ${slot} out of range for scheme ${scheme}`);
    }
    this.#seqBits = BigInt(l.seqBits);
    this.#timeShift = BigInt(l.seqBits + l.slotBits);
    this.#seqMask = (1n << this.#seqBits) - 1n;
    this.#slotPart = BigInt(slot) << this.#seqBits;
  }

  /**
   * Makes every later id's time part greater than `ms` (wall-clock ms): the time of this node's
   * last write before a restart, so that a clock that stepped back does not repeat its ids.
   */
  after(ms: number): void {
    const t = BigInt(Math.max(0, Math.floor(ms - ID_EPOCH_MS) + 1)) << this.#seqBits;
    if (t > this.#last) this.#last = t - 1n;
  }

  /** A new id, greater than every id this generator issued before. */
  next(): bigint {
    const t = BigInt(Math.max(0, Math.floor(this.now() - ID_EPOCH_MS))) << this.#seqBits;
    this.#last = t > this.#last ? t : this.#last + 1n;
    return ((this.#last >> this.#seqBits) << this.#timeShift) | this.#slotPart |
      (this.#last & this.#seqMask);
  }
}
