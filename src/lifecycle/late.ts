/**
 * A value that exists only later (the NATS connection, the snapshotter created once NATS is
 * first reached), read explicitly instead of through a stand-in object.
 *
 * @module
 */
import { HaError } from "../errors/mod.ts";

/** Holds a value once it exists. */
export class Late<T> {
  #value: T | null = null;
  readonly #ready = Promise.withResolvers<T>();

  /** `why` explains the `unavailable` error of {@link get} before the value exists. */
  constructor(private readonly why: string) {}

  /** The value, or null before it exists. */
  current(): T | null {
    return this.#value;
  }

  /** The value; before it exists, throws `HaError("unavailable", why)` (HTTP 503). */
  get(): T {
    if (this.#value === null) throw new HaError("unavailable", this.why);
    return this.#value;
  }

  /** Resolves with the value once it exists (never, when it never does). */
  whenReady(): Promise<T> {
    return this.#ready.promise;
  }

  /** Sets the value; once set it stays (setting the same value again is a no-op). */
  set(value: T): void {
    if (this.#value === value) return;
    if (this.#value !== null) throw new Error("Late: value already set");
    this.#value = value;
    this.#ready.resolve(value);
  }
}
