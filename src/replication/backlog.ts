/**
 * The subscriber's received-but-unapplied changesets, in stream order, with their payload bytes
 * counted: the consumer is paused when either the count or the bytes pass the high water mark
 * (10,000 single-row changesets are a few MB, 10,000 changesets of 1000 rows more than 500 MB),
 * and resumed once both are down to the low water mark.
 *
 * @module
 */
import type { JsMsg } from "@nats-io/jetstream";
import type { Payload } from "./packed.ts";

/**
 * A received message: its stream sequence and payload, read once (`JsMsg.seq` parses the reply
 * subject into an object, `JsMsg.data` makes a new view on each read), and the message for its
 * headers, decoded only when needed.
 */
export interface Received extends Payload {
  msg: JsMsg;
}

/** Default {@link BacklogLimits.bytes}: payload bytes above which the consumer is paused. */
export const DEFAULT_BACKLOG_BYTES = 64 * 1024 * 1024;
/** Changesets above which the consumer is paused. */
const HIGH_WATER = 10_000;
/** The paused consumer is recreated when the backlog is down to this (and a quarter of the bytes). */
const LOW_WATER = 1_000;

/** Limits of a {@link Backlog}. */
export interface BacklogLimits {
  /** Payload bytes above which the consumer is paused. */
  bytes: number;
}

/** Received changesets waiting to be applied. */
export class Backlog {
  private msgs: Received[] = [];
  private size = 0;

  constructor(private readonly limits: BacklogLimits) {}

  get length(): number {
    return this.msgs.length;
  }

  /** Payload bytes held. */
  get bytes(): number {
    return this.size;
  }

  at(i: number): Received {
    return this.msgs[i];
  }

  push(m: Received): void {
    this.msgs.push(m);
    this.size += m.data.length;
  }

  /** The first `n` (not removed). */
  first(n: number): Received[] {
    return this.msgs.slice(0, n);
  }

  /** Those from index `from` to `to` (excluded; not removed). */
  slice(from: number, to: number): Received[] {
    return this.msgs.slice(from, to);
  }

  /** Removes and returns the first `n`. */
  shift(n: number): Received[] {
    const out = this.msgs.splice(0, n);
    for (const m of out) this.size -= m.data.length;
    return out;
  }

  /** Removes every changeset up to stream sequence `seq`. */
  dropThrough(seq: number): void {
    const i = this.msgs.findIndex((m) => m.seq > seq);
    this.shift(i < 0 ? this.msgs.length : i);
  }

  clear(): void {
    this.msgs = [];
    this.size = 0;
  }

  /** Too much is held: the consumer must pause. */
  full(): boolean {
    return this.msgs.length >= HIGH_WATER || this.size >= this.limits.bytes;
  }

  /** Little enough is held for a paused consumer to resume. */
  low(): boolean {
    return this.msgs.length <= LOW_WATER && this.size <= this.limits.bytes / 4;
  }

  /** Why {@link full}, for the log. */
  describe(): string {
    return `${this.msgs.length} changesets (${this.size} bytes)`;
  }
}
