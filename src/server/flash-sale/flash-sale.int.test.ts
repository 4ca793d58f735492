import { randomBytes } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createTestDeps, closeDeps } from "~/test/deps";
import { adminCaller, ensureCreditType, makeApiKey, postJson, serviceCaller, startApi } from "~/test/api";
import { createOwnDatabase } from "~/test/own-database";
import { burstFromOwnProcess, startServerProcess } from "~/test/server-process";
import type { Deps } from "~/server/infra/deps";
import { poolOf } from "~/server/infra/db";
import type { RunningServer } from "~/server/http/server";
import { grantCredits } from "~/server/credit/grant";
import { accountChecks, NO_RATE_LIMIT } from "~/server/credit/testing";
import { processDueRefunds } from "~/server/refund/refund-worker";
import { createActivity, type ActivityView } from "./activities";
import { itemKeys, reserveUnit } from "./inventory";
import { itemCache } from "./item-cache";
import { reconcileItems, sweepReservations, warmDueItems } from "./warm-up";
import { setSwitch } from "~/server/resilience/switches";

/**
 * Flash sales end to end on real PostgreSQL and Redis, in a database of the
 * file's own (the worker passes look at every live sale): the race for the
 * last units, the sold-out flood, failures after the debit, expired
 * reservations, reconciliation, the activity's life cycle.
 */
/** Every buyer of the race answered within this (see the test). */
const RACE_BOUND_MS = 5_000;

describe("flash sale", () => {
  let own: Awaited<ReturnType<typeof createOwnDatabase>>;
  let deps: Deps;
  let api: RunningServer;
  let key: string;
  const creditTypeId = "points";
  const internal = { principal: null, requestId: null };
  const operator = { actor: { email: "ops@test.local", role: "operator" } };

  beforeAll(async () => {
    own = await createOwnDatabase();
    deps = await createTestDeps({
      DATABASE_URL: own.databaseUrl,
      REDIS_KEY_PREFIX: own.redisPrefix,
      ...NO_RATE_LIMIT,
      KEY_RATE_LIMIT_PER_SECOND: "1000000",
      KEY_RATE_LIMIT_BURST: "1000000",
      DB_POOL_MAX: "20",
      // Every one of the 1,000 buyers is served (the default refuses calls past 16 × DB_POOL_MAX at once).
      MAX_IN_FLIGHT: "5000",
      FLASH_SALE_RESERVATION_TTL_MS: "1500",
      REFUND_BACKOFF_BASE_MS: "10",
    });
    await ensureCreditType(deps, creditTypeId);
    api = await startApi(deps);
    key = await makeApiKey(deps);
  }, 60_000);

  afterAll(async () => {
    await api?.close();
    if (deps) await closeDeps(deps);
    await own?.dispose();
  });

  async function sale(stock: number, opts: { price?: number; startsInMs?: number } = {}): Promise<{ activity: ActivityView; itemId: string }> {
    const starts = Date.now() + (opts.startsInMs ?? -1000);
    const activity = await createActivity(
      deps,
      {
        name: `sale ${randomBytes(3).toString("hex")}`,
        startsAt: new Date(starts),
        endsAt: new Date(starts + 3_600_000),
        items: [{ name: "headphones", creditTypeId, pointsPrice: opts.price ?? 100, stock }],
      },
      operator,
    );
    return { activity, itemId: activity.items[0]!.id };
  }

  async function buyers(n: number, points: number): Promise<string[]> {
    const tag = randomBytes(4).toString("hex");
    const users = Array.from({ length: n }, (_, i) => `buyer-${tag}-${i}`);
    await Promise.all(users.map((userId) => grantCredits(deps, { userId, creditTypeId, amount: points, businessCode: "test.grant", businessId: userId }, internal)));
    return users;
  }

  const buy = (userId: string, activityId: string, itemId: string, headers: Record<string, string> = {}) =>
    postJson(api.url, "flashSale.purchase", { userId, activityId, itemId }, { authorization: `Bearer ${key}`, ...headers });
  const appCode = (json: unknown) => (json as { error?: { data?: { appCode?: string } } }).error?.data?.appCode;

  it("1,000 buyers race for 100 units: exactly 100 orders, nobody else charged, all answered in time; the sold-out flood never reaches Postgres", async () => {
    const { activity, itemId } = await sale(100);
    const users = await buyers(1_000, 500);
    // The API as a process of its own, and the buyers from a client process of their own, on connections
    // opened beforehand (as a service's keep-alive pool has them).
    const server = await startServerProcess(deps, {
      DATABASE_URL: own.databaseUrl,
      ...NO_RATE_LIMIT,
      KEY_RATE_LIMIT_PER_SECOND: "1000000",
      KEY_RATE_LIMIT_BURST: "1000000",
      MAX_IN_FLIGHT: "5000",
      LOG_LEVEL: "warn",
    });
    let burst;
    try {
      burst = await burstFromOwnProcess({
        url: server.url,
        path: "/api/trpc/flashSale.purchase",
        headers: { authorization: `Bearer ${key}` },
        bodies: users.map((userId) => ({ userId, activityId: activity.id, itemId })),
        warm: { path: "/api/trpc/system.ping", body: {} },
      });
    } finally {
      server.stop();
    }
    const answers = burst.map((a) => {
      if (a.status === 0) throw new Error(`a buyer's call failed: ${a.body}\n${server.log().slice(-2000)}`);
      return { ...a, json: JSON.parse(a.body) as unknown, at: a.ms };
    });
    const slowest = Math.max(...answers.map((a) => a.at));
    const ok = answers.filter((a) => a.status === 200);
    const codes = answers.filter((a) => a.status !== 200).map((a) => appCode(a.json));
    expect(ok).toHaveLength(100);
    expect(new Set(codes)).toEqual(new Set(["SOLD_OUT"]));
    // `npm run bench` (flash-sale) holds the production build to 2 s on a quiet machine (1.0 s measured);
    // here the server runs from source while other test files share the two cores.
    expect(slowest).toBeLessThan(RACE_BOUND_MS);

    const item = await deps.db.flashSaleItem.findUniqueOrThrow({ where: { id: itemId } });
    expect(item).toMatchObject({ stock: 100, sold: 100 });
    const orders = await deps.db.flashSaleOrder.findMany({ where: { itemId } });
    expect(orders).toHaveLength(100);
    const winners = new Set(orders.map((o) => o.userId));
    const books = await accountChecks(deps.db, users);
    // Winners paid 100 once; everyone else is untouched; every account balances.
    expect(books.filter((b) => b.balance !== (winners.has(b.userId) ? 400 : 500) || b.balance !== b.credits - b.debits)).toEqual([]);
    expect(await deps.redis.get(itemKeys(itemId).stock)).toBe("0");

    // Sold out now: once a process has seen it (one call), more buyers are answered from its memory,
    // with no database work at all.
    const late = await buyers(200, 500);
    // As in a server, where the settings sync keeps live settings current (this test process runs none,
    // so the cache would reload itself every second).
    deps.settings.syncing = true;
    expect(appCode((await buy(users[0]!.replace(/-0$/, "-x"), activity.id, itemId)).json)).toBe("SOLD_OUT");
    // (Background refreshes that call may have started — the key's revocation check, live settings — settle first.)
    await new Promise((r) => setTimeout(r, 300));
    const pool = poolOf(deps.db);
    let checkouts = 0;
    const count = () => checkouts++;
    pool.on("acquire", count);
    try {
      checkouts = 0;
      const flood = await Promise.all(late.map((u) => buy(u, activity.id, itemId)));
      expect(flood.map((f) => appCode(f.json))).toEqual(late.map(() => "SOLD_OUT"));
      expect(checkouts).toBe(0);
    } finally {
      pool.off("acquire", count);
      deps.settings.syncing = false;
    }
    // A winner's repeat still finds their order.
    const winner = orders[0]!;
    const again = await buy(winner.userId, activity.id, itemId);
    expect(again.json).toMatchObject({ result: { data: { orderId: winner.id, transactionId: winner.transactionId, idempotent: true } } });
    expect(await deps.db.flashSaleOrder.count({ where: { itemId } })).toBe(100);
  }, 60_000);

  it("a naive read-then-write purchase without the gate oversells under the same race (the check above can fail)", async () => {
    const { itemId } = await sale(100);
    const orders: string[] = [];
    const users = Array.from({ length: 1_000 }, (_, i) => `naive-${i}`);
    await Promise.all(
      users.map(async (u) => {
        const [row] = await deps.db.$queryRaw<{ sold: number; stock: number }[]>`SELECT sold, stock FROM flash_sale_items WHERE id = ${itemId}`;
        if (row && row.sold < row.stock) {
          await new Promise((r) => setTimeout(r, 1));
          await deps.db.$executeRaw`UPDATE flash_sale_items SET sold = ${row.sold + 1} WHERE id = ${itemId}`;
          orders.push(u);
        }
      }),
    );
    expect(orders.length).toBeGreaterThan(100);
  }, 60_000);

  it("a buyer's repeat answers the first order; a buyer who cannot pay gets the unit back to stock", async () => {
    const { activity, itemId } = await sale(2, { price: 300 });
    const [rich, poor] = [...(await buyers(1, 1_000)), ...(await buyers(1, 10))];
    const first = await buy(rich!, activity.id, itemId);
    expect(first.status).toBe(200);
    const repeat = await buy(rich!, activity.id, itemId);
    expect((repeat.json as { result: { data: unknown } }).result.data).toEqual({
      ...(first.json as { result: { data: object } }).result.data,
      idempotent: true,
    });
    // The item's buyers expire with its other keys (a day after the sale), not never.
    const ttl = await deps.redis.pexpiretime(itemKeys(itemId).buyers);
    expect(ttl).toBe(await deps.redis.pexpiretime(itemKeys(itemId).stock));
    expect(ttl).toBeGreaterThan(Date.now());
    const refused = await buy(poor!, activity.id, itemId);
    expect(appCode(refused.json)).toBe("INSUFFICIENT_BALANCE");
    expect(await deps.redis.get(itemKeys(itemId).stock)).toBe("1");
    expect(await deps.db.flashSaleItem.findUniqueOrThrow({ where: { id: itemId } })).toMatchObject({ sold: 1 });
    const balances = new Map((await accountChecks(deps.db, [rich!, poor!])).map((b) => [b.userId, b.balance]));
    expect([balances.get(rich!), balances.get(poor!)]).toEqual([700, 10]);
  });

  it("flashSale.afterDebit: the purchase fails whole; the points come back exactly once through the refund worker and the unit returns", async () => {
    const { activity, itemId } = await sale(1, { price: 120 });
    const [user] = await buyers(1, 200);
    deps.failpoints.set("flashSale.afterDebit=error");
    let failed;
    try {
      failed = await buy(user!, activity.id, itemId);
    } finally {
      deps.failpoints.set(undefined);
    }
    expect(failed.status).toBe(503);
    expect(appCode(failed.json)).toBe("UNAVAILABLE");
    expect(await deps.db.flashSaleOrder.count({ where: { itemId } })).toBe(0);
    expect(await deps.db.flashSaleItem.findUniqueOrThrow({ where: { id: itemId } })).toMatchObject({ sold: 0 });
    expect(await deps.redis.get(itemKeys(itemId).stock)).toBe("1");
    const refund = await deps.db.refund.findFirstOrThrow({ where: { userId: user! } });
    expect(refund).toMatchObject({ status: "PENDING", amount: 120n });

    // The worker gives the points back; a second pass finds nothing more to do.
    for (let i = 0; i < 2; i++) await processDueRefunds(deps);
    expect(await deps.db.refund.findFirstOrThrow({ where: { id: refund.id } })).toMatchObject({ status: "SUCCEEDED" });
    expect((await accountChecks(deps.db, [user!]))[0]).toMatchObject({ balance: 200, debits: 120, credits: 320 });

    // The unit is for sale again, and the same buyer may buy it.
    const again = await buy(user!, activity.id, itemId);
    expect(again.status).toBe(200);
    expect((await accountChecks(deps.db, [user!]))[0]).toMatchObject({ balance: 80 });
  });

  it("a reservation whose holder died is swept after its TTL and the unit sold again", async () => {
    const { activity, itemId } = await sale(1);
    const [other] = await buyers(1, 500);
    // A buyer took the last unit and vanished before paying.
    expect(await reserveUnit(deps.redis, itemId, "ghost", deps.env.FLASH_SALE_RESERVATION_TTL_MS)).toMatchObject({ kind: "reserved", left: 0 });
    expect(appCode((await buy(other!, activity.id, itemId)).json)).toBe("SOLD_OUT");
    await new Promise((r) => setTimeout(r, deps.env.FLASH_SALE_RESERVATION_TTL_MS + 100));
    expect(await sweepReservations(deps)).toBeGreaterThanOrEqual(1);
    // This process saw it sold out; its next refresh (within a second) sees the unit back.
    await new Promise((r) => setTimeout(r, 1_100));
    const bought = await buy(other!, activity.id, itemId);
    expect(bought.status).toBe(200);
    expect(await deps.db.flashSaleItem.findUniqueOrThrow({ where: { id: itemId } })).toMatchObject({ sold: 1 });
  });

  it("reconciliation sets a wrong Redis counter right from Postgres and reports it (log, metric, audit)", async () => {
    const { itemId } = await sale(10);
    await deps.redis.set(itemKeys(itemId).stock, "57");
    const repairs = await reconcileItems(deps, { settleMs: 50 });
    expect(repairs).toContainEqual(expect.objectContaining({ itemId, kind: "stock", before: 57, after: 10 }));
    expect(await deps.redis.get(itemKeys(itemId).stock)).toBe("10");
    expect(await deps.db.auditLog.findFirst({ where: { target: `item:${itemId}`, action: "flashSale.reconcile" } })).toMatchObject({
      actor: "system:reconciler",
      before: { redisStock: 57 },
    });
    expect(await deps.metrics.registry.getSingleMetricAsString("fp_flash_sale_repairs_total")).toMatch(/kind="stock"\} [1-9]/);
    // Nothing wrong, nothing done.
    expect((await reconcileItems(deps, { settleMs: 50 })).filter((r) => r.itemId === itemId)).toEqual([]);
  });

  it("flashSaleCacheOnly: the activity is read from Redis with live availability, never from Postgres; purchases go on", async () => {
    const { activity, itemId } = await sale(7);
    const [user] = await buyers(1, 1_000);
    await warmDueItems(deps);
    await setSwitch(deps, { name: "flashSaleCacheOnly", on: true, reason: "database under pressure" }, operator);
    const pool = poolOf(deps.db);
    let checkouts = 0;
    const count = () => checkouts++;
    try {
      const service = await serviceCaller(deps);
      expect((await buy(user!, activity.id, itemId)).status).toBe(200);
      await service.flashSale.activity({ activityId: activity.id }); // the key is known from here on
      pool.on("acquire", count);
      const view = await service.flashSale.activity({ activityId: activity.id });
      expect(view).toMatchObject({ id: activity.id, status: "ACTIVE", items: [{ id: itemId, stock: 7, available: 6 }] });
      expect(checkouts).toBe(0);
      await expect(service.flashSale.activity({ activityId: "not-cached" })).rejects.toMatchObject({ cause: { code: "DEGRADED" } });
    } finally {
      pool.off("acquire", count);
      await setSwitch(deps, { name: "flashSaleCacheOnly", on: false, reason: "recovered" }, operator);
    }
  });

  it("an activity's life: scheduled (with the wait), paused and resumed by an operator (audited), ended; reads for viewers and keys; bad input refused", async () => {
    const { activity, itemId } = await sale(5, { startsInMs: 1_500 });
    expect(activity.status).toBe("SCHEDULED");
    const [user] = await buyers(1, 1_000);
    const early = await buy(user!, activity.id, itemId);
    expect(appCode(early.json)).toBe("ACTIVITY_NOT_ACTIVE");
    const wait = (early.json as { error: { data: { retryAfterMs: number } } }).error.data.retryAfterMs;
    expect(wait).toBeGreaterThan(0);
    expect(wait).toBeLessThanOrEqual(1_500);

    const { caller: ops } = await adminCaller(deps, "operator");
    const { caller: viewer } = await adminCaller(deps, "viewer");
    await expect(viewer.flashSale.pause({ activityId: activity.id, reason: "stock count" })).rejects.toMatchObject({ code: "FORBIDDEN" });
    expect(await ops.flashSale.pause({ activityId: activity.id, reason: "stock count wrong" })).toMatchObject({ status: "PAUSED", pausedReason: "stock count wrong" });
    await new Promise((r) => setTimeout(r, 1_600));
    itemCache(deps).clear();
    expect(appCode((await buy(user!, activity.id, itemId)).json)).toBe("ACTIVITY_NOT_ACTIVE");
    expect(await ops.flashSale.resume({ activityId: activity.id, reason: "recounted" })).toMatchObject({ status: "ACTIVE" });
    itemCache(deps).clear();
    expect((await buy(user!, activity.id, itemId)).status).toBe(200);
    const audit = await deps.db.auditLog.findMany({ where: { target: `activity:${activity.id}` }, orderBy: { createdAt: "asc" } });
    expect(audit.map((a) => a.action)).toEqual(["flashSale.createActivity", "flashSale.pause", "flashSale.resume"]);

    expect(await viewer.flashSale.activity({ activityId: activity.id })).toMatchObject({ status: "ACTIVE", items: [{ id: itemId, stock: 5, sold: 1, available: 4 }] });
    const service = await serviceCaller(deps);
    const active = await service.flashSale.list({ status: "ACTIVE", limit: 100 });
    expect(active.items.map((a) => a.id)).toContain(activity.id);
    await expect(service.flashSale.activity({ activityId: "nope" })).rejects.toMatchObject({ code: "NOT_FOUND" });
    expect(appCode((await buy(user!, activity.id, "no-such-item")).json)).toBe("ITEM_NOT_FOUND");
    // A key with the catalog scope creates; bad windows, empty sales and unknown credit types are refused.
    const plain = await serviceCaller(deps);
    const input = { name: "x", startsAt: new Date().toISOString(), endsAt: new Date(Date.now() + 60_000).toISOString(), items: [{ name: "a", creditTypeId, pointsPrice: 1, stock: 1 }] };
    await expect(plain.flashSale.createActivity({ ...input, endsAt: input.startsAt })).rejects.toMatchObject({ code: "BAD_REQUEST" });
    await expect(plain.flashSale.createActivity({ ...input, items: [{ ...input.items[0]!, creditTypeId: "nope" }] })).rejects.toMatchObject({ code: "NOT_FOUND" });
    await expect(plain.flashSale.createActivity({ ...input, items: [] })).rejects.toMatchObject({ code: "BAD_REQUEST" });
  });
});
