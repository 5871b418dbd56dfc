/**
 * The `ha` command: parse the configuration, run one node until SIGINT or
 * SIGTERM, then shut down cleanly. Exit codes: 0 after a clean stop, 2 for
 * invalid configuration, 1 when the node cannot start.
 */
import { loadConfig } from "./src/config/mod.ts";
import { HaError } from "./src/errors/mod.ts";
import { createLogger } from "./src/log/mod.ts";
import { Node } from "./src/node.ts";
import { releaseStartGarbage } from "./src/lifecycle/mod.ts";
import { SANDBOX_FLAG } from "./src/interceptor/flag.ts";

/** Resolves once `node` reports ready, or after 30 s. */
async function whenReady(node: Node): Promise<void> {
  for (let i = 0; i < 600 && node.readiness().length > 0; i++) {
    await new Promise((r) => setTimeout(r, 50));
  }
}

async function main(): Promise<number> {
  // The compiled binary re-runs itself as an interceptor sandbox process (see sandbox.ts). Its
  // modules load only then (a node's idle memory, issue 13).
  if (Deno.args[0] === SANDBOX_FLAG) {
    return await (await import("./src/interceptor/child.ts")).runSandboxProcess();
  }
  let outcome;
  try {
    outcome = loadConfig(Deno.args);
  } catch (e) {
    console.error(`ha: ${(e as Error).message}`);
    return 2;
  }
  if (outcome.kind !== "run") {
    console.log(outcome.text);
    return 0;
  }
  const config = outcome.config;
  const logger = createLogger(config.logLevel);
  let node: Node;
  try {
    node = await Node.start(config, logger);
  } catch (e) {
    const msg = e instanceof Error ? e.message : String(e);
    if (e instanceof HaError && e.code === "config") {
      console.error(`ha: ${msg}`);
      return 2;
    }
    logger.error("cannot start node", { error: msg });
    console.error(`ha: ${msg}`);
    return 1;
  }
  // Once the node is ready (not to delay it) or 30 s on: idle RSS (issue 13). Its pause (tens of
  // ms) comes before clients usually do.
  whenReady(node).then(releaseStartGarbage).then(
    (h) => logger.debug("start-up garbage released", h),
    (e) => logger.warn("cannot release start-up garbage", { error: String(e) }),
  );
  const stopped = new Promise<void>((resolve) => {
    const onSignal = () => resolve();
    Deno.addSignalListener("SIGINT", onSignal);
    Deno.addSignalListener("SIGTERM", onSignal);
  });
  await stopped;
  await node.stop();
  return 0;
}

Deno.exit(await main());
