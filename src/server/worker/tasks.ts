import type { WorkerTask } from "./runner";
import { relayOutbox } from "~/server/outbox/relay";
import { resolveStuckOperations } from "~/server/credit/abandoned-operations";
import { deleteExpiredRequestRecords } from "~/server/resilience/request-record";
import { isSwitchOn } from "~/server/resilience/switches";
import { processDueRefunds } from "~/server/refund/refund-worker";
import { reconcileItems, sweepReservations, warmDueItems } from "~/server/flash-sale/warm-up";

/** Every background task of the worker process: what runs, and how often when idle. */
export const workerTasks: WorkerTask[] = [
  {
    // Polling is the guarantee: a refund due now is taken within this interval.
    name: "refunds.apply",
    intervalMs: 250,
    run: async (deps, signal) => (await processDueRefunds(deps, { signal })).taken,
  },
  {
    // Sales within FLASH_SALE_WARMUP_LEAD_MS are loaded into Redis (and kept current: window, pause).
    name: "flashSale.warm",
    intervalMs: 1_000,
    run: async (deps) => {
      await warmDueItems(deps);
      return 0;
    },
  },
  {
    name: "flashSale.sweep",
    intervalMs: 500,
    run: async (deps) => {
      await sweepReservations(deps);
      return 0;
    },
  },
  {
    name: "flashSale.reconcile",
    intervalMs: (env) => env.FLASH_SALE_RECONCILE_MS,
    run: async (deps) => {
      await reconcileItems(deps);
      return 0;
    },
  },
  {
    name: "outbox.relay",
    intervalMs: 500,
    // The `outboxRelay` switch pauses publishing (non-core work) under pressure;
    // events stay in the table and go out when it is back on.
    run: async (deps) => ((await isSwitchOn(deps, "outboxRelay")) ? relayOutbox(deps) : 0),
  },
  {
    name: "operations.resolve-stuck",
    intervalMs: 5_000,
    run: (deps) => resolveStuckOperations(deps),
  },
  {
    name: "request-records.cleanup",
    intervalMs: 60_000,
    run: (deps) => deleteExpiredRequestRecords(deps.db, deps.clock.now()),
  },
];
