/** Small async coordination primitives used by the engine. */

/** A FIFO mutex: `lock()` resolves with a release function. */
export class Mutex {
  private tail: Promise<void> = Promise.resolve();

  /** Waits for the lock; call the returned function exactly once to release it. */
  lock(): Promise<() => void> {
    let release!: () => void;
    const next = new Promise<void>((r) => release = r);
    const ready = this.tail.then(() => release);
    this.tail = this.tail.then(() => next);
    return ready;
  }
}

/** A counting semaphore bounding concurrent work (`--concurrent-queries`). */
export class Semaphore {
  private waiters: (() => void)[] = [];
  constructor(private permits: number) {}

  /** Waits for a permit; call the returned function exactly once to give it back. */
  async acquire(): Promise<() => void> {
    if (this.permits > 0) this.permits--;
    else await new Promise<void>((r) => this.waiters.push(r));
    return this.releaser();
  }

  /**
   * A permit now if one is free (its release function), else null: no promise and no await on
   * the uncontended path (`tryAcquire() ?? await acquire()`).
   */
  tryAcquire(): (() => void) | null {
    if (this.permits <= 0) return null;
    this.permits--;
    return this.releaser();
  }

  private releaser(): () => void {
    let released = false;
    return () => {
      if (released) return;
      released = true;
      const next = this.waiters.shift();
      if (next) next();
      else this.permits++;
    };
  }
}
