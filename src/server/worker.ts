/**
 * The background process (`npm run worker`): the tasks of ./worker/tasks.ts
 * (refunds, outbox relay, stuck-operation resolver, request-record clean-up).
 * Several may run at once; each task claims its work safely. On SIGTERM it
 * takes no new work, finishes what it holds and waits for alerts under way.
 */
import { loadEnvOrExit } from "~/server/infra/env";
import { createDeps, closeDeps } from "~/server/infra/deps";
import { waitForRedis } from "~/server/infra/redis";
import { waitForLockNodes } from "~/server/resilience/lock";
import { startSettingsSync } from "~/server/infra/settings-sync";
import { alertsSettled } from "~/server/infra/alerts";
import { runTasks } from "./worker/runner";
import { startWorkerMetrics } from "./worker/metrics-server";
import { workerTasks } from "./worker/tasks";

async function main(): Promise<void> {
  const env = loadEnvOrExit();
  const deps = createDeps(env, {}, "flashpoints-worker");
  if (!(await waitForRedis(deps.redis, 3000))) deps.log.warn("redis is not answering; tasks retry until it does");
  await waitForLockNodes(deps);
  // Degradation switches (e.g. outboxRelay) reach this process within a second.
  const settingsSync = startSettingsSync(deps);
  const metricsServer = env.WORKER_METRICS_PORT ? await startWorkerMetrics(deps, env.WORKER_METRICS_PORT) : null;
  const controller = new AbortController();
  const stop = (signal: string) => {
    deps.log.info({ signal }, "worker stopping");
    controller.abort();
  };
  process.once("SIGINT", () => stop("SIGINT"));
  process.once("SIGTERM", () => stop("SIGTERM"));
  deps.log.info({ tasks: workerTasks.map((t) => t.name) }, "worker started");
  await runTasks(deps, workerTasks, controller.signal);
  await alertsSettled();
  metricsServer?.close();
  await settingsSync.stop();
  await closeDeps(deps);
  deps.log.info("worker stopped");
}

void main().catch((e: unknown) => {
  console.error(e);
  process.exit(1);
});
