import type { Deps } from "~/server/infra/deps";
import { counterOf } from "~/server/infra/metrics";
import { writeAudit } from "~/server/audit/audit-log";
import { taggedKey } from "~/server/infra/redis-keys";
import { itemKeys, keysExpireAt, reconcileStock, sweepExpired, warmItem, type WarmItem } from "./inventory";
import { activitySelect, toActivityView, type ActivityView } from "./activity-view";

/**
 * Keeping Redis in step with Postgres, run by the worker (and on demand):
 * warm-up before a sale starts, the sweep of expired reservations, and the
 * reconciliation of stock counters. Postgres is the truth throughout.
 */

/** An item of a sale that is live or about to start, as Postgres has it. */
export type LiveItem = Omit<WarmItem, "left"> & { stock: number; sold: number };

/** Items of sales that start within the warm-up lead and have not ended (a minute's grace for the sweep). */
export async function liveItems(deps: Pick<Deps, "db" | "clock" | "env">, activityId?: string): Promise<LiveItem[]> {
  const now = deps.clock.nowMs();
  const rows = await deps.db.flashSaleItem.findMany({
    where: activityId
      ? { activityId }
      : { activity: { startsAt: { lte: new Date(now + deps.env.FLASH_SALE_WARMUP_LEAD_MS) }, endsAt: { gt: new Date(now - 60_000) } } },
    select: {
      id: true,
      activityId: true,
      pointsPrice: true,
      creditTypeId: true,
      stock: true,
      sold: true,
      activity: { select: { startsAt: true, endsAt: true, paused: true } },
    },
  });
  return rows.map((r) => ({
    itemId: r.id,
    activityId: r.activityId,
    startsAt: r.activity.startsAt,
    endsAt: r.activity.endsAt,
    paused: r.activity.paused,
    pointsPrice: r.pointsPrice,
    creditTypeId: r.creditTypeId,
    stock: r.stock,
    sold: r.sold,
  }));
}

/** Buyers of an item, loaded beside a counter that was (re)created, expiring with the item's other keys. */
async function loadBuyers(deps: Pick<Deps, "db" | "redis">, item: LiveItem): Promise<number> {
  const orders = await deps.db.flashSaleOrder.findMany({ where: { itemId: item.itemId }, select: { userId: true } });
  const key = itemKeys(item.itemId).buyers;
  for (let i = 0; i < orders.length; i += 1000) {
    await deps.redis.sadd(key, ...orders.slice(i, i + 1000).map((o) => o.userId));
  }
  if (orders.length > 0) await deps.redis.pexpireat(key, keysExpireAt(item.endsAt));
  return orders.length;
}

/**
 * Writes an item into Redis: window, pause, price always; the counter
 * (stock − sold) and buyers only when the counter is missing. Returns whether
 * the counter was created.
 */
export async function warmLiveItem(deps: Pick<Deps, "db" | "redis">, item: LiveItem): Promise<boolean> {
  const created = await warmItem(deps.redis, { ...item, left: item.stock - item.sold });
  if (created) await loadBuyers(deps, item);
  return created;
}

/** Warms every item of one activity now (a new activity, a pause or resume, a purchase that found it cold). */
export async function warmActivity(deps: Pick<Deps, "db" | "redis" | "clock" | "env">, activityId: string): Promise<number> {
  const items = await liveItems(deps, activityId);
  for (const item of items) await warmLiveItem(deps, item);
  await cacheActivities(deps, [activityId]);
  return items.length;
}

/** Where an activity's view is kept for `flashSale.activity` while the `flashSaleCacheOnly` switch is on. */
export const activityViewKey = (activityId: string): string => taggedKey("fs:activity", [activityId]);

/** Writes the activities' views to Redis (as Postgres has them now), to be read without Postgres. */
async function cacheActivities(deps: Pick<Deps, "db" | "redis" | "clock">, activityIds: readonly string[]): Promise<void> {
  if (activityIds.length === 0) return;
  const rows = await deps.db.flashSaleActivity.findMany({ where: { id: { in: [...activityIds] } }, select: activitySelect });
  const now = deps.clock.nowMs();
  await Promise.all(
    rows.map((row) => {
      const view: ActivityView = toActivityView(row, now);
      return deps.redis.set(activityViewKey(row.id), JSON.stringify(view), "PXAT", keysExpireAt(row.endsAt));
    }),
  );
}

function repairCounter(deps: Pick<Deps, "metrics">) {
  return counterOf(deps.metrics.registry, "fp_flash_sale_repairs_total", "Redis stock counters set right from Postgres, by kind (stock, rewarmed)", ["kind"] as const);
}

/** What the reconciliation found wrong and fixed, for the logs, the metric and the audit log. */
export type Repair = { itemId: string; activityId: string; kind: "stock" | "rewarmed"; before: number | null; after: number; live: number };

async function report(deps: Pick<Deps, "db" | "log" | "metrics">, repair: Repair): Promise<void> {
  repairCounter(deps).inc({ kind: repair.kind });
  deps.log.warn({ repair }, repair.kind === "rewarmed" ? "flash-sale item re-warmed from Postgres (Redis had lost it)" : "flash-sale stock counter repaired from Postgres");
  await deps.db.$transaction((tx) =>
    writeAudit(tx, {
      actor: { email: "system:reconciler", role: "system" },
      action: repair.kind === "rewarmed" ? "flashSale.rewarm" : "flashSale.reconcile",
      target: `item:${repair.itemId}`,
      reason: repair.kind === "rewarmed" ? "the item's counter was missing from Redis" : "Redis stock did not match Postgres (stock − sold − live reservations)",
      before: { redisStock: repair.before },
      after: { redisStock: repair.after, liveReservations: repair.live },
    }),
  );
}

/**
 * The worker's warm-up pass: every item of a sale within the lead is written
 * to Redis (window and pause kept current). A counter created for a sale that
 * should have been warm for a while means Redis lost it: re-warmed from
 * Postgres and reported.
 */
export async function warmDueItems(deps: Deps): Promise<Repair[]> {
  const now = deps.clock.nowMs();
  const repairs: Repair[] = [];
  const items = await liveItems(deps);
  for (const item of items) {
    if (item.endsAt.getTime() <= now) continue;
    const created = await warmLiveItem(deps, item);
    const shouldHaveBeenWarm = now - (item.startsAt.getTime() - deps.env.FLASH_SALE_WARMUP_LEAD_MS) > 5_000;
    if (created && shouldHaveBeenWarm) {
      const repair: Repair = { itemId: item.itemId, activityId: item.activityId, kind: "rewarmed", before: null, after: item.stock - item.sold, live: 0 };
      await report(deps, repair);
      repairs.push(repair);
    }
  }
  await cacheActivities(deps, [...new Set(items.map((i) => i.activityId))]);
  return repairs;
}

/** The worker's sweep: units of reservations that expired unconfirmed go back to stock. */
export async function sweepReservations(deps: Deps): Promise<number> {
  let returned = 0;
  for (const item of await liveItems(deps)) returned += await sweepExpired(deps.redis, item.itemId);
  if (returned > 0) counterOf(deps.metrics.registry, "fp_flash_sale_swept_total", "Expired reservations whose unit went back to stock", []).inc(returned);
  return returned;
}

/** How long a mismatch must persist before it is repaired (purchases in flight settle well within it). */
export const RECONCILE_SETTLE_MS = 300;

/**
 * The worker's reconciliation: for each warm item, Redis' counter against
 * Postgres' `stock − sold − live reservations`. A difference seen twice, a
 * moment apart, is real (not a purchase between its commit and its confirm):
 * Redis is set right and the repair reported.
 */
export async function reconcileItems(deps: Deps, opts: { settleMs?: number } = {}): Promise<Repair[]> {
  const repairs: Repair[] = [];
  const items = (await liveItems(deps)).filter((i) => i.endsAt.getTime() > deps.clock.nowMs());
  const suspects: LiveItem[] = [];
  for (const item of items) {
    const check = await reconcileStock(deps.redis, item.itemId, item.stock - item.sold, "check");
    if (check.redis !== null && check.redis !== check.expected) suspects.push(item);
  }
  if (suspects.length === 0) return repairs;
  await new Promise((r) => setTimeout(r, opts.settleMs ?? RECONCILE_SETTLE_MS));
  const fresh = new Map((await liveItems(deps)).map((i) => [i.itemId, i]));
  for (const suspect of suspects) {
    const item = fresh.get(suspect.itemId);
    if (!item) continue;
    const check = await reconcileStock(deps.redis, item.itemId, item.stock - item.sold, "repair");
    if (check.redis === null || check.redis === check.expected) continue;
    const repair: Repair = { itemId: item.itemId, activityId: item.activityId, kind: "stock", before: check.redis, after: check.expected, live: check.live };
    await report(deps, repair);
    repairs.push(repair);
  }
  return repairs;
}
