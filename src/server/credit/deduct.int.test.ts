import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createTestDeps, closeDeps, uid } from "~/test/deps";
import { ensureCreditType, makeApiKey, serviceCaller, startApi } from "~/test/api";
import type { Deps } from "~/server/infra/deps";
import type { RunningServer } from "~/server/http/server";
import { createFlashPointsClient, isFlashPointsError, withRetry, type FlashPointsClient } from "~/client";
import { accountChecks, NO_RATE_LIMIT } from "./testing";

type Caller = Awaited<ReturnType<typeof serviceCaller>>;

describe("credit.deduct", () => {
  let deps: Deps;
  let caller: Caller;
  let api: RunningServer;
  let fp: FlashPointsClient;
  let creditTypeId: string;

  beforeAll(async () => {
    deps = await createTestDeps({ DB_POOL_MAX: "20", ...NO_RATE_LIMIT });
    creditTypeId = await ensureCreditType(deps, "deduct-points");
    caller = await serviceCaller(deps);
    api = await startApi(deps);
    fp = createFlashPointsClient({ url: api.url, apiKey: await makeApiKey(deps) });
  });

  afterAll(async () => {
    deps.failpoints.set(undefined);
    await api?.close();
    await closeDeps(deps);
  });

  const grant = (userId: string, amount: number) =>
    caller.credit.grant({ userId, creditTypeId, amount, businessCode: "test.grant", businessId: uid("g") });

  it("debits, writes a ledger row and an outbox event, and answers as docs/api.md says", async () => {
    const userId = uid("u");
    await grant(userId, 100);
    const businessId = uid("order");
    const res = await caller.credit.deduct({ userId, creditTypeId, amount: 30, businessCode: "order.pay", businessId });
    expect(res).toEqual({
      success: true,
      idempotent: false,
      transactionId: expect.any(String),
      operationId: expect.any(String),
      balanceAfter: 70,
    });
    expect(Object.keys(res).sort()).toEqual(["balanceAfter", "idempotent", "operationId", "success", "transactionId"]);
    const account = await caller.credit.account({ userId, creditTypeId });
    expect(account).toMatchObject({ balance: 70, version: 2 });
    const entry = await deps.db.ledgerEntry.findFirstOrThrow({ where: { id: res.transactionId } });
    expect(entry).toMatchObject({ type: "DEBIT", amount: 30n, balanceAfter: 70n, operationId: res.operationId });
    const events = await deps.db.outboxEvent.findMany({ where: { userId, type: "credit.deducted" } });
    expect(events).toHaveLength(1);
    expect(events[0]?.payload).toMatchObject({ transactionId: res.transactionId, balanceAfter: 70, amount: 30 });
    const op = await deps.db.operation.findFirstOrThrow({ where: { id: res.operationId } });
    expect(op).toMatchObject({ type: "credit.deduct", status: "completed", businessId });
  });

  it("refuses what it cannot do, changes nothing, and marks the operation failed with the appCode", async () => {
    const userId = uid("u");
    await expect(
      caller.credit.deduct({ userId, creditTypeId, amount: 1, businessCode: "order.pay", businessId: uid("o") }),
    ).rejects.toMatchObject({ code: "NOT_FOUND", cause: { code: "ACCOUNT_NOT_FOUND" } });

    await grant(userId, 10);
    const businessId = uid("o");
    await expect(
      caller.credit.deduct({ userId, creditTypeId, amount: 11, businessCode: "order.pay", businessId }),
    ).rejects.toMatchObject({ code: "UNPROCESSABLE_CONTENT", cause: { code: "INSUFFICIENT_BALANCE" } });
    expect(await caller.credit.account({ userId, creditTypeId })).toMatchObject({ balance: 10, version: 1 });
    const op = await deps.db.operation.findFirstOrThrow({ where: { businessId } });
    expect(op).toMatchObject({ status: "failed", errorCode: "INSUFFICIENT_BALANCE" });

    // The same key with other values is refused, the first result stands.
    const ok = await caller.credit.deduct({ userId, creditTypeId, amount: 4, businessCode: "order.pay", businessId });
    expect(ok.balanceAfter).toBe(6);
    await expect(
      caller.credit.deduct({ userId, creditTypeId, amount: 5, businessCode: "order.pay", businessId }),
    ).rejects.toMatchObject({ cause: { code: "IDEMPOTENCY_KEY_REUSED" } });
    // A grant under a debit's key is another operation, too.
    await expect(
      caller.credit.grant({ userId, creditTypeId, amount: 4, businessCode: "order.pay", businessId }),
    ).rejects.toMatchObject({ cause: { code: "IDEMPOTENCY_KEY_REUSED" } });
    expect(await caller.credit.account({ userId, creditTypeId })).toMatchObject({ balance: 6 });

    await expect(
      caller.credit.deduct({ userId, creditTypeId, amount: 0, businessCode: "order.pay", businessId: uid("o") }),
    ).rejects.toMatchObject({ code: "BAD_REQUEST" });
  });

  it("300 concurrent deductions on one account covering 200: exactly 200 apply, never below zero, no 500s", async () => {
    const userId = uid("hot");
    await grant(userId, 200);
    const outcomes = await Promise.all(
      Array.from({ length: 300 }, (_, i) =>
        withRetry(
          (call) =>
            fp.credit.deduct.mutate(
              { userId, creditTypeId, amount: 1, businessCode: "flash.buy", businessId: `${userId}-${i}` },
              call.options,
            ),
          // Honour the server's hint: it grows with the queue in front of the account.
          { attempts: 200, maxDelayMs: 5000 },
        ).then(
          (r) => ({ ok: true as const, r }),
          (e: unknown) => ({ ok: false as const, e }),
        ),
      ),
    );
    const failures = outcomes.flatMap((o) => (o.ok ? [] : [o.e]));
    const codes = failures.map((e) => (isFlashPointsError(e) ? e.data.appCode : String(e)));
    expect(codes.filter((c) => c !== "INSUFFICIENT_BALANCE")).toEqual([]);
    expect(outcomes.filter((o) => o.ok)).toHaveLength(200);
    expect(failures).toHaveLength(100);
    const balances = outcomes.flatMap((o) => (o.ok ? [o.r.balanceAfter] : []));
    // Each applied deduction saw its own balance: 199 … 0, each exactly once.
    expect(balances.sort((a, b) => a - b)).toEqual(Array.from({ length: 200 }, (_, i) => i));

    const [check] = await accountChecks(deps.db, [userId]);
    expect(check).toMatchObject({ balance: 0, credits: 200, debits: 200, ledgerRows: 201 });
    expect(check!.minBalanceAfter).toBeGreaterThanOrEqual(0);
  });

  it("60 concurrent repeats of one business key: one ledger row, every answer the same transaction", async () => {
    const userId = uid("u");
    await grant(userId, 1000);
    const body = { userId, creditTypeId, amount: 7, businessCode: "coupon.grab", businessId: uid("c") };
    const results = await Promise.all(
      Array.from({ length: 60 }, () =>
        withRetry((call) => fp.credit.deduct.mutate(body, call.options), { attempts: 100, maxDelayMs: 200 }),
      ),
    );
    const txIds = new Set(results.map((r) => r.transactionId));
    expect(txIds.size).toBe(1);
    expect(results.filter((r) => !r.idempotent)).toHaveLength(1);
    expect(results.filter((r) => r.idempotent)).toHaveLength(59);
    expect(new Set(results.map((r) => r.balanceAfter))).toEqual(new Set([993]));
    const rows = await deps.db.ledgerEntry.count({ where: { businessCode: body.businessCode, businessId: body.businessId } });
    expect(rows).toBe(1);
    expect((await caller.credit.account({ userId, creditTypeId })).balance).toBe(993);
    const ops = await deps.db.operation.groupBy({ by: ["status"], where: { businessId: body.businessId }, _count: true });
    expect(Object.fromEntries(ops.map((o) => [o.status, o._count]))).toMatchObject({ completed: 1, skipped: 59 });
  });

  it("stays correct when the lock expires mid-operation", async () => {
    // A lock TTL shorter than the transaction: the second request takes the lock
    // while the first still holds the row; the versioned update decides.
    const short = await createTestDeps({ LOCK_TTL_MS: "100", LOCK_WAIT_MS: "400", ...NO_RATE_LIMIT });
    try {
      const c = await serviceCaller(short);
      const userId = uid("u");
      await c.credit.grant({ userId, creditTypeId, amount: 10, businessCode: "test.grant", businessId: uid("g") });
      short.failpoints.set("credit.beforeCommit=delay:600");
      const started = Date.now();
      const results = await Promise.allSettled(
        [0, 1, 2].map((i) =>
          c.credit.deduct({ userId, creditTypeId, amount: 6, businessCode: "order.pay", businessId: `${userId}-${i}` }),
        ),
      );
      short.failpoints.set(undefined);
      const codes = results.map((r) => (r.status === "fulfilled" ? "ok" : (r.reason as { cause?: { code?: string } }).cause?.code));
      // Had the lock held for the whole 600 ms, the others would wait 400 ms and get OPERATION_LOCKED.
      expect(codes.sort()).toEqual(["INSUFFICIENT_BALANCE", "INSUFFICIENT_BALANCE", "ok"]);
      expect(Date.now() - started).toBeGreaterThanOrEqual(600);
      const [check] = await accountChecks(short.db, [userId]);
      expect(check).toMatchObject({ balance: 4, credits: 10, debits: 6, ledgerRows: 2 });
    } finally {
      short.failpoints.set(undefined);
      await closeDeps(short);
    }
  });

  it("answers OPERATION_LOCKED with a retry hint when the account stays busy past the lock wait", async () => {
    const quick = await createTestDeps({ LOCK_WAIT_MS: "100", ...NO_RATE_LIMIT });
    try {
      const c = await serviceCaller(quick);
      const userId = uid("u");
      await c.credit.grant({ userId, creditTypeId, amount: 10, businessCode: "test.grant", businessId: uid("g") });
      quick.failpoints.set("credit.beforeCommit=delay:500");
      const [first, second] = await Promise.allSettled([
        c.credit.deduct({ userId, creditTypeId, amount: 1, businessCode: "order.pay", businessId: uid("o") }),
        new Promise((r) => setTimeout(r, 50)).then(() =>
          c.credit.deduct({ userId, creditTypeId, amount: 1, businessCode: "order.pay", businessId: uid("o") }),
        ),
      ]);
      quick.failpoints.set(undefined);
      expect(first.status).toBe("fulfilled");
      expect(second).toMatchObject({ status: "rejected", reason: { code: "CONFLICT", cause: { code: "OPERATION_LOCKED" } } });
      const retryAfter = ((second as PromiseRejectedResult).reason as { cause: { retryAfterMs?: number } }).cause.retryAfterMs;
      expect(retryAfter).toBeGreaterThan(0);
      expect((await c.credit.account({ userId, creditTypeId })).balance).toBe(9);
    } finally {
      quick.failpoints.set(undefined);
      await closeDeps(quick);
    }
  });

  it("a rolled-back transaction (credit.beforeCommit=error) leaves no trace but a failed operation", async () => {
    const userId = uid("u");
    await grant(userId, 10);
    const businessId = uid("o");
    deps.failpoints.set("credit.beforeCommit=error");
    try {
      await expect(
        caller.credit.deduct({ userId, creditTypeId, amount: 3, businessCode: "order.pay", businessId }),
      ).rejects.toMatchObject({ code: "INTERNAL_SERVER_ERROR" });
    } finally {
      deps.failpoints.set(undefined);
    }
    expect((await caller.credit.account({ userId, creditTypeId })).balance).toBe(10);
    expect(await deps.db.ledgerEntry.count({ where: { businessId } })).toBe(0);
    expect(await deps.db.outboxEvent.count({ where: { userId, type: "credit.deducted" } })).toBe(0);
    expect(await deps.db.operation.findFirstOrThrow({ where: { businessId } })).toMatchObject({ status: "failed", errorCode: "INTERNAL" });
    // Nothing was applied, so the same key goes through afterwards.
    const res = await caller.credit.deduct({ userId, creditTypeId, amount: 3, businessCode: "order.pay", businessId });
    expect(res).toMatchObject({ idempotent: false, balanceAfter: 7 });
  });

  it("a request that dies after commit (credit.afterCommit=error) is completed by request id and by business key", async () => {
    const userId = uid("u");
    await grant(userId, 50);
    const body = { userId, creditTypeId, amount: 20, businessCode: "order.pay", businessId: uid("o") };
    const requestId = uid("req");
    deps.failpoints.set("credit.afterCommit=error");
    try {
      await expect(fp.credit.deduct.mutate(body, { context: { requestId } })).rejects.toSatisfy(
        (e: unknown) => isFlashPointsError(e, "INTERNAL"),
      );
    } finally {
      deps.failpoints.set(undefined);
    }
    const byRequest = await fp.operation.status.query({ requestId }, { context: {} });
    expect(byRequest).toMatchObject({ type: "credit.deduct", status: "completed", result: { balanceAfter: 30, idempotent: false } });
    const byKey = await fp.operation.status.query({ businessCode: body.businessCode, businessId: body.businessId });
    expect(byKey).toEqual(byRequest);
    // The same X-Request-Id is served the recorded result; a new one with the same key is idempotent.
    const replay = await fp.credit.deduct.mutate(body, { context: { requestId } });
    expect(replay).toEqual(byRequest.result);
    const again = await fp.credit.deduct.mutate(body);
    expect(again).toMatchObject({ idempotent: true, transactionId: replay.transactionId, balanceAfter: 30 });
    expect((await caller.credit.account({ userId, creditTypeId })).balance).toBe(30);
  });
});
