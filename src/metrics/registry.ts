/**
 * A small Prometheus registry: counters, gauges and histograms with labels, and their text
 * exposition (format 0.0.4). Hot paths hold a pre-resolved child ({@link Counter.labels}) and
 * only add to a number; label strings are built once per child, never per observation.
 * Values known elsewhere (queue lengths, process memory) are read at scrape time by
 * {@link Registry.collect} callbacks instead of being kept up to date.
 *
 * @module
 */

/** Label values in the order of the metric's label names. */
type LabelValues = readonly string[];

function escapeLabel(v: string): string {
  return v.replace(/\\/g, "\\\\").replace(/\n/g, "\\n").replace(/"/g, '\\"');
}

function labelText(names: readonly string[], values: LabelValues, extra = ""): string {
  const parts = names.map((n, i) => `${n}="${escapeLabel(values[i] ?? "")}"`);
  if (extra) parts.push(extra);
  return parts.length ? `{${parts.join(",")}}` : "";
}

function num(v: number): string {
  if (Number.isNaN(v)) return "NaN";
  if (v === Infinity) return "+Inf";
  if (v === -Infinity) return "-Inf";
  return String(v);
}

/** Something the registry prints. */
interface Metric {
  readonly name: string;
  write(out: string[]): void;
}

abstract class Labelled<C> implements Metric {
  readonly #children = new Map<string, { values: LabelValues; child: C }>();

  constructor(
    readonly name: string,
    readonly help: string,
    readonly type: string,
    readonly labelNames: readonly string[],
  ) {}

  protected abstract make(): C;
  protected abstract lines(out: string[], labels: LabelValues, child: C): void;

  /** The child for these label values (created once; keep it on hot paths). */
  labels(...values: string[]): C {
    if (values.length !== this.labelNames.length) {
      throw new TypeError(`${this.name}: expected labels ${this.labelNames.join(", ")}`);
    }
    const key = values.join("\u0000");
    let e = this.#children.get(key);
    if (!e) {
      e = { values, child: this.make() };
      this.#children.set(key, e);
    }
    return e.child;
  }

  /** Forgets every child (gauges rebuilt at each scrape). */
  reset(): void {
    this.#children.clear();
  }

  write(out: string[]): void {
    out.push(`# HELP ${this.name} ${this.help}`, `# TYPE ${this.name} ${this.type}`);
    for (const { values, child } of this.#children.values()) this.lines(out, values, child);
  }
}

/** One counter or gauge child. */
export class Value {
  value = 0;
  inc(by = 1): void {
    this.value += by;
  }
  set(v: number): void {
    this.value = v;
  }
}

/** A monotonically increasing count. */
export class Counter extends Labelled<Value> {
  constructor(name: string, help: string, labelNames: readonly string[] = []) {
    super(name, help, "counter", labelNames);
  }
  protected make(): Value {
    return new Value();
  }
  protected lines(out: string[], labels: LabelValues, c: Value): void {
    out.push(`${this.name}${labelText(this.labelNames, labels)} ${num(c.value)}`);
  }
}

/** A value that goes up and down. */
export class Gauge extends Labelled<Value> {
  constructor(name: string, help: string, labelNames: readonly string[] = []) {
    super(name, help, "gauge", labelNames);
  }
  protected make(): Value {
    return new Value();
  }
  protected lines(out: string[], labels: LabelValues, c: Value): void {
    out.push(`${this.name}${labelText(this.labelNames, labels)} ${num(c.value)}`);
  }
}

/** One histogram child: cumulative counts per upper bound. */
export class Buckets {
  readonly counts: Float64Array;
  sum = 0;
  count = 0;

  constructor(readonly bounds: readonly number[]) {
    this.counts = new Float64Array(bounds.length);
  }

  observe(v: number): void {
    this.sum += v;
    this.count++;
    const b = this.bounds;
    for (let i = 0; i < b.length; i++) {
      if (v <= b[i]) {
        this.counts[i]++;
        return;
      }
    }
  }
}

/** A distribution (latencies). */
export class Histogram extends Labelled<Buckets> {
  constructor(
    name: string,
    help: string,
    labelNames: readonly string[],
    readonly bounds: readonly number[],
  ) {
    super(name, help, "histogram", labelNames);
  }
  protected make(): Buckets {
    return new Buckets(this.bounds);
  }
  protected lines(out: string[], labels: LabelValues, h: Buckets): void {
    let cum = 0;
    h.bounds.forEach((b, i) => {
      cum += h.counts[i];
      out.push(`${this.name}_bucket${labelText(this.labelNames, labels, `le="${num(b)}"`)} ${cum}`);
    });
    out.push(
      `${this.name}_bucket${labelText(this.labelNames, labels, 'le="+Inf"')} ${h.count}`,
      `${this.name}_sum${labelText(this.labelNames, labels)} ${num(h.sum)}`,
      `${this.name}_count${labelText(this.labelNames, labels)} ${h.count}`,
    );
  }
}

/** Metrics and scrape-time collectors, printed in registration order. */
export class Registry {
  readonly #metrics: Metric[] = [];
  readonly #collectors: (() => void | Promise<void>)[] = [];

  /** Registers a metric; returns it. */
  add<M extends Metric>(m: M): M {
    if (this.#metrics.some((x) => x.name === m.name)) {
      throw new Error(`metric ${m.name} registered twice`);
    }
    this.#metrics.push(m);
    return m;
  }

  /** Runs before each exposition: sets gauges (and counters) read from elsewhere. */
  collect(fn: () => void | Promise<void>): void {
    this.#collectors.push(fn);
  }

  /** The text exposition format. A failing collector leaves its metrics as they were. */
  async expose(): Promise<string> {
    await Promise.allSettled(this.#collectors.map(async (fn) => await fn()));
    const out: string[] = [];
    for (const m of this.#metrics) m.write(out);
    return out.join("\n") + "\n";
  }
}

/** Content-Type of {@link Registry.expose}'s text. */
export const EXPOSITION_TYPE = "text/plain; version=0.0.4; charset=utf-8";
