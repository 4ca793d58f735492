import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createTestDeps, closeDeps, uid } from "~/test/deps";
import { ensureCreditType, serviceCaller } from "~/test/api";
import type { Deps } from "~/server/infra/deps";
import { NO_RATE_LIMIT } from "./testing";

describe("credit.ledger and credit.account", () => {
  let deps: Deps;
  let caller: Awaited<ReturnType<typeof serviceCaller>>;
  let creditTypeId: string;

  beforeAll(async () => {
    deps = await createTestDeps({ ...NO_RATE_LIMIT });
    creditTypeId = await ensureCreditType(deps, "ledger-points");
    caller = await serviceCaller(deps);
  });

  afterAll(async () => {
    await closeDeps(deps);
  });

  it("pages newest first with a keyset cursor, every row once", async () => {
    const userId = uid("u");
    const written: string[] = [];
    for (let i = 0; i < 13; i++) {
      const g = await caller.credit.grant({ userId, creditTypeId, amount: 10, businessCode: "test.grant", businessId: `${userId}-g${i}` });
      written.push(g.transactionId);
      if (i % 3 === 2) {
        const d = await caller.credit.deduct({ userId, creditTypeId, amount: 4, businessCode: "order.pay", businessId: `${userId}-d${i}` });
        written.push(d.transactionId);
      }
    }
    const pages = [];
    let cursor: string | undefined;
    do {
      const page = await caller.credit.ledger({ userId, creditTypeId, limit: 5, ...(cursor ? { cursor } : {}) });
      pages.push(page);
      cursor = page.nextCursor ?? undefined;
    } while (cursor);
    expect(pages.map((p) => p.items.length)).toEqual([5, 5, 5, 2]);
    const items = pages.flatMap((p) => p.items);
    // Every row exactly once, newest first (rows of the same millisecond in id order).
    expect(items.map((i) => i.transactionId).sort()).toEqual([...written].sort());
    for (let i = 1; i < items.length; i++) {
      const [a, b] = [items[i - 1]!, items[i]!];
      expect(a.createdAt > b.createdAt || (a.createdAt === b.createdAt && a.transactionId > b.transactionId)).toBe(true);
    }
    expect(Object.keys(items[0]!).sort()).toEqual(
      ["amount", "balanceAfter", "businessCode", "businessId", "createdAt", "operationId", "transactionId", "type"].sort(),
    );
    expect(items.find((i) => i.transactionId === written.at(-1))).toMatchObject({ type: "CREDIT", amount: 10, balanceAfter: 130 - 16 });
    expect(items.find((i) => i.type === "DEBIT")).toMatchObject({ amount: 4, businessCode: "order.pay" });
    const account = await caller.credit.account({ userId, creditTypeId });
    expect(account).toMatchObject({ userId, creditTypeId, balance: 130 - 16, version: 17 });
    expect(Object.keys(account).sort()).toEqual(["balance", "creditTypeId", "updatedAt", "userId", "version"]);

    // Default page size is 20; a bad cursor or limit is a validation error.
    expect((await caller.credit.ledger({ userId, creditTypeId })).items).toHaveLength(17);
    await expect(caller.credit.ledger({ userId, creditTypeId, cursor: "bm9wZQ" })).rejects.toMatchObject({ code: "BAD_REQUEST" });
    await expect(caller.credit.ledger({ userId, creditTypeId, limit: 101 })).rejects.toMatchObject({ code: "BAD_REQUEST" });
    await expect(caller.credit.ledger({ userId: uid("nobody"), creditTypeId })).rejects.toMatchObject({
      cause: { code: "ACCOUNT_NOT_FOUND" },
    });
  });
});
