/**
 * The Helm chart charts/ha: `helm lint --strict` is clean, and `helm template` renders the
 * objects the chart promises, checked on the parsed YAML (StatefulSet with stable route names,
 * headless and client Services, volume claims, Secret, interceptor ConfigMap, PG TLS, probes,
 * PodDisruptionBudget, non-root security context) and on its guard against too many replicas.
 */
import assert from "node:assert/strict";
import { parseAllDocuments } from "npm:yaml@^2";
import { helmBin, sh, unavailable } from "./tools.ts";

const skip = await unavailable("helm");
const CHART = new URL("../../charts/ha", import.meta.url).pathname;

// deno-lint-ignore no-explicit-any
type Obj = any;

async function render(args: string[]): Promise<Obj[]> {
  const r = await sh(helmBin(), ["template", "rel", CHART, "--namespace", "db", ...args]);
  assert.equal(r.code, 0, r.stderr);
  return parseAllDocuments(r.stdout).map((d) => d.toJS()).filter((o) => o !== null);
}

function one(objs: Obj[], kind: string, name?: string): Obj {
  const found = objs.filter((o) =>
    o.kind === kind && (name === undefined || o.metadata.name === name)
  );
  assert.equal(found.length, 1, `one ${kind} ${name ?? ""}: ${found.length}`);
  return found[0];
}

function envOf(container: Obj): Map<string, Obj> {
  return new Map(container.env.map((e: Obj) => [e.name, e.value ?? e.valueFrom]));
}

Deno.test({ name: "helm lint --strict is clean", ignore: skip !== null }, async () => {
  const r = await sh(helmBin(), ["lint", "--strict", CHART]);
  assert.equal(r.code, 0, r.stdout + r.stderr);
  assert.match(r.stdout, /1 chart\(s\) linted, 0 chart\(s\) failed/);
});

Deno.test(
  { name: "helm template: a 3-pod cluster by default", ignore: skip !== null },
  async () => {
    const objs = await render([]);
    assert.deepEqual(objs.map((o) => o.kind).sort(), [
      "PodDisruptionBudget",
      "Secret",
      "Service",
      "Service",
      "StatefulSet",
    ]);
    const sts = one(objs, "StatefulSet", "rel-ha");
    assert.equal(sts.spec.replicas, 3);
    assert.equal(sts.spec.serviceName, "rel-ha-headless");
    assert.equal(sts.spec.podManagementPolicy, "Parallel");
    const pod = sts.spec.template.spec;
    assert.equal(pod.securityContext.runAsNonRoot, true);
    assert.equal(pod.securityContext.runAsUser, 10001);
    const [c] = pod.containers;
    assert.equal(c.image, "ha:0.1.0");
    assert.equal(c.securityContext.allowPrivilegeEscalation, false);
    assert.deepEqual(c.securityContext.capabilities.drop, ["ALL"]);
    assert.equal(c.readinessProbe.httpGet.path, "/readyz");
    assert.equal(c.livenessProbe.httpGet.path, "/healthz");
    assert.ok(c.resources.requests.memory && c.resources.limits.memory);
    const env = envOf(c);
    assert.equal(env.get("HA_NAME").fieldRef.fieldPath, "metadata.name");
    assert.equal(env.get("HA_REPLICAS"), "3");
    assert.equal(env.get("HA_NATS_CLUSTER_PORT"), "6222");
    assert.equal(
      env.get("HA_NATS_ROUTES"),
      [0, 1, 2].map((i) => `nats://rel-ha-${i}.rel-ha-headless.db.svc:6222`).join(","),
    );
    assert.equal(env.get("HA_MEMORY"), "false");
    for (
      const [k, key] of [["HA_TOKEN", "token"], ["HA_PG_PASS", "pg-password"], [
        "HA_NATS_PASS",
        "nats-password",
      ]]
    ) {
      assert.deepEqual(env.get(k).secretKeyRef, { name: "rel-ha-auth", key });
    }
    assert.equal(env.get("HA_HTTP_ADDR"), "0.0.0.0");
    assert.ok(!env.has("HA_INSECURE"), "never insecure");
    assert.ok(!env.has("HA_PG_CERT") && !env.has("HA_INTERCEPTOR"));
    const claim = sts.spec.volumeClaimTemplates[0];
    assert.equal(claim.metadata.name, "data");
    assert.equal(claim.spec.resources.requests.storage, "1Gi");
    assert.deepEqual(c.volumeMounts, [{ name: "data", mountPath: "/data" }]);

    const headless = one(objs, "Service", "rel-ha-headless");
    assert.equal(headless.spec.clusterIP, "None");
    assert.equal(headless.spec.publishNotReadyAddresses, true);
    assert.deepEqual(headless.spec.ports.map((p: Obj) => p.port), [8080, 5432, 4222, 6222]);
    const client = one(objs, "Service", "rel-ha");
    assert.deepEqual(client.spec.ports.map((p: Obj) => p.name), ["http", "pg"]);
    assert.deepEqual(client.spec.selector, sts.spec.selector.matchLabels);

    const secret = one(objs, "Secret", "rel-ha-auth");
    assert.deepEqual(Object.keys(secret.data).sort(), ["nats-password", "pg-password", "token"]);
    for (const v of Object.values(secret.data)) assert.equal(atob(v as string).length, 32);
    assert.equal(one(objs, "PodDisruptionBudget").spec.maxUnavailable, 1);
  },
);

Deno.test({
  name: "helm template: memory, interceptor ConfigMap, PG TLS, existing Secret, 5 pods",
  ignore: skip !== null,
}, async () => {
  const code = 'export default { name: "x" };\n';
  const objs = await render([
    "--set",
    "replicaCount=5",
    "--set",
    "streamReplicas=3",
    "--set",
    "memory=true",
    "--set",
    "persistence.enabled=false",
    "--set-string",
    `interceptor.code=${code}`,
    "--set",
    "pgTls.secretName=pg-cert",
    "--set",
    "pgTls.require=true",
    "--set",
    "auth.existingSecret=mine",
    "--set",
    "image.tag=1.2.3",
  ]);
  assert.ok(!objs.some((o) => o.kind === "Secret"), "no Secret of the chart's own");
  const cm = one(objs, "ConfigMap", "rel-ha-interceptor");
  assert.equal(cm.data["interceptor.ts"], code);
  const sts = one(objs, "StatefulSet");
  assert.equal(sts.spec.replicas, 5);
  assert.equal(sts.spec.volumeClaimTemplates, undefined);
  const pod = sts.spec.template.spec;
  const [c] = pod.containers;
  assert.equal(c.image, "ha:1.2.3");
  const env = envOf(c);
  assert.equal(env.get("HA_MEMORY"), "true");
  assert.equal(env.get("HA_NATS_ROUTES").split(",").length, 5);
  assert.equal(env.get("HA_PG_CERT"), "/etc/ha/pg-tls/tls.crt");
  assert.equal(env.get("HA_PG_REQUIRE_TLS"), "true");
  assert.equal(env.get("HA_INTERCEPTOR"), "/etc/ha/interceptor/interceptor.ts");
  assert.equal(env.get("HA_TOKEN").secretKeyRef.name, "mine");
  const volumes = new Map(pod.volumes.map((v: Obj) => [v.name, v]));
  assert.deepEqual((volumes.get("data") as Obj).emptyDir, {});
  assert.equal((volumes.get("pg-tls") as Obj).secret.secretName, "pg-cert");
  assert.equal((volumes.get("interceptor") as Obj).configMap.name, "rel-ha-interceptor");
});

Deno.test({ name: "helm template: one pod is not clustered", ignore: skip !== null }, async () => {
  const objs = await render(["--set", "replicaCount=1", "--set", "streamReplicas=1"]);
  assert.ok(!objs.some((o) => o.kind === "PodDisruptionBudget"));
  const env = envOf(one(objs, "StatefulSet").spec.template.spec.containers[0]);
  assert.ok(!env.has("HA_NATS_CLUSTER_PORT") && !env.has("HA_NATS_ROUTES"));
});

Deno.test(
  { name: "helm template refuses streamReplicas > replicaCount", ignore: skip !== null },
  async () => {
    const r = await sh(helmBin(), ["template", "rel", CHART, "--set", "streamReplicas=4"]);
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /streamReplicas \(4\) must not exceed replicaCount \(3\)/);
  },
);

Deno.test({ name: "NOTES.txt renders the access commands", ignore: skip !== null }, async () => {
  // helm renders NOTES.txt only on install: render it here as a value of a temporary template.
  const dir = await Deno.makeTempDir({ prefix: "ha-chart-" });
  try {
    await sh("cp", ["-r", CHART, `${dir}/ha`]);
    const notes = await Deno.readTextFile(`${dir}/ha/templates/NOTES.txt`);
    await Deno.remove(`${dir}/ha/templates/NOTES.txt`);
    const body = notes.split("\n").map((l) => `  ${l}`).join("\n");
    await Deno.writeTextFile(`${dir}/ha/templates/notes.yaml`, `notes: |\n${body}\n`);
    const r = await sh(helmBin(), ["template", "rel", `${dir}/ha`, "-s", "templates/notes.yaml"]);
    assert.equal(r.code, 0, r.stderr);
    const text: string = parseAllDocuments(r.stdout)[0].toJS().notes;
    assert.match(text, /^3 ha node\(s\) as the StatefulSet rel-ha, one NATS cluster, stream/);
    assert.match(text, /get secret rel-ha-auth -o jsonpath='\{\.data\.token\}'/);
    assert.match(text, /port-forward svc\/rel-ha 8080 5432/);
    assert.match(text, /while 1 pod\(s\) are down/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
