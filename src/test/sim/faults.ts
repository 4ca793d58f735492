import { waitForRedis } from "~/server/infra/redis";
import { createActivity } from "~/server/flash-sale/activities";
import { reconcileItems, sweepReservations, warmDueItems } from "~/server/flash-sale/warm-up";
import { processDueRefunds } from "~/server/refund/refund-worker";
import { resolveStuckOperations } from "~/server/credit/abandoned-operations";
import type { Instance, Send, Step, WorkerTask } from "./steps";
import type { World } from "./world";

/**
 * The fault injector: what each non-burst step does to the world. Failpoints
 * are set on one instance's deps; Redis is the simulation's own
 * redis-server, so it can be SIGKILLed, restarted empty or SIGSTOPped;
 * PostgreSQL backends are terminated by application_name, one instance at a
 * time; worker rounds call the worker's tasks directly.
 */

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Failpoints whose `error` makes a raw INTERNAL answer expected (a bug stand-in, by design). */
export const INTERNAL_FAILPOINTS = new Set(["credit.afterCommit", "credit.beforeCommit"]);

export type FaultState = {
  /** The failpoint spec each instance has now. */
  failpoints: [string, string];
  redis: "up" | "down" | "paused";
};

export const initialFaultState = (): FaultState => ({ failpoints: ["", ""], redis: "up" });

/** Whether an INTERNAL answer from this instance is explained by a failpoint set on it. */
export function internalExplained(state: FaultState, i: Instance): boolean {
  return state.failpoints[i].split(",").some((p) => {
    const [name, action] = p.split("=");
    return name !== undefined && INTERNAL_FAILPOINTS.has(name) && action === "error";
  });
}

/** Redis back, empty, and the sale loaded into it again (the worker's warm-up pass, as after any restart). */
async function restartRedis(world: World, state: FaultState): Promise<void> {
  await world.redis.restart();
  state.redis = "up";
  await Promise.all(world.instances.map((i) => waitForRedis(i.deps.redis, 5000)));
  const deadline = Date.now() + 5000;
  for (;;) {
    try {
      await warmDueItems(world.instances[0].deps);
      return;
    } catch (e) {
      if (Date.now() > deadline) throw new Error(`the sale could not be re-warmed after a Redis restart: ${String(e)}`);
      await sleep(50);
    }
  }
}

/** SIGCONT for a paused Redis; harmless otherwise. */
export function resumeRedis(world: World, state: FaultState): void {
  if (state.redis !== "paused") return;
  world.redis.process.kill("SIGCONT");
  state.redis = "up";
}

/** Terminates every backend of one instance (not the checker's), as a failover or an operator would. */
async function terminateBackends(world: World, i: Instance): Promise<number> {
  const rows = await world.observer.$queryRaw<{ ok: boolean }[]>`
    SELECT pg_terminate_backend(pid) AS ok FROM pg_stat_activity
     WHERE datname = ${world.dbName} AND application_name = ${world.instances[i].applicationName} AND pid <> pg_backend_pid()`;
  return rows.filter((r) => r.ok).length;
}

/** One round of the worker's tasks on an instance; what failed is noted (faults make tasks fail), never thrown. */
async function workerRound(world: World, i: Instance, tasks: readonly WorkerTask[]): Promise<string[]> {
  const deps = world.instances[i].deps;
  const notes: string[] = [];
  const run: Record<WorkerTask, () => Promise<unknown>> = {
    refunds: () => processDueRefunds(deps),
    sweep: () => sweepReservations(deps),
    reconcile: () => reconcileItems(deps, { settleMs: 50 }),
    resolve: () => resolveStuckOperations(deps),
  };
  for (const task of tasks) {
    await run[task]().catch((e: unknown) => notes.push(`${task} failed: ${e instanceof Error ? e.message : String(e)}`));
  }
  return notes;
}

/**
 * Carries out a fault step. `burst` runs the calls of a step that has them
 * (a pause or termination happens while they are under way). Returns notes
 * for the step's description.
 */
export async function applyFault(
  world: World,
  state: FaultState,
  step: Exclude<Step, { kind: "burst" }>,
  burst: (sends: readonly Send[]) => Promise<void>,
): Promise<string[]> {
  switch (step.kind) {
    case "failpoints": {
      const spec = step.points.map((p) => `${p.name}=${p.action}`).join(",");
      world.instances[step.instance].deps.failpoints.set(spec || undefined);
      state.failpoints[step.instance] = spec;
      return [];
    }
    case "redisKill":
      await world.redis.kill("SIGKILL");
      state.redis = "down";
      return [];
    case "redisRestart":
    case "redisBounce":
      await restartRedis(world, state);
      return [];
    case "redisPause": {
      world.redis.process.kill("SIGSTOP");
      state.redis = "paused";
      const resume = sleep(step.ms).then(() => resumeRedis(world, state));
      try {
        await burst(step.sends);
      } finally {
        await resume;
      }
      return [];
    }
    case "pgTerminate": {
      const calls = burst(step.sends);
      await sleep(step.afterMs);
      const n = await terminateBackends(world, step.instance);
      await calls;
      return [`${n} backends terminated`];
    }
    case "worker":
      return workerRound(world, step.instance, step.tasks);
    case "newSale": {
      const now = Date.now();
      const activity = await createActivity(
        world.instances[0].deps,
        {
          name: `sim sale ${step.sale}`,
          startsAt: new Date(now - 1000),
          endsAt: new Date(now + 6 * 3_600_000),
          items: step.items.map((item, n) => ({ name: `item ${n}`, creditTypeId: world.creditTypeId, pointsPrice: item.price, stock: item.stock })),
        },
        { actor: { email: "sim@test.local", role: "operator" } },
      );
      world.sales[step.sale] = { activityId: activity.id, itemIds: activity.items.map((i) => i.id) };
      return [];
    }
  }
}

/** The end of the run: no failpoint, Redis up and warm, the refund queue drained, abandoned operations resolved. */
export async function settle(world: World, state: FaultState, maxMs = 60_000): Promise<void> {
  for (const i of [0, 1] as const) {
    world.instances[i].deps.failpoints.set(undefined);
    state.failpoints[i] = "";
  }
  resumeRedis(world, state);
  if (state.redis === "down") await restartRedis(world, state);
  // Operation rows of calls given up on are written after their answer: let them land.
  await sleep(300);
  const deadline = Date.now() + maxMs;
  for (;;) {
    for (const i of world.instances) await processDueRefunds(i.deps).catch(() => undefined);
    const [due] = await world.observer.$queryRaw<{ n: number }[]>`SELECT count(*)::int AS n FROM refunds WHERE status IN ('PENDING', 'RETRYING')`;
    if ((due?.n ?? 0) === 0) break;
    if (Date.now() > deadline) throw new Error(`${due?.n} refunds were still due after ${maxMs} ms of worker rounds`);
    await sleep(100);
  }
  const deps = world.instances[0].deps;
  await sweepReservations(deps);
  await reconcileItems(deps, { settleMs: 50 });
  while ((await resolveStuckOperations(deps)) > 0) {
    // Resolved in pages of 100.
  }
}
