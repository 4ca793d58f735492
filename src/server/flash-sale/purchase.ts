import { randomUUID } from "node:crypto";
import type { Deps } from "~/server/infra/deps";
import { AppError } from "~/server/infra/app-error";
import { counterOf, type Metrics } from "~/server/infra/metrics";
import { isRedisUnavailable, redisUnavailable } from "~/server/infra/redis";
import { sqlOf } from "~/server/infra/sql";
import { balanceEngine } from "~/server/credit/balance-engine";
import type { PurchaseOutcome } from "~/server/credit/results";
import type { CallerInfo } from "~/server/credit/types";
import { enqueueRefund } from "~/server/refund/refund-queue";
import { activityStatus } from "./activities";
import { confirmUnit, releaseUnit, reserveUnit } from "./inventory";
import { itemCache, type CachedItem } from "./item-cache";
import { Histogram } from "prom-client";

/** What `flashSale.purchase` answers (docs/api.md). */
export type PurchaseResult = { orderId: string; transactionId: string; operationId: string; pointsPaid: number; idempotent: boolean };

export type PurchaseRequest = { userId: string; activityId: string; itemId: string };

/** The business code of a purchase's debit; its business id is the order id. */
export const PURCHASE_BUSINESS_CODE = "flashSale.purchase";

function purchaseMetrics(metrics: Metrics) {
  const registry = metrics.registry;
  const histogram = (name: string, help: string) =>
    (registry.getSingleMetric(name) as Histogram | undefined) ??
    new Histogram({ name, help, buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5], registers: [registry] });
  return {
    outcomes: counterOf(registry, "fp_flash_sale_purchases_total", "flashSale.purchase by outcome (ordered, repeat, or the appCode)", ["outcome"] as const),
    reserveSeconds: histogram("fp_flash_sale_reserve_seconds", "The Redis gate's reservation call"),
    orderSeconds: histogram("fp_flash_sale_order_seconds", "From reservation to committed order (the debit, the order and sold + 1 in one transaction)"),
  };
}

/**
 * Answers what the process already knows, without Redis or Postgres: an
 * item this process saw sold out (unless the buyer has an order for it),
 * an activity outside its window or paused, an item of another activity.
 * Null: the purchase has to go to the gate. Called before admission control,
 * so the sold-out flood costs no rate-limit or breaker call either.
 */
export async function answerFromCache(deps: Deps, req: PurchaseRequest): Promise<AppError | null> {
  const item = await itemCache(deps).get(req.itemId).catch(() => null);
  if (!item) return null;
  const refusal = refusalOf(item, req, deps.clock.nowMs() + item.clockOffsetMs);
  if (refusal) return refusal;
  if (item.soldOut && !item.knownBuyers.has(req.userId)) return new AppError("SOLD_OUT", "this item is sold out");
  return null;
}

function refusalOf(item: CachedItem, req: PurchaseRequest, now: number): AppError | null {
  if (item.activityId !== req.activityId) return new AppError("ITEM_NOT_FOUND", `activity ${req.activityId} has no item ${req.itemId}`);
  const status = activityStatus(item, now);
  if (status === "SCHEDULED") {
    return new AppError("ACTIVITY_NOT_ACTIVE", "the sale has not started yet", { retryAfterMs: Math.max(1, item.startsAt - now) });
  }
  if (status === "PAUSED") return new AppError("ACTIVITY_NOT_ACTIVE", "the sale is paused");
  if (status === "ENDED") return new AppError("ACTIVITY_NOT_ACTIVE", "the sale has ended");
  return null;
}

/**
 * One flash-sale purchase:
 *
 *   1. the item from this process' cache (no database read);
 *   2. the gate: one Lua call reserves a unit (window, pause, one per buyer,
 *      stock > 0) for FLASH_SALE_RESERVATION_TTL_MS; sold out ends here;
 *   3. the balance engine: the debit, the order and the item's sold + 1 in
 *      one transaction (`CHECK (sold <= stock)` and one order per buyer and
 *      item are the last line);
 *   4. the reservation confirmed.
 *
 * It fails whole or succeeds whole: a refusal (balance, stock in Postgres)
 * gives the unit back; a failure after the debit committed cancels the order,
 * queues the refund of the debit in the same transaction that records the
 * failure, and gives the unit back. A buyer's repeat answers their order with
 * `idempotent: true`.
 */
export async function purchase(deps: Deps, req: PurchaseRequest, caller: CallerInfo): Promise<PurchaseResult> {
  const metrics = purchaseMetrics(deps.metrics);
  try {
    const result = await purchaseOnce(deps, req, caller, metrics);
    metrics.outcomes.inc({ outcome: result.idempotent ? "repeat" : "ordered" });
    return result;
  } catch (e) {
    metrics.outcomes.inc({ outcome: e instanceof AppError ? e.code : "INTERNAL" });
    throw e;
  }
}

async function purchaseOnce(deps: Deps, req: PurchaseRequest, caller: CallerInfo, metrics: ReturnType<typeof purchaseMetrics>): Promise<PurchaseResult> {
  const cache = itemCache(deps);
  const item = await cache.get(req.itemId).catch((e: unknown) => {
    throw isRedisUnavailable(e) ? redisUnavailable(e) : e;
  });
  if (!item) {
    const activity = await deps.db.flashSaleActivity.findUnique({ where: { id: req.activityId }, select: { id: true } });
    throw activity ? new AppError("ITEM_NOT_FOUND", `no item ${req.itemId}`) : new AppError("ACTIVITY_NOT_FOUND", `no activity ${req.activityId}`);
  }
  const refusal = refusalOf(item, req, deps.clock.nowMs() + item.clockOffsetMs);
  if (refusal) throw refusal;
  // Flagged while this call waited for admission: no need to ask the gate.
  if (item.soldOut && !item.knownBuyers.has(req.userId)) throw new AppError("SOLD_OUT", "this item is sold out");

  const stop = metrics.reserveSeconds.startTimer();
  const gate = await reserveUnit(deps.redis, req.itemId, req.userId, deps.env.FLASH_SALE_RESERVATION_TTL_MS)
    .catch((e: unknown) => {
      throw isRedisUnavailable(e) ? redisUnavailable(e) : e;
    })
    .finally(stop);
  switch (gate.kind) {
    case "soldOut":
      cache.markSoldOut(req.itemId);
      throw new AppError("SOLD_OUT", "this item is sold out");
    case "notWarmed":
      // Redis lost the item since the cache read it: re-warmed on the next read.
      cache.clear();
      throw new AppError("UNAVAILABLE", "the sale is being loaded; retry shortly", { retryAfterMs: 200 });
    case "paused":
      throw new AppError("ACTIVITY_NOT_ACTIVE", "the sale is paused");
    case "notStarted":
      throw new AppError("ACTIVITY_NOT_ACTIVE", "the sale has not started yet", { retryAfterMs: Math.max(1, gate.msToStart) });
    case "ended":
      throw new AppError("ACTIVITY_NOT_ACTIVE", "the sale has ended");
    case "boughtAlready":
      return existingOrder(deps, req);
    case "held":
      throw new AppError("DUPLICATE_REQUEST_IN_FLIGHT", "a purchase of this item by this buyer is under way; retry shortly", {
        retryAfterMs: Math.min(gate.msLeft, 500),
      });
    case "reserved":
      break;
  }

  const orderId = randomUUID();
  const stopOrder = metrics.orderSeconds.startTimer();
  const outcome = await balanceEngine(deps).submit(
    {
      type: "DEBIT",
      operationType: "flashSale.purchase",
      eventType: "flashSale.ordered",
      request: { userId: req.userId, creditTypeId: item.creditTypeId, amount: item.price, businessCode: PURCHASE_BUSINESS_CODE, businessId: orderId },
      // No X-Request-Id record in the debit's transaction: until the step below
      // has passed, the purchase can still be undone (cancelPurchase), and a
      // repeat of the id arriving in between would be served that record — a
      // success taken back a moment later. The replay middleware records the
      // answer once it is final. A purchase needs no record to apply once: one
      // order per buyer and item is a unique key, and a retry after a crash
      // finds the order and answers it.
      caller: { ...caller, record: null },
      purchase: { orderId, activityId: req.activityId, itemId: req.itemId },
    },
    { waitMs: Math.max(deps.env.LOCK_WAIT_MS, deps.env.DB_TX_TIMEOUT_MS) },
  );
  stopOrder();
  if (!outcome.ok) {
    await giveBack(deps, req);
    if (outcome.error.code === "SOLD_OUT") cache.markSoldOut(req.itemId);
    throw outcome.error;
  }
  const order = outcome.result as PurchaseOutcome;
  if (order.idempotent) {
    // The buyer had this order already (Redis did not know): the unit is not taken twice.
    await giveBack(deps, req);
    return view(order, true);
  }
  try {
    await deps.failpoints.hit("flashSale.afterDebit");
  } catch (e) {
    await cancelPurchase(deps, req, order, e);
    throw new AppError("UNAVAILABLE", "the purchase could not be completed; the points paid are being refunded", { retryAfterMs: 1000, cause: e });
  }
  // Postgres has the order: a confirm that fails is repaired by the sweep and reconciliation.
  await confirmUnit(deps.redis, req.itemId, req.userId).catch((err: unknown) =>
    deps.log.warn({ err, itemId: req.itemId, orderId }, "could not confirm a reservation; the reconciliation will set the stock right"),
  );
  cache.addBuyer(req.itemId, req.userId);
  return view(order, false);
}

function view(o: PurchaseOutcome, idempotent: boolean): PurchaseResult {
  return { orderId: o.orderId, transactionId: o.transactionId, operationId: o.operationId, pointsPaid: o.pointsPaid, idempotent };
}

async function giveBack(deps: Deps, req: PurchaseRequest): Promise<void> {
  await releaseUnit(deps.redis, req.itemId, req.userId).catch((err: unknown) =>
    deps.log.warn({ err, itemId: req.itemId }, "could not release a reservation; it expires and is swept"),
  );
}

/** The buyer's order for the item, as a repeat answers it. */
async function existingOrder(deps: Deps, req: PurchaseRequest): Promise<PurchaseResult> {
  const order = await deps.db.flashSaleOrder.findUnique({
    where: { userId_itemId: { userId: req.userId, itemId: req.itemId } },
    select: { id: true, transactionId: true, operationId: true, pointsPaid: true, activityId: true },
  });
  if (!order || order.activityId !== req.activityId) {
    // Redis believed in an order Postgres does not have (it was cancelled): let the buyer try again.
    throw new AppError("UNAVAILABLE", "the sale's state is being repaired; retry shortly", { retryAfterMs: 500 });
  }
  return {
    orderId: order.id,
    transactionId: order.transactionId,
    operationId: order.operationId ?? order.transactionId,
    pointsPaid: Number(order.pointsPaid),
    idempotent: true,
  };
}

/**
 * A purchase that failed after its debit committed: in one transaction, the
 * order goes, the unit is unsold, the debit's refund is queued (the refund
 * worker gives the points back exactly once) and the operation records the
 * failure (the X-Request-Id has no record yet: a retry runs again). Then the
 * unit goes back to Redis.
 * If this transaction cannot commit, the purchase stands as it committed.
 */
async function cancelPurchase(deps: Deps, req: PurchaseRequest, order: PurchaseOutcome, cause: unknown): Promise<void> {
  const now = deps.clock.now();
  const reason = cause instanceof Error ? cause.message : String(cause);
  await sqlOf(deps.db).transaction(async (q) => {
    const removed = await q(`DELETE FROM flash_sale_orders WHERE id = $1::uuid AND user_id = $3 AND transaction_id = $2::uuid RETURNING id`, [
      order.orderId,
      order.transactionId,
      req.userId,
    ]);
    if (removed.length === 0) throw new Error(`order ${order.orderId} is not there to cancel`);
    await q(`UPDATE flash_sale_items SET sold = sold - 1, version = version + 1 WHERE id = $1`, [req.itemId]);
    await enqueueRefund(
      q,
      {
        debitId: order.transactionId,
        userId: req.userId,
        reason: "flash-sale purchase failed after its debit",
        context: { orderId: order.orderId, activityId: req.activityId, itemId: req.itemId, operationId: order.operationId },
      },
      now,
    );
    await q(
      `UPDATE operations SET status = 'failed', result = NULL, error_code = 'UNAVAILABLE', error_message = $2, finished_at = $3
        WHERE id = $1::uuid AND user_id = $4`,
      [order.operationId, `the purchase failed after its debit (${reason.slice(0, 300)}); the points are refunded`, now, req.userId],
    );
  }).catch((err: unknown) => {
    deps.log.error({ err, orderId: order.orderId }, "could not cancel a purchase that failed after its debit; the order stands");
    throw err;
  });
  await giveBack(deps, req);
  deps.log.warn({ orderId: order.orderId, itemId: req.itemId, userId: req.userId, err: cause }, "purchase failed after its debit: order cancelled, refund queued");
}
