/**
 * The metrics of a node (listed with what to alert on in the README): what hot paths count is
 * kept here through pre-resolved children; what other parts already know (published and applied
 * counts, outbox length, connections) is read from them at scrape time through
 * {@link MetricSources}, so those paths pay nothing.
 *
 * @module
 */
import process from "node:process";
import { type Buckets, Counter, Gauge, Histogram, Registry, type Value } from "./registry.ts";

/** One database's replication counters as the replication status reports them. */
export interface ReplicationCounts {
  database: string;
  publisher: { published: number; pending: number };
  subscriber: { applied: number; failing: unknown; deadLettered: number; stalls: number } | null;
}

/** What a node's parts expose for the scrape (each optional: a standalone node has no NATS). */
export interface MetricSources {
  replication?: () => ReplicationCounts[];
  /** Conflicts per database and table since each database was created. */
  conflicts?: () => Promise<Record<string, Record<string, number>>>;
  /** NATS connected (null: never reached yet). */
  natsConnected?: () => boolean | null;
  /** Open PostgreSQL connections. */
  pgConnections?: () => number;
}

const LATENCY = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];
/** Replication lag buckets (s): fine below 10 ms, where a healthy cluster's lag lies. */
const LAG = [
  0.0005,
  0.001,
  0.0015,
  0.002,
  0.003,
  0.004,
  0.005,
  0.0075,
  0.01,
  0.015,
  0.025,
  0.05,
  0.1,
  0.25,
  0.5,
  1,
  2.5,
  5,
  10,
  30,
  60,
  300,
];

/** Per route: its duration histogram and its counters per status code. */
interface RouteChildren {
  duration: Buckets;
  codes: Map<number, Value>;
}

/** A node's metrics. */
export class HaMetrics {
  readonly registry = new Registry();
  readonly #lag = this.registry.add(
    new Histogram(
      "ha_replication_lag_seconds",
      "Seconds from a changeset's commit on its origin node (its HLC) to its apply here",
      ["database", "origin"],
      LAG,
    ),
  );
  readonly #published = this.registry.add(
    new Counter(
      "ha_replication_published_total",
      "Changesets of this node stored by JetStream",
      ["database"],
    ),
  );
  readonly #applied = this.registry.add(
    new Counter("ha_replication_applied_total", "Remote changesets applied here", ["database"]),
  );
  readonly #conflicts = this.registry.add(
    new Counter(
      "ha_replication_conflicts_total",
      "Rows written concurrently on two nodes, resolved by last writer wins or the interceptor",
      ["database", "table"],
    ),
  );
  readonly #deadLetters = this.registry.add(
    new Counter(
      "ha_replication_dead_letters_total",
      "Invalid changesets refused since start (kept in _ha_dead_letters)",
      ["database"],
    ),
  );
  readonly #stalls = this.registry.add(
    new Counter(
      "ha_replication_consumer_stalls_total",
      "Replication consumers recreated because they delivered nothing while the stream had more",
      ["database"],
    ),
  );
  readonly #failing = this.registry.add(
    new Gauge(
      "ha_replication_failing",
      "1 while a changeset fails to apply (see GET /replications; skip it there)",
      ["database"],
    ),
  );
  readonly #outbox = this.registry.add(
    new Gauge(
      "ha_outbox_pending",
      "Changesets committed here and not yet stored by JetStream",
      ["database"],
    ),
  );
  readonly #nats = this.registry.add(
    new Gauge("ha_nats_connected", "1 while the NATS connection is up, else 0"),
  ).labels();
  readonly #requests = this.registry.add(
    new Counter("ha_http_requests_total", "HTTP requests answered", ["route", "code"]),
  );
  readonly #duration = this.registry.add(
    new Histogram(
      "ha_http_request_duration_seconds",
      "HTTP request duration until the response headers",
      ["route"],
      LATENCY,
    ),
  );
  readonly #pgConnections = this.registry.add(
    new Gauge("ha_pg_connections", "Open PostgreSQL wire connections"),
  ).labels();
  readonly #pgQueries = this.registry.add(
    new Counter("ha_pg_queries_total", "SQL statements run over the PostgreSQL wire"),
  ).labels();
  readonly #rss = this.registry.add(
    new Gauge("process_resident_memory_bytes", "Resident memory size in bytes"),
  ).labels();
  readonly #heap = this.registry.add(
    new Gauge("process_heap_bytes", "JavaScript heap in use, in bytes"),
  ).labels();
  readonly #cpu = this.registry.add(
    new Counter("process_cpu_seconds_total", "User and system CPU time spent, in seconds"),
  ).labels();
  readonly #started = this.registry.add(
    new Gauge("process_start_time_seconds", "Start time of the process since the Unix epoch"),
  ).labels();
  readonly #loopLag = this.registry.add(
    new Gauge(
      "ha_event_loop_lag_seconds",
      "Largest delay of a timer on the main event loop over the last 5 to 10 s",
    ),
  ).labels();
  readonly #routes = new Map<string, RouteChildren>();
  readonly #lagByDb = new Map<string, Map<string, Buckets>>();
  #loopTimer: ReturnType<typeof setInterval> | null = null;

  constructor() {
    this.#started.set(Math.floor(Date.now() / 1000 - performance.now() / 1000));
    this.registry.collect(() => {
      const m = Deno.memoryUsage();
      this.#rss.set(m.rss);
      this.#heap.set(m.heapUsed);
      const cpu = process.cpuUsage();
      this.#cpu.set((cpu.user + cpu.system) / 1e6);
    });
  }

  /** Reads the parts' state at each scrape. */
  watch(s: MetricSources): void {
    const { replication, conflicts, natsConnected, pgConnections } = s;
    if (replication) {
      this.registry.collect(() => {
        this.#failing.reset();
        for (const r of replication()) {
          this.#published.labels(r.database).set(r.publisher.published);
          this.#outbox.labels(r.database).set(r.publisher.pending);
          this.#failing.labels(r.database).set(r.subscriber?.failing ? 1 : 0);
          if (!r.subscriber) continue;
          this.#applied.labels(r.database).set(r.subscriber.applied);
          this.#deadLetters.labels(r.database).set(r.subscriber.deadLettered);
          this.#stalls.labels(r.database).set(r.subscriber.stalls);
        }
      });
    }
    if (conflicts) {
      this.registry.collect(async () => {
        for (const [db, tables] of Object.entries(await conflicts())) {
          for (const [t, n] of Object.entries(tables)) this.#conflicts.labels(db, t).set(n);
        }
      });
    }
    if (natsConnected) this.registry.collect(() => this.#nats.set(natsConnected() ? 1 : 0));
    if (pgConnections) this.registry.collect(() => this.#pgConnections.set(pgConnections()));
  }

  /** Counts a request: `route` is the matched pattern (bounded), `code` the status. */
  request(route: string, code: number, seconds: number): void {
    let r = this.#routes.get(route);
    if (!r) {
      r = { duration: this.#duration.labels(route), codes: new Map() };
      this.#routes.set(route, r);
    }
    let c = r.codes.get(code);
    if (!c) {
      c = this.#requests.labels(route, String(code));
      r.codes.set(code, c);
    }
    c.value++;
    r.duration.observe(seconds);
  }

  /** Counts a statement run over the PostgreSQL wire. */
  readonly pgQuery = (): void => {
    this.#pgQueries.value++;
  };

  /** Records the lag of one applied remote changeset. */
  readonly observeLag = (db: string, origin: string, seconds: number): void => {
    let byOrigin = this.#lagByDb.get(db);
    if (!byOrigin) this.#lagByDb.set(db, byOrigin = new Map());
    let h = byOrigin.get(origin);
    if (!h) byOrigin.set(origin, h = this.#lag.labels(db, origin));
    h.observe(seconds);
  };

  /** Starts sampling the event loop's lag (a timer's delay past its due time). */
  start(): Promise<void> {
    const every = 500;
    let due = performance.now() + every;
    let worst = 0;
    let previous = 0;
    let windowStart = performance.now();
    this.#loopTimer = setInterval(() => {
      const now = performance.now();
      worst = Math.max(worst, now - due);
      due = now + every;
      // The worst of this window and the previous one: a spike stays visible 5 to 10 s.
      this.#loopLag.set(Math.max(worst, previous) / 1000);
      if (now - windowStart >= 5_000) {
        previous = worst;
        worst = 0;
        windowStart = now;
      }
    }, every);
    Deno.unrefTimer(this.#loopTimer);
    return Promise.resolve();
  }

  stop(): Promise<void> {
    if (this.#loopTimer !== null) clearInterval(this.#loopTimer);
    this.#loopTimer = null;
    return Promise.resolve();
  }
}
