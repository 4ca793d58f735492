import { randomBytes } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createTestDeps, closeDeps } from "~/test/deps";
import { ensureCreditType, makeApiKey, postJson, startApi } from "~/test/api";
import { createOwnDatabase } from "~/test/own-database";
import type { Deps } from "~/server/infra/deps";
import { waitForRedis } from "~/server/infra/redis";
import type { RunningServer } from "~/server/http/server";
import { grantCredits } from "~/server/credit/grant";
import { accountChecks, NO_RATE_LIMIT, startOwnRedis, type OwnRedis } from "~/server/credit/testing";
import { createActivity } from "./activities";
import { itemKeys, liveReservations } from "./inventory";
import { reconcileItems, warmDueItems } from "./warm-up";

/**
 * Redis, the sale's fast gate, SIGKILLed in the middle of a sale and started
 * again empty (a redis-server of the test's own): no unit is sold twice, the
 * sale is loaded again from Postgres and reported, purchases resume, and the
 * books and the counter agree with Postgres afterwards.
 */
describe("flash sale with Redis killed mid-sale", () => {
  let own: Awaited<ReturnType<typeof createOwnDatabase>>;
  let redis: OwnRedis;
  let deps: Deps;
  let api: RunningServer;
  let key: string;
  const creditTypeId = "points";

  beforeAll(async () => {
    own = await createOwnDatabase();
    redis = await startOwnRedis();
    deps = await createTestDeps({
      DATABASE_URL: own.databaseUrl,
      REDIS_URL: redis.url,
      REDIS_KEY_PREFIX: own.redisPrefix,
      ...NO_RATE_LIMIT,
      KEY_RATE_LIMIT_PER_SECOND: "1000000",
      KEY_RATE_LIMIT_BURST: "1000000",
      MAX_IN_FLIGHT: "5000",
      // The account lock waits no longer for a Redis that is gone.
      REDIS_COMMAND_TIMEOUT_MS: "200",
    });
    await ensureCreditType(deps, creditTypeId);
    api = await startApi(deps);
    key = await makeApiKey(deps);
  }, 60_000);

  afterAll(async () => {
    await api?.close();
    if (deps) await closeDeps(deps);
    await redis?.kill();
    await own?.dispose();
  });

  it("no oversell; the sale is re-warmed from Postgres and reported; purchases resume; counter and books agree", async () => {
    const now = Date.now();
    const activity = await createActivity(
      deps,
      {
        name: `redis drill ${randomBytes(3).toString("hex")}`,
        startsAt: new Date(now - 1_000),
        endsAt: new Date(now + 3_600_000),
        items: [{ name: "lamp", creditTypeId, pointsPrice: 50, stock: 120 }],
      },
      { actor: { email: "ops@test.local", role: "operator" } },
    );
    const itemId = activity.items[0]!.id;
    const tag = randomBytes(3).toString("hex");
    const users = Array.from({ length: 400 }, (_, i) => `rd-${tag}-${i}`);
    await Promise.all(users.map((userId) => grantCredits(deps, { userId, creditTypeId, amount: 200, businessCode: "test.grant", businessId: userId }, { principal: null, requestId: null })));
    const buy = (userId: string) =>
      postJson(api.url, "flashSale.purchase", { userId, activityId: activity.id, itemId }, { authorization: `Bearer ${key}` });
    const code = (r: { status: number; json: unknown }) =>
      r.status === 200 ? "ok" : ((r.json as { error?: { data?: { appCode?: string } } }).error?.data?.appCode ?? `http ${r.status}`);

    // Wave 1, with Redis killed while it runs.
    const wave1 = Promise.all(users.slice(0, 200).map(buy));
    await new Promise((r) => setTimeout(r, 30));
    await redis.kill("SIGKILL");
    const first = (await wave1).map(code);
    // Every call answered: a unit, or a typed error (the gate is down: retry).
    expect(first.filter((c) => !["ok", "SOLD_OUT", "UNAVAILABLE"].includes(c))).toEqual([]);
    expect(first).toContain("UNAVAILABLE");
    const soldBefore = (await deps.db.flashSaleItem.findUniqueOrThrow({ where: { id: itemId } })).sold;

    // While Redis is away nothing sells, and nothing is charged.
    const down = (await Promise.all(users.slice(200, 220).map(buy))).map(code);
    expect(new Set(down)).toEqual(new Set(["UNAVAILABLE"]));

    // Redis is back, empty. The worker's warm-up loads the sale from Postgres and reports it.
    await redis.restart();
    // The client reconnects with back-off; the worker's pass runs once it is back.
    expect(await waitForRedis(deps.redis, 10_000)).toBe(true);
    const repairs = await warmDueItems(deps);
    expect(repairs).toEqual([expect.objectContaining({ itemId, kind: "rewarmed", after: 120 - soldBefore })]);
    expect(await deps.db.auditLog.findFirst({ where: { action: "flashSale.rewarm", target: `item:${itemId}` } })).not.toBeNull();
    // The report as the sales page lists it (`flashSale.repairs`), by sale and in all.
    const reports = await fetch(`${api.url}/api/trpc/flashSale.repairs?input=${encodeURIComponent(JSON.stringify({ activityId: activity.id }))}`, {
      headers: { authorization: `Bearer ${key}` },
    });
    expect(reports.status).toBe(200);
    expect(((await reports.json()) as { result: { data: { items: unknown[] } } }).result.data.items).toEqual([
      expect.objectContaining({ kind: "rewarmed", itemId, itemName: "lamp", activityId: activity.id, before: null, after: 120 - soldBefore }),
    ]);
    expect(Number(await deps.redis.get(itemKeys(itemId).stock))).toBe(120 - soldBefore);

    // Everyone who has no order yet tries (again) until the sale is sold out.
    let pending = [...users];
    for (let round = 0; round < 10 && pending.length > 0; round++) {
      const answers = await Promise.all(pending.map(async (u) => ({ u, c: code(await buy(u)) })));
      pending = answers.filter((a) => a.c === "UNAVAILABLE").map((a) => a.u);
      if (pending.length > 0) await new Promise((r) => setTimeout(r, 200));
    }
    expect(pending).toEqual([]);

    const item = await deps.db.flashSaleItem.findUniqueOrThrow({ where: { id: itemId } });
    const orders = await deps.db.flashSaleOrder.findMany({ where: { itemId } });
    expect(item.sold).toBe(120);
    expect(orders).toHaveLength(120);
    expect(new Set(orders.map((o) => o.userId)).size).toBe(120);
    // Buyers paid once; nobody else paid; every account balances.
    const buyers = new Set(orders.map((o) => o.userId));
    const books = await accountChecks(deps.db, users);
    expect(books.filter((b) => b.balance !== (buyers.has(b.userId) ? 150 : 200) || b.balance !== b.credits - b.debits)).toEqual([]);
    // Redis agrees with Postgres (after the sweep of anything left held, reconciliation finds nothing to fix).
    expect(await liveReservations(deps.redis, itemId)).toBe(0);
    expect(Number(await deps.redis.get(itemKeys(itemId).stock))).toBe(0);
    expect((await reconcileItems(deps, { settleMs: 50 })).filter((r) => r.itemId === itemId)).toEqual([]);
  }, 120_000);
});
