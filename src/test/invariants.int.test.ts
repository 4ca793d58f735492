import pg from "pg";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { createTestDeps, closeDeps } from "~/test/deps";
import { ensureCreditType } from "~/test/api";
import { createOwnDatabase } from "~/test/own-database";
import type { Deps } from "~/server/infra/deps";
import { isAppError } from "~/server/infra/app-error";
import { grantCredits } from "~/server/credit/grant";
import { deductCredits } from "~/server/credit/deduct";
import { refundDebit } from "~/server/credit/refund";
import { NO_RATE_LIMIT } from "~/server/credit/testing";
import { createActivity } from "~/server/flash-sale/activities";
import { purchase } from "~/server/flash-sale/purchase";
import { processDueRefunds } from "~/server/refund/refund-worker";
import { checkInvariants, describeViolations, type InvariantName } from "./invariants";

/**
 * The invariant checker on a database of its own: clean on healthy books made
 * by the real code (grants, deductions, a partial refund, a purchase, a
 * cancelled purchase refunded by the queue, one whose refund FAILED), and each
 * check seen failing on a row corrupted by hand — a constraint that would
 * refuse the corruption is dropped in this throw-away database only, and
 * everything is put back before the next case.
 */
describe("checkInvariants", () => {
  let own: Awaited<ReturnType<typeof createOwnDatabase>>;
  let deps: Deps;
  let owner: pg.Client;
  const creditTypeId = "points";
  const internal = { principal: null, requestId: null } as const;
  /** Ids of the healthy rows the cases corrupt. */
  const fx = {
    account: "",
    balance: 0n,
    grantU3: "",
    deductA: "",
    deductB: "",
    deductBOperation: "",
    itemId: "",
    orderId: "",
    orderTx: "",
    queuedRefund: "",
    failedRefund: "",
  };

  beforeAll(async () => {
    own = await createOwnDatabase();
    deps = await createTestDeps({
      DATABASE_URL: own.databaseUrl,
      REDIS_KEY_PREFIX: own.redisPrefix,
      REFUND_MAX_ATTEMPTS: "1",
      ...NO_RATE_LIMIT,
    });
    owner = new pg.Client({ connectionString: own.ownerUrl });
    await owner.connect();
    await ensureCreditType(deps, creditTypeId);

    for (const userId of ["u1", "u2", "u3"]) {
      const g = await grantCredits(deps, { userId, creditTypeId, amount: 100, businessCode: "test.grant", businessId: userId }, internal);
      if (userId === "u3") fx.grantU3 = g.transactionId;
    }
    const deduct = (businessId: string, amount: number) =>
      deductCredits(deps, { userId: "u1", creditTypeId, amount, businessCode: "test.deduct", businessId }, internal);
    fx.deductA = (await deduct("a", 10)).transactionId;
    const b = await deduct("b", 5);
    fx.deductB = b.transactionId;
    fx.deductBOperation = b.operationId;
    await refundDebit(deps, { transactionId: fx.deductA, amount: 4, businessCode: "test.refund", businessId: "a-part" }, internal);

    const now = Date.now();
    const activity = await createActivity(
      deps,
      {
        name: "invariants",
        startsAt: new Date(now - 1000),
        endsAt: new Date(now + 3_600_000),
        items: [{ name: "mug", creditTypeId, pointsPrice: 7, stock: 5 }],
      },
      { actor: { email: "ops@test.local", role: "operator" } },
    );
    fx.itemId = activity.items[0]!.id;
    const buy = (userId: string) => purchase(deps, { userId, activityId: activity.id, itemId: fx.itemId }, internal);
    const order = await buy("u2");
    fx.orderId = order.orderId;
    fx.orderTx = order.transactionId;

    // Two purchases that fail after their debit: cancelled, refund queued.
    const failAfterDebit = async (userId: string) => {
      deps.failpoints.set("flashSale.afterDebit=error");
      try {
        await expect(buy(userId)).rejects.toSatisfy((e: unknown) => isAppError(e) && e.code === "UNAVAILABLE");
      } finally {
        deps.failpoints.set(undefined);
      }
    };
    await failAfterDebit("u3");
    expect((await processDueRefunds(deps)).outcomes).toEqual([expect.objectContaining({ kind: "succeeded" })]);
    await failAfterDebit("u1");
    deps.failpoints.set("refund.apply=error");
    expect((await processDueRefunds(deps)).outcomes).toEqual([expect.objectContaining({ kind: "failed", status: "FAILED" })]);
    deps.failpoints.set(undefined);

    const refunds = await deps.db.refund.findMany({ where: { originalTransactionId: { not: fx.deductA } }, select: { id: true, status: true } });
    fx.queuedRefund = refunds.find((r) => r.status === "SUCCEEDED")!.id;
    fx.failedRefund = refunds.find((r) => r.status === "FAILED")!.id;
    const account = await deps.db.account.findFirstOrThrow({ where: { userId: "u1" } });
    fx.account = account.id;
    fx.balance = account.balance;
  }, 60_000);

  afterAll(async () => {
    await owner?.end();
    if (deps) await closeDeps(deps);
    await own?.dispose();
  });

  afterEach(async () => {
    // Every case put its row back: the books hold again.
    expect(describeViolations(await checkInvariants(deps.db, { settled: true }))).toBe("");
  });

  /** Runs `statements` as the database owner, in one transaction. */
  async function asOwner(statements: string[]): Promise<void> {
    await owner.query("BEGIN");
    try {
      for (const s of statements) await owner.query(s);
      await owner.query("COMMIT");
    } catch (e) {
      await owner.query("ROLLBACK");
      throw e;
    }
  }

  /** Corrupts, checks that `check` names `row`, restores. */
  async function expectCaught(
    check: InvariantName,
    row: string,
    change: { corrupt: string[]; restore: string[] },
    opts: { settled?: boolean } = {},
  ): Promise<void> {
    await asOwner(change.corrupt);
    try {
      const found = await checkInvariants(deps.db, { settled: opts.settled ?? false });
      const named = found.filter((v) => v.check === check && v.message.includes(row));
      expect(named, describeViolations(found)).not.toEqual([]);
    } finally {
      await asOwner(change.restore);
    }
  }

  it("finds nothing wrong with healthy books, settled or not", async () => {
    expect(await checkInvariants(deps.db)).toEqual([]);
    expect(await checkInvariants(deps.db, { settled: true })).toEqual([]);
    // The fixture has what the cases need: a queued refund SUCCEEDED, one FAILED, a partial refund.
    expect(await deps.db.refund.count()).toBe(3);
    expect(fx.balance).toBeGreaterThan(0n);
  });

  it("account.negative: a balance below zero", async () => {
    await expectCaught("account.negative", fx.account, {
      corrupt: ["ALTER TABLE accounts DROP CONSTRAINT accounts_balance_non_negative", `UPDATE accounts SET balance = -3 WHERE id = '${fx.account}'`],
      restore: [`UPDATE accounts SET balance = ${fx.balance} WHERE id = '${fx.account}'`, "ALTER TABLE accounts ADD CONSTRAINT accounts_balance_non_negative CHECK (balance >= 0)"],
    });
  });

  it("account.sum: a balance its ledger does not explain (a lost update)", async () => {
    await expectCaught("account.sum", fx.account, {
      corrupt: [`UPDATE accounts SET balance = balance + 7 WHERE id = '${fx.account}'`],
      restore: [`UPDATE accounts SET balance = balance - 7 WHERE id = '${fx.account}'`],
    });
  });

  it("ledger.chain: a row that does not continue from the one before it", async () => {
    await expectCaught("ledger.chain", fx.deductA, {
      corrupt: [`UPDATE ledger_entries SET balance_after = balance_after + 1 WHERE id = '${fx.deductA}'`],
      restore: [`UPDATE ledger_entries SET balance_after = balance_after - 1 WHERE id = '${fx.deductA}'`],
    });
  });

  it("ledger.businessKey: two rows under one business key", async () => {
    // The ledger has no unique index on the key (it is partitioned by user;
    // business_keys holds the key once): nothing stops the duplicate here.
    await expectCaught("ledger.businessKey", "test.deduct/a has 2 ledger rows", {
      corrupt: [`UPDATE ledger_entries SET business_id = 'a' WHERE id = '${fx.deductB}'`],
      restore: [`UPDATE ledger_entries SET business_id = 'b' WHERE id = '${fx.deductB}'`],
    });
  });

  it("ledger.businessKey: a ledger row without its claim, and a claim without its row", async () => {
    const claim = `(SELECT business_code, business_id, user_id, credit_type_id, type, amount, transaction_id, created_at FROM business_keys WHERE transaction_id = '${fx.deductB}')`;
    await expectCaught("ledger.businessKey", `ledger row ${fx.deductB}`, {
      corrupt: [`CREATE TABLE saved_claim AS ${claim}`, `DELETE FROM business_keys WHERE transaction_id = '${fx.deductB}'`],
      restore: ["INSERT INTO business_keys SELECT * FROM saved_claim", "DROP TABLE saved_claim"],
    });
    const stranger = "00000000-0000-4000-8000-00000000000b";
    await expectCaught("ledger.businessKey", `claimed by transaction ${stranger}`, {
      corrupt: [`UPDATE business_keys SET transaction_id = '${stranger}' WHERE transaction_id = '${fx.deductB}'`],
      restore: [`UPDATE business_keys SET transaction_id = '${fx.deductB}' WHERE transaction_id = '${stranger}'`],
    });
  });

  it("item.sold: sold past the stock", async () => {
    await expectCaught("item.sold", fx.itemId, {
      corrupt: ["ALTER TABLE flash_sale_items DROP CONSTRAINT flash_sale_items_sold_within_stock", `UPDATE flash_sale_items SET sold = stock + 1 WHERE id = '${fx.itemId}'`],
      restore: [
        `UPDATE flash_sale_items SET sold = 1 WHERE id = '${fx.itemId}'`,
        "ALTER TABLE flash_sale_items ADD CONSTRAINT flash_sale_items_sold_within_stock CHECK (sold >= 0 AND sold <= stock)",
      ],
    });
  });

  it("item.orders: sold that does not count the orders", async () => {
    await expectCaught("item.orders", fx.itemId, {
      corrupt: [`UPDATE flash_sale_items SET sold = sold - 1 WHERE id = '${fx.itemId}'`],
      restore: [`UPDATE flash_sale_items SET sold = sold + 1 WHERE id = '${fx.itemId}'`],
    });
  });

  it("order.debit: an order its debit does not pay", async () => {
    await expectCaught("order.debit", fx.orderId, {
      corrupt: [`UPDATE flash_sale_orders SET points_paid = points_paid + 1 WHERE id = '${fx.orderId}'`],
      restore: [`UPDATE flash_sale_orders SET points_paid = points_paid - 1 WHERE id = '${fx.orderId}'`],
    });
  });

  it("refund.total: a debit's refunded_amount that its refunds do not add up to", async () => {
    await expectCaught("refund.total", fx.deductA, {
      corrupt: [`UPDATE ledger_entries SET refunded_amount = 3 WHERE id = '${fx.deductA}'`],
      restore: [`UPDATE ledger_entries SET refunded_amount = 4 WHERE id = '${fx.deductA}'`],
    });
  });

  it("refund.credit: a refund still due that was credited already", async () => {
    await expectCaught("refund.credit", fx.queuedRefund, {
      corrupt: [`UPDATE refunds SET status = 'RETRYING' WHERE id = '${fx.queuedRefund}'`],
      restore: [`UPDATE refunds SET status = 'SUCCEEDED' WHERE id = '${fx.queuedRefund}'`],
    });
  });

  it("refund.orphanCredit: a refund credit no refund names", async () => {
    await expectCaught("refund.orphanCredit", fx.grantU3, {
      corrupt: [`UPDATE ledger_entries SET business_code = 'refund', business_id = gen_random_uuid()::text WHERE id = '${fx.grantU3}'`],
      restore: [`UPDATE ledger_entries SET business_code = 'test.grant', business_id = 'u3' WHERE id = '${fx.grantU3}'`],
    });
  });

  it("purchase.refunded: a purchase debit with no order and no refund", async () => {
    await expectCaught("purchase.refunded", fx.orderTx, {
      corrupt: [`UPDATE flash_sale_orders SET transaction_id = gen_random_uuid() WHERE id = '${fx.orderId}'`],
      restore: [`UPDATE flash_sale_orders SET transaction_id = '${fx.orderTx}' WHERE id = '${fx.orderId}'`],
    });
  });

  it("refund.unsettled: once settled, a refund still due or FAILED without its error", async () => {
    const due = { corrupt: [`UPDATE refunds SET status = 'RETRYING' WHERE id = '${fx.failedRefund}'`], restore: [`UPDATE refunds SET status = 'FAILED' WHERE id = '${fx.failedRefund}'`] };
    await asOwner(due.corrupt);
    try {
      // Still due is fine while things are under way.
      expect(await checkInvariants(deps.db)).toEqual([]);
    } finally {
      await asOwner(due.restore);
    }
    await expectCaught("refund.unsettled", fx.failedRefund, due, { settled: true });
    const silent = await owner.query<{ last_error: string }>(`SELECT last_error FROM refunds WHERE id = '${fx.failedRefund}'`);
    await expectCaught(
      "refund.unsettled",
      fx.failedRefund,
      {
        corrupt: [`UPDATE refunds SET last_error = NULL WHERE id = '${fx.failedRefund}'`],
        restore: [`UPDATE refunds SET last_error = ${pg.escapeLiteral(silent.rows[0]!.last_error)} WHERE id = '${fx.failedRefund}'`],
      },
      { settled: true },
    );
  });

  it("operation.outcome: an operation reported failed whose change applied", async () => {
    await expectCaught("operation.outcome", fx.deductBOperation, {
      corrupt: [`UPDATE operations SET status = 'failed' WHERE id = '${fx.deductBOperation}'`],
      restore: [`UPDATE operations SET status = 'completed' WHERE id = '${fx.deductBOperation}'`],
    });
  });

  it("operation.stuck: once settled, an operation left started past the bound", async () => {
    const id = "00000000-0000-4000-8000-00000000abcd";
    const stuck = {
      corrupt: [`INSERT INTO operations (id, type, status, input, started_at) VALUES ('${id}', 'credit.deduct', 'started', '{}', now() - interval '2 minutes')`],
      restore: [`DELETE FROM operations WHERE id = '${id}'`],
    };
    await asOwner(stuck.corrupt);
    try {
      expect(await checkInvariants(deps.db)).toEqual([]);
      expect(await checkInvariants(deps.db, { settled: true, startedBoundMs: 300_000 })).toEqual([]);
    } finally {
      await asOwner(stuck.restore);
    }
    await expectCaught("operation.stuck", id, stuck, { settled: true });
  });
});
