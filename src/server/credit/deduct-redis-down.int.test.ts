import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createTestDeps, closeDeps, uid } from "~/test/deps";
import { ensureCreditType, makeApiKey, postJson, startApi } from "~/test/api";
import type { Deps } from "~/server/infra/deps";
import type { RunningServer } from "~/server/http/server";
import { createFlashPointsClient, withRetry } from "~/client";
import { accountChecks, NO_RATE_LIMIT, startOwnRedis, type OwnRedis } from "./testing";

type Answer = { status: number; json: unknown; ms: number; kind: "grant" | "deduct"; businessId: string; startedAt: number };
type ErrorBody = { error: { data: { appCode: string } } };
type OkBody = { result: { data: { transactionId: string } } };

/** Typed answers a request may end with while Redis dies; anything else (INTERNAL, a hang) fails the test. */
const TYPED = new Set(["OPERATION_LOCKED", "VERSION_CONFLICT", "INSUFFICIENT_BALANCE", "UNAVAILABLE", "DUPLICATE_REQUEST_IN_FLIGHT"]);

describe("deductions while Redis is killed", () => {
  let own: OwnRedis;
  let deps: Deps;
  let api: RunningServer;
  let key: string;
  let creditTypeId: string;

  beforeAll(async () => {
    own = await startOwnRedis();
    deps = await createTestDeps({ REDIS_URL: own.url, DB_POOL_MAX: "24", ...NO_RATE_LIMIT });
    creditTypeId = await ensureCreditType(deps, "redis-down-points");
    api = await startApi(deps);
    key = await makeApiKey(deps);
  });

  afterAll(async () => {
    await api?.close();
    await closeDeps(deps);
    await own?.kill();
  });

  it("every request ends within 2 s in success or a typed error, and the books balance afterwards", async () => {
    const users = Array.from({ length: 6 }, () => uid("u"));
    for (const userId of users) {
      const r = await postJson(api.url, "credit.grant", { userId, creditTypeId, amount: 60, businessCode: "test.grant", businessId: uid("g") }, { authorization: `Bearer ${key}` });
      expect(r.status).toBe(200);
    }
    const answers: Answer[] = [];
    const stopAt = Date.now() + 3000;
    let n = 0;
    const worker = async () => {
      while (Date.now() < stopAt) {
        const i = n++;
        const userId = users[i % users.length]!;
        const kind = i % 7 === 0 ? "grant" : "deduct";
        const businessId = `${userId}-${i}`;
        const body = { userId, creditTypeId, amount: kind === "grant" ? 5 : 1 + (i % 4), businessCode: kind === "grant" ? "test.grant" : "order.pay", businessId };
        const t = Date.now();
        const r = await postJson(api.url, `credit.${kind}`, body, { authorization: `Bearer ${key}`, "x-request-id": uid("req") });
        answers.push({ status: r.status, json: r.json, ms: Date.now() - t, kind, businessId, startedAt: t });
      }
    };
    let killedAt = Infinity;
    const killer = new Promise<void>((resolve) =>
      setTimeout(() => {
        killedAt = Date.now();
        void own.kill("SIGKILL").then(resolve);
      }, 1000),
    );
    await Promise.all([...Array.from({ length: 12 }, worker), killer]);

    // Load on both sides of the kill (how much depends on the machine).
    expect(answers.filter((a) => a.startedAt < killedAt).length).toBeGreaterThanOrEqual(12);
    expect(answers.filter((a) => a.startedAt > killedAt + 100).length).toBeGreaterThanOrEqual(12);
    const slow = answers.filter((a) => a.ms > 2000);
    expect(slow.map((a) => `${a.ms}ms ${a.status}`)).toEqual([]);
    const codes = answers.filter((a) => a.status !== 200).map((a) => (a.json as ErrorBody).error?.data?.appCode ?? `HTTP ${a.status}`);
    expect(codes.filter((c) => !TYPED.has(c))).toEqual([]);
    expect(answers.filter((a) => a.status === 200).length).toBeGreaterThan(20);

    // The Postgres path alone carried on once Redis was gone, marked degraded.
    const degraded = await deps.metrics.registry.getSingleMetricAsString("fp_degraded_total");
    expect(degraded).toMatch(/component="lock"/);

    // Books: balance = credits − debits ≥ 0 for every account, and every success is in the ledger.
    const checks = await accountChecks(deps.db, users);
    expect(checks).toHaveLength(users.length);
    for (const c of checks) {
      expect(c.balance).toBe(c.credits - c.debits);
      expect(c.balance).toBeGreaterThanOrEqual(0);
      expect(c.minBalanceAfter).toBeGreaterThanOrEqual(0);
    }
    const okIds = answers.filter((a) => a.status === 200).map((a) => (a.json as OkBody).result.data.transactionId);
    expect(await deps.db.ledgerEntry.count({ where: { id: { in: okIds } } })).toBe(okIds.length);
    const failedKeys = answers.filter((a) => a.status !== 200).map((a) => a.businessId);
    expect(await deps.db.ledgerEntry.count({ where: { businessId: { in: failedKeys } } })).toBe(0);
  });

  it("without Redis, racing repeats of one business key still apply once", async () => {
    // Redis is dead since the test above: no lock, no marker, only Postgres.
    expect(deps.redis.status).not.toBe("ready");
    const fp = createFlashPointsClient({ url: api.url, apiKey: key });
    const userId = uid("u");
    await fp.credit.grant.mutate({ userId, creditTypeId, amount: 100, businessCode: "test.grant", businessId: uid("g") });
    const body = { userId, creditTypeId, amount: 9, businessCode: "order.pay", businessId: uid("o") };
    const results = await Promise.all(
      Array.from({ length: 20 }, () => withRetry((call) => fp.credit.deduct.mutate(body, call.options), { attempts: 50, maxDelayMs: 100 })),
    );
    expect(new Set(results.map((r) => r.transactionId)).size).toBe(1);
    expect(results.filter((r) => !r.idempotent)).toHaveLength(1);
    const [check] = await accountChecks(deps.db, [userId]);
    expect(check).toMatchObject({ balance: 91, debits: 9, ledgerRows: 2 });
  });
});
