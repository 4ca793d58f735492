import { randomUUID } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createTestDeps, closeDeps, uid } from "~/test/deps";
import { ensureCreditType, makeApiKey, startApi } from "~/test/api";
import type { Deps } from "~/server/infra/deps";
import type { RunningServer } from "~/server/http/server";
import { createFlashPointsClient, isFlashPointsError, withRequestId, type FlashPointsClient } from "~/client";
import { NO_RATE_LIMIT } from "~/server/credit/testing";

const STATUS_KEYS = ["elapsedMs", "operationId", "startedAt", "status", "type"];

describe("operation.status", () => {
  let deps: Deps;
  let api: RunningServer;
  let fp: FlashPointsClient;
  let creditTypeId: string;

  beforeAll(async () => {
    deps = await createTestDeps({ ...NO_RATE_LIMIT });
    creditTypeId = await ensureCreditType(deps, "status-points");
    api = await startApi(deps);
    fp = createFlashPointsClient({ url: api.url, apiKey: await makeApiKey(deps) });
  });

  afterAll(async () => {
    deps.failpoints.set(undefined);
    await api?.close();
    await closeDeps(deps);
  });

  async function account(balance: number): Promise<string> {
    const userId = uid("u");
    await fp.credit.grant.mutate({ userId, creditTypeId, amount: balance, businessCode: "test.grant", businessId: uid("g") });
    return userId;
  }

  async function appCodeOf(p: Promise<unknown>): Promise<string> {
    try {
      await p;
    } catch (e) {
      if (isFlashPointsError(e)) return e.data.appCode;
      throw e;
    }
    throw new Error("expected a FlashPoints error");
  }

  it("reports in_progress while the transaction runs, then completed with the result, by every key", async () => {
    const userId = await account(100);
    const body = { userId, creditTypeId, amount: 40, businessCode: "order.pay", businessId: uid("o") };
    const requestId = uid("req");
    deps.failpoints.set("credit.beforeCommit=delay:1000");
    let pending: Promise<unknown> | undefined;
    try {
      pending = fp.credit.deduct.mutate(body, withRequestId(requestId));
      let running;
      for (let i = 0; i < 80 && !running; i++) {
        await new Promise((r) => setTimeout(r, 25));
        running = await fp.operation.status.query({ requestId }).catch(() => undefined);
      }
      expect(running).toBeDefined();
      expect(Object.keys(running!).sort()).toEqual(STATUS_KEYS);
      expect(running).toMatchObject({ type: "credit.deduct", status: "in_progress", elapsedMs: expect.any(Number) });
      expect(new Date(running!.startedAt).toISOString()).toBe(running!.startedAt);
      await new Promise((r) => setTimeout(r, 100));
      const later = await fp.operation.status.query({ businessCode: body.businessCode, businessId: body.businessId });
      expect(later).toMatchObject({ operationId: running!.operationId, status: "in_progress" });
      expect(later.elapsedMs).toBeGreaterThan(running!.elapsedMs);
    } finally {
      deps.failpoints.set(undefined);
    }
    const result = await pending;
    const done = await fp.operation.status.query({ requestId });
    expect(Object.keys(done).sort()).toEqual([...STATUS_KEYS, "result"].sort());
    expect(done).toMatchObject({ status: "completed", result });
    expect(done.elapsedMs).toBeGreaterThanOrEqual(0);
    expect(await fp.operation.status.query({ operationId: done.operationId })).toEqual(done);
    expect(await fp.operation.status.query({ businessCode: body.businessCode, businessId: body.businessId })).toEqual(done);

    // A repeat of the business key is its own operation, skipped, pointing at the first.
    const repeatId = uid("req");
    const repeat = await fp.credit.deduct.mutate(body, withRequestId(repeatId));
    expect(repeat).toMatchObject({ idempotent: true, operationId: done.operationId });
    const skipped = await fp.operation.status.query({ requestId: repeatId });
    expect(skipped).toMatchObject({ status: "skipped", result: { idempotent: true, transactionId: (result as { transactionId: string }).transactionId } });
    expect(skipped.operationId).not.toBe(done.operationId);
  });

  it("reports failed with the appCode; a key without a ledger row shows its latest attempt", async () => {
    const userId = await account(5);
    const body = { userId, creditTypeId, amount: 6, businessCode: "order.pay", businessId: uid("o") };
    const requestId = uid("req");
    expect(await appCodeOf(fp.credit.deduct.mutate(body, withRequestId(requestId)))).toBe("INSUFFICIENT_BALANCE");
    const failed = await fp.operation.status.query({ requestId });
    expect(Object.keys(failed).sort()).toEqual([...STATUS_KEYS, "error"].sort());
    expect(failed).toMatchObject({ type: "credit.deduct", status: "failed", error: { appCode: "INSUFFICIENT_BALANCE", message: expect.any(String) } });
    expect(await fp.operation.status.query({ businessCode: body.businessCode, businessId: body.businessId })).toEqual(failed);

    // The key is retried and succeeds: by key, the operation that took effect wins.
    await fp.credit.grant.mutate({ userId, creditTypeId, amount: 10, businessCode: "test.grant", businessId: uid("g") });
    const ok = await fp.credit.deduct.mutate(body);
    const byKey = await fp.operation.status.query({ businessCode: body.businessCode, businessId: body.businessId });
    expect(byKey).toMatchObject({ operationId: ok.operationId, status: "completed" });
  });

  it("refuses anything but exactly one way to name the operation, and says when nothing matches", async () => {
    const q = (input: unknown) => appCodeOf(fp.operation.status.query(input as { operationId: string }));
    expect(await q({})).toBe("VALIDATION");
    expect(await q({ operationId: randomUUID(), requestId: "r-1" })).toBe("VALIDATION");
    expect(await q({ businessCode: "order.pay" })).toBe("VALIDATION");
    expect(await q({ requestId: "r-1", extra: 1 })).toBe("VALIDATION");
    expect(await q({ operationId: "not-a-uuid" })).toBe("VALIDATION");
    expect(await q({ operationId: randomUUID() })).toBe("OPERATION_NOT_FOUND");
    expect(await q({ requestId: uid("req") })).toBe("OPERATION_NOT_FOUND");
    expect(await q({ businessCode: "order.pay", businessId: uid("o") })).toBe("OPERATION_NOT_FOUND");

    // Another caller's request id is not visible.
    const userId = await account(5);
    const requestId = uid("req");
    await fp.credit.deduct.mutate({ userId, creditTypeId, amount: 1, businessCode: "order.pay", businessId: uid("o") }, withRequestId(requestId));
    const other = createFlashPointsClient({ url: api.url, apiKey: await makeApiKey(deps) });
    expect(await appCodeOf(other.operation.status.query({ requestId }))).toBe("OPERATION_NOT_FOUND");
    expect((await fp.operation.status.query({ requestId })).status).toBe("completed");
  });
});
