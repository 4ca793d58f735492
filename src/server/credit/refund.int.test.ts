import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createTestDeps, closeDeps, uid } from "~/test/deps";
import { ensureCreditType, makeApiKey, startApi } from "~/test/api";
import type { Deps } from "~/server/infra/deps";
import { isAppError } from "~/server/infra/app-error";
import type { RunningServer } from "~/server/http/server";
import { createFlashPointsClient, isFlashPointsError, type FlashPointsClient } from "~/client";
import { deductCredits } from "./deduct";
import { grantCredits } from "./grant";
import { refundDebit } from "./refund";
import { accountChecks, NO_RATE_LIMIT } from "./testing";

/** credit.refund: giving back (part of) a debit, at once, through the balance engine. */
describe("credit.refund", () => {
  let deps: Deps;
  let other: Deps;
  let api: RunningServer;
  let fp: FlashPointsClient;
  let creditTypeId: string;
  const internal = { principal: null, requestId: null } as const;

  beforeAll(async () => {
    deps = await createTestDeps({ ...NO_RATE_LIMIT });
    // A second "process" on the same database and lock space.
    other = await createTestDeps({ ...NO_RATE_LIMIT, REDIS_KEY_PREFIX: deps.env.REDIS_KEY_PREFIX });
    creditTypeId = await ensureCreditType(deps, "refund-points");
    api = await startApi(deps);
    fp = createFlashPointsClient({ url: api.url, apiKey: await makeApiKey(deps) });
  });

  afterAll(async () => {
    await api?.close();
    await closeDeps(other);
    await closeDeps(deps);
  });

  async function debited(funded: number, spent: number): Promise<{ userId: string; transactionId: string }> {
    const userId = uid("u");
    await grantCredits(deps, { userId, creditTypeId, amount: funded, businessCode: "test.grant", businessId: uid("g") }, internal);
    const d = await deductCredits(deps, { userId, creditTypeId, amount: spent, businessCode: "order.pay", businessId: uid("o") }, internal);
    return { userId, transactionId: d.transactionId };
  }

  it("gives back part, then the rest, never more; a repeated key answers the same; refund rows and events are written", async () => {
    const { userId, transactionId } = await debited(200, 100);
    const first = { transactionId, amount: 30, businessCode: "order.cancel", businessId: uid("c") };
    const part = await fp.credit.refund.mutate(first);
    expect(part).toEqual({
      transactionId: expect.any(String),
      operationId: expect.any(String),
      balanceAfter: 130,
      idempotent: false,
      refundedTotal: 30,
    });
    // Without an amount: the rest of the debit.
    const rest = await fp.credit.refund.mutate({ transactionId, businessCode: "order.cancel", businessId: uid("c") });
    expect(rest).toMatchObject({ balanceAfter: 200, refundedTotal: 100, idempotent: false });
    // Nothing left to give back.
    const more = await fp.credit.refund.mutate({ transactionId, amount: 1, businessCode: "order.cancel", businessId: uid("c") }).catch((e: unknown) => e);
    expect(isFlashPointsError(more, "REFUND_EXCEEDS_DEBIT")).toBe(true);
    const none = await fp.credit.refund.mutate({ transactionId, businessCode: "order.cancel", businessId: uid("c") }).catch((e: unknown) => e);
    expect(isFlashPointsError(none, "REFUND_EXCEEDS_DEBIT")).toBe(true);
    // The first key again: the first answer, nothing applied twice.
    const again = await fp.credit.refund.mutate(first);
    expect(again).toMatchObject({ idempotent: true, transactionId: part.transactionId, balanceAfter: 130, refundedTotal: 100 });
    // …also without its amount.
    const withoutAmount = { transactionId, businessCode: first.businessCode, businessId: first.businessId };
    expect(await fp.credit.refund.mutate(withoutAmount)).toMatchObject({ idempotent: true, transactionId: part.transactionId });

    const [check] = await accountChecks(deps.db, [userId]);
    expect(check).toMatchObject({ balance: 200, credits: 300, debits: 100 });
    expect(await deps.db.ledgerEntry.findFirstOrThrow({ where: { id: transactionId } })).toMatchObject({ refundedAmount: 100n });
    const refunds = await deps.db.refund.findMany({ where: { originalTransactionId: transactionId }, orderBy: { amount: "asc" } });
    expect(refunds.map((r) => ({ amount: r.amount, status: r.status, userId: r.userId }))).toEqual([
      { amount: 30n, status: "SUCCEEDED", userId },
      { amount: 70n, status: "SUCCEEDED", userId },
    ]);
    expect(refunds.map((r) => r.refundTransactionId).sort()).toEqual([part.transactionId, rest.transactionId].sort());
    expect(await deps.db.outboxEvent.count({ where: { userId, type: "credit.refunded" } })).toBe(2);
  });

  it("10 concurrent partial refunds of one debit, from two processes, never exceed it in total; the books balance", async () => {
    const { userId, transactionId } = await debited(100, 100);
    const results = await Promise.all(
      Array.from({ length: 10 }, (_, i) =>
        refundDebit(i % 2 === 0 ? deps : other, { transactionId, amount: 15, businessCode: "order.cancel", businessId: uid("c") }, internal).then(
          (r) => ({ ok: true as const, r }),
          (e: unknown) => ({ ok: false as const, code: isAppError(e) ? e.code : String(e) }),
        ),
      ),
    );
    const applied = results.flatMap((x) => (x.ok ? [x.r] : []));
    const refused = results.flatMap((x) => (x.ok ? [] : [x.code]));
    expect(applied).toHaveLength(6);
    expect(refused.filter((c) => c !== "REFUND_EXCEEDS_DEBIT")).toEqual([]);
    expect(applied.map((r) => r.refundedTotal).sort((a, b) => a - b)).toEqual([15, 30, 45, 60, 75, 90]);
    expect(await deps.db.ledgerEntry.findFirstOrThrow({ where: { id: transactionId } })).toMatchObject({ refundedAmount: 90n });
    expect(await deps.db.refund.count({ where: { originalTransactionId: transactionId, status: "SUCCEEDED" } })).toBe(6);
    const [check] = await accountChecks(deps.db, [userId]);
    expect(check).toMatchObject({ balance: 90, credits: 190, debits: 100 });
  });

  it("an unknown transaction or a credit's is 404 TRANSACTION_NOT_FOUND; bad input is 400; nothing is written", async () => {
    const { userId } = await debited(50, 10);
    const grant = await grantCredits(deps, { userId, creditTypeId, amount: 5, businessCode: "test.grant", businessId: uid("g") }, internal);
    const businessId = uid("c");
    for (const transactionId of ["00000000-0000-4000-8000-000000000000", grant.transactionId]) {
      const e = await fp.credit.refund.mutate({ transactionId, businessCode: "order.cancel", businessId }).catch((x: unknown) => x);
      expect(isFlashPointsError(e, "TRANSACTION_NOT_FOUND")).toBe(true);
      expect(isFlashPointsError(e) && e.data.httpStatus).toBe(404);
    }
    for (const bad of [
      { transactionId: "not-a-uuid", businessCode: "order.cancel", businessId },
      { transactionId: grant.transactionId, amount: 0, businessCode: "order.cancel", businessId },
      { transactionId: grant.transactionId, businessCode: "order.cancel", businessId, userId },
    ]) {
      // Inputs the contract refuses, sent as a client without types would.
      const e = await fp.credit.refund.mutate(bad as unknown as Parameters<typeof fp.credit.refund.mutate>[0]).catch((x: unknown) => x);
      expect(isFlashPointsError(e, "VALIDATION")).toBe(true);
    }
    expect(await deps.db.ledgerEntry.count({ where: { businessId } })).toBe(0);
    expect((await accountChecks(deps.db, [userId]))[0]).toMatchObject({ balance: 45 });
  });
});
