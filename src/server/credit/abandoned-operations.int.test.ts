import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createTestDeps, closeDeps, uid } from "~/test/deps";
import { ensureCreditType } from "~/test/api";
import type { Deps } from "~/server/infra/deps";
import { resolveStuckOperations, stuckAfterMs } from "./abandoned-operations";

describe("stuck-operation resolver", () => {
  let deps: Deps;
  let creditTypeId: string;

  beforeAll(async () => {
    deps = await createTestDeps();
    creditTypeId = await ensureCreditType(deps, "status-points");
  });

  afterAll(async () => {
    await closeDeps(deps);
  });

  it("resolves operations left started: completed if their ledger row exists, else failed; leaves live ones", async () => {
    const userId = uid("u");
    const account = await deps.db.account.create({ data: { userId, creditTypeId, balance: 70n, version: 1 } });
    const old = new Date(Date.now() - stuckAfterMs(deps.env) - 1000);
    const mk = (startedAt: Date) =>
      deps.db.operation.create({
        data: { type: "credit.deduct", status: "started", userId, creditTypeId, businessCode: "order.pay", businessId: uid("o"), input: {}, startedAt },
      });
    const committed = await mk(old);
    const abandoned = await mk(old);
    const live = await mk(new Date());
    const entry = await deps.db.ledgerEntry.create({
      data: {
        accountId: account.id,
        userId,
        creditTypeId,
        type: "DEBIT",
        amount: 30n,
        balanceAfter: 70n,
        businessCode: committed.businessCode!,
        businessId: committed.businessId!,
        operationId: committed.id,
      },
    });

    expect(await resolveStuckOperations(deps)).toBeGreaterThanOrEqual(2);
    const byId = async (id: string) => deps.db.operation.findFirstOrThrow({ where: { id } });
    expect(await byId(committed.id)).toMatchObject({
      status: "completed",
      result: { success: true, transactionId: entry.id, operationId: committed.id, balanceAfter: 70, idempotent: false },
    });
    expect(await byId(abandoned.id)).toMatchObject({ status: "failed", errorCode: "UNAVAILABLE", errorMessage: expect.stringMatching(/abandoned/) });
    expect(await byId(live.id)).toMatchObject({ status: "started", finishedAt: null });
    // Nothing left to do: a second run (or a second worker) finds nothing.
    expect(await resolveStuckOperations(deps)).toBe(0);
  });
});
