/** The exposition of the metrics registry: labels escaped, histograms cumulative, collectors. */
import assert from "node:assert/strict";
import { Counter, Gauge, Histogram, Registry } from "../../src/metrics/mod.ts";

Deno.test("registry: text exposition of counters, gauges and histograms", async () => {
  const r = new Registry();
  const c = r.add(new Counter("x_total", "Things", ["kind"]));
  const g = r.add(new Gauge("y", "Level"));
  const h = r.add(new Histogram("z_seconds", "Time", ["route"], [0.1, 1]));
  c.labels('a"b\\c\nd').inc();
  c.labels('a"b\\c\nd').inc(2);
  let level = 0;
  r.collect(() => g.labels().set(++level));
  const child = h.labels("/q");
  for (const v of [0.05, 0.5, 0.7, 3]) child.observe(v);
  assert.equal(
    await r.expose(),
    [
      "# HELP x_total Things",
      "# TYPE x_total counter",
      'x_total{kind="a\\"b\\\\c\\nd"} 3',
      "# HELP y Level",
      "# TYPE y gauge",
      "y 1",
      "# HELP z_seconds Time",
      "# TYPE z_seconds histogram",
      'z_seconds_bucket{route="/q",le="0.1"} 1',
      'z_seconds_bucket{route="/q",le="1"} 3',
      'z_seconds_bucket{route="/q",le="+Inf"} 4',
      'z_seconds_sum{route="/q"} 4.25',
      'z_seconds_count{route="/q"} 4',
      "",
    ].join("\n"),
  );
  assert.match(await r.expose(), /^y 2$/m, "collectors run at every scrape");
  assert.throws(() => c.labels(), /expected labels kind/);
  assert.throws(() => r.add(new Gauge("y", "again")), /registered twice/);
});
