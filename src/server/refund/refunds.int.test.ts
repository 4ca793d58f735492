import { randomUUID } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createTestDeps, closeDeps, uid } from "~/test/deps";
import { adminCaller, serviceCaller } from "~/test/api";
import type { Deps } from "~/server/infra/deps";
import type { RefundStatus } from "~/generated/prisma/client";

/** refund.list and refund.resolve: what operators see and settle by hand. */
describe("refund.list and refund.resolve", () => {
  let deps: Deps;
  const userId = uid("u");

  beforeAll(async () => {
    deps = await createTestDeps();
  });

  afterAll(async () => {
    await closeDeps(deps);
  });

  async function refund(status: RefundStatus, at: Date): Promise<string> {
    const row = await deps.db.refund.create({
      data: {
        userId,
        creditTypeId: "points",
        amount: 25n,
        reason: "purchase failed after its debit",
        originalTransactionId: randomUUID(),
        status,
        attempts: status === "FAILED" ? 3 : 0,
        lastError: status === "FAILED" ? "UNAVAILABLE: the database is unavailable" : null,
        createdAt: at,
      },
      select: { id: true },
    });
    return row.id;
  }

  it("lists newest first, by status, in keyset pages, for a viewer; not without a session", async () => {
    const base = Date.now() - 60_000;
    const failed = [await refund("FAILED", new Date(base + 1000)), await refund("FAILED", new Date(base + 2000)), await refund("FAILED", new Date(base + 3000))];
    await refund("PENDING", new Date(base + 4000));
    const { caller } = await adminCaller(deps, "viewer");
    const seen: string[] = [];
    let cursor: string | undefined;
    do {
      const page = await caller.refund.list({ status: "FAILED", limit: 2, ...(cursor ? { cursor } : {}) });
      expect(page.items.length).toBeLessThanOrEqual(2);
      for (const item of page.items) {
        expect(item).toMatchObject({ status: "FAILED", amount: 25, attempts: 3, lastError: expect.stringContaining("UNAVAILABLE") });
        seen.push(item.id);
      }
      cursor = page.nextCursor ?? undefined;
    } while (cursor);
    // Every FAILED refund once, newest first (other tests' rows may be there too).
    expect(seen.filter((id) => failed.includes(id))).toEqual([...failed].reverse());
    expect(new Set(seen).size).toBe(seen.length);
    const service = await serviceCaller(deps);
    await expect(service.refund.list({})).rejects.toMatchObject({ code: "UNAUTHORIZED" });
    await expect(caller.refund.list({ status: "LOST" as RefundStatus })).rejects.toMatchObject({ code: "BAD_REQUEST" });
  });

  it("an operator resolves a FAILED refund once, audited; other states, unknown ids and viewers are refused; nothing else changes", async () => {
    const id = await refund("FAILED", new Date());
    const { caller: viewer } = await adminCaller(deps, "viewer");
    await expect(viewer.refund.resolve({ refundId: id, reason: "settled by phone" })).rejects.toMatchObject({ code: "FORBIDDEN" });

    const { caller: operator, email } = await adminCaller(deps, "operator");
    const attempts = await Promise.allSettled(
      Array.from({ length: 5 }, () => operator.refund.resolve({ refundId: id, reason: "points given back by hand, ticket 4711" })),
    );
    const done = attempts.flatMap((a) => (a.status === "fulfilled" ? [a.value] : []));
    expect(done).toHaveLength(1);
    expect(done[0]).toMatchObject({ id, status: "RESOLVED", attempts: 3 });
    for (const a of attempts) {
      if (a.status === "rejected") expect(a.reason).toMatchObject({ code: "CONFLICT", cause: { code: "INVALID_STATE" } });
    }
    const audit = await deps.db.auditLog.findMany({ where: { target: `refund:${id}` } });
    expect(audit).toHaveLength(1);
    expect(audit[0]).toMatchObject({
      actor: email,
      role: "operator",
      action: "refund.resolve",
      reason: "points given back by hand, ticket 4711",
      before: { status: "FAILED" },
      after: { status: "RESOLVED" },
    });

    const pending = await refund("PENDING", new Date());
    await expect(operator.refund.resolve({ refundId: pending, reason: "not failed yet" })).rejects.toMatchObject({
      cause: { code: "INVALID_STATE" },
    });
    await expect(operator.refund.resolve({ refundId: randomUUID(), reason: "no such refund" })).rejects.toMatchObject({
      code: "NOT_FOUND",
      cause: { code: "REFUND_NOT_FOUND" },
    });
    await expect(operator.refund.resolve({ refundId: id, reason: "" })).rejects.toMatchObject({ code: "BAD_REQUEST" });
    expect(await deps.db.refund.findFirstOrThrow({ where: { id: pending } })).toMatchObject({ status: "PENDING" });
    // Resolving credits nothing: no ledger row for this user.
    expect(await deps.db.ledgerEntry.count({ where: { userId } })).toBe(0);
  });
});
