import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { accountKey, businessKey, pairKey, planBatch, type BatchState, type ExistingEntry, type PlanItem } from "./batch-plan";

let seq = 0;
const item = (over: Partial<PlanItem> & Pick<PlanItem, "type" | "amount">): PlanItem => {
  seq++;
  return {
    userId: "alice",
    creditTypeId: "points",
    businessCode: "order",
    businessId: `b${seq}`,
    operationId: `op${seq}`,
    transactionId: `tx${seq}`,
    ...over,
  };
};
const debit = (amount: number, over: Partial<PlanItem> = {}) => item({ type: "DEBIT", amount: BigInt(amount), ...over });
const credit = (amount: number, over: Partial<PlanItem> = {}) => item({ type: "CREDIT", amount: BigInt(amount), ...over });

function state(opts: { balances?: Record<string, number>; entries?: [string, string, ExistingEntry][]; types?: string[] } = {}): BatchState {
  return {
    accounts: new Map(
      Object.entries(opts.balances ?? {}).map(([user, balance], i) => [
        accountKey(user, "points"),
        { id: `acct-${user}`, balance: BigInt(balance), version: 3 + i },
      ]),
    ),
    entries: new Map((opts.entries ?? []).map(([code, id, e]) => [businessKey(code, id), e])),
    creditTypes: new Set(opts.types ?? ["points"]),
    debits: new Map(),
    refunds: new Map(),
    items: new Map(),
    orders: new Map(),
  };
}

let ids = 0;
const newId = () => `new-${++ids}`;
const kinds = (p: ReturnType<typeof planBatch>) => p.decisions.map((d) => (d.kind === "refused" ? d.error.code : d.kind));

describe("planBatch", () => {
  it("applies one account's debits in arrival order against a running balance; one that does not fit is refused alone", () => {
    const plan = planBatch([debit(6), debit(5), debit(4), debit(1)], state({ balances: { alice: 10 } }), newId);
    expect(kinds(plan)).toEqual(["applied", "INSUFFICIENT_BALANCE", "applied", "INSUFFICIENT_BALANCE"]);
    expect(plan.decisions.map((d) => (d.kind === "applied" ? d.balanceAfter : null))).toEqual([4n, null, 0n, null]);
    // One versioned update for the account: from the version read, by the number of changes.
    expect(plan.updates).toEqual([{ id: "acct-alice", userId: "alice", version: 3, newVersion: 5, balance: 0n }]);
    expect(plan.creates).toEqual([]);
  });

  it("a credit earlier in the batch funds a later debit; an account with only refusals is not written", () => {
    const plan = planBatch(
      [debit(15), credit(10), debit(15), debit(1, { userId: "bob" })],
      state({ balances: { alice: 10, bob: 0 } }),
      newId,
    );
    expect(kinds(plan)).toEqual(["INSUFFICIENT_BALANCE", "applied", "applied", "INSUFFICIENT_BALANCE"]);
    expect(plan.updates).toEqual([{ id: "acct-alice", userId: "alice", version: 3, newVersion: 5, balance: 5n }]);
  });

  it("a business key already in the ledger: the same request is a repeat with the stored answer, anything else is refused", () => {
    const stored: ExistingEntry = {
      id: "tx-old",
      userId: "alice",
      creditTypeId: "points",
      type: "DEBIT",
      amount: 7n,
      balanceAfter: 93n,
      operationId: "op-old",
    };
    const plan = planBatch(
      [
        debit(7, { businessId: "k" }),
        debit(8, { businessId: "k" }),
        credit(7, { businessId: "k" }),
        debit(7, { businessId: "k", userId: "bob" }),
      ],
      state({ balances: { alice: 50, bob: 50 }, entries: [["order", "k", stored]] }),
      newId,
    );
    expect(plan.decisions[0]).toEqual({ kind: "repeat", transactionId: "tx-old", operationId: "op-old", balanceAfter: 93n });
    expect(kinds(plan).slice(1)).toEqual(["IDEMPOTENCY_KEY_REUSED", "IDEMPOTENCY_KEY_REUSED", "IDEMPOTENCY_KEY_REUSED"]);
    expect(plan.updates).toEqual([]);
  });

  it("a key repeated inside the batch applies once; after a refusal the repeat is judged afresh", () => {
    const first = debit(4, { businessId: "dup" });
    const plan = planBatch(
      [first, debit(4, { businessId: "dup" }), debit(30, { businessId: "short" }), credit(40), debit(30, { businessId: "short" })],
      state({ balances: { alice: 10 } }),
      newId,
    );
    expect(kinds(plan)).toEqual(["applied", "repeat", "INSUFFICIENT_BALANCE", "applied", "applied"]);
    expect(plan.decisions[1]).toEqual({ kind: "repeat", transactionId: first.transactionId, operationId: first.operationId, balanceAfter: 6n });
    expect(plan.updates[0]).toMatchObject({ balance: 16n, newVersion: 6 });
  });

  it("credits create the account (version = changes), need their credit type, and stop at 2^53 − 1", () => {
    const plan = planBatch(
      [credit(5, { userId: "new" }), credit(6, { userId: "new" }), credit(1, { creditTypeId: "miles" }), debit(1, { userId: "ghost" })],
      state(),
      newId,
    );
    expect(kinds(plan)).toEqual(["applied", "applied", "CREDIT_TYPE_NOT_FOUND", "ACCOUNT_NOT_FOUND"]);
    expect(plan.creates).toEqual([{ id: expect.stringMatching(/^new-/), userId: "new", creditTypeId: "points", balance: 11n, version: 2 }]);

    const full = planBatch([credit(2), credit(1)], state({ balances: { alice: Number.MAX_SAFE_INTEGER - 1 } }), newId);
    expect(kinds(full)).toEqual(["BALANCE_LIMIT_EXCEEDED", "applied"]);
    expect(full.updates[0]?.balance).toBe(BigInt(Number.MAX_SAFE_INTEGER));
  });

  it("refunds give back to their debit in order, never past it, and say its refunded total", () => {
    const base = state({ balances: { alice: 0 } });
    const debits = new Map([["d1", { userId: "alice", creditTypeId: "points", type: "DEBIT" as const, amount: 50n, refunded: 10n }]]);
    const plan = planBatch(
      [credit(30, { refundOf: "d1" }), credit(20, { refundOf: "d1" }), credit(10, { refundOf: "d1" }), credit(1, { refundOf: "nope" }), credit(1, { refundOf: "d1", userId: "bob" })],
      { ...base, debits },
      newId,
    );
    expect(kinds(plan)).toEqual(["applied", "REFUND_EXCEEDS_DEBIT", "applied", "TRANSACTION_NOT_FOUND", "TRANSACTION_NOT_FOUND"]);
    expect(plan.decisions.map((d) => (d.kind === "applied" ? d.refundedTotal : null))).toEqual([40n, null, 50n, null, null]);
    // One versioned update of the debit's refunded total, from what was read.
    expect(plan.refunded).toEqual([{ debitId: "d1", userId: "alice", from: 10n, to: 50n }]);
    expect(plan.updates).toEqual([{ id: "acct-alice", userId: "alice", version: 3, newVersion: 5, balance: 40n }]);
  });

  it("a queued refund credits only while its row is due; the same refund twice in a batch credits once", () => {
    const refunds = new Map([
      ["r-due", "PENDING"],
      ["r-retrying", "RETRYING"],
      ["r-failed", "FAILED"],
      ["r-resolved", "RESOLVED"],
    ]);
    const queued = (id: string) => credit(5, { queuedRefund: id, businessCode: "refund", businessId: id });
    const plan = planBatch(
      [queued("r-due"), queued("r-retrying"), queued("r-failed"), queued("r-resolved"), queued("r-gone"), queued("r-due")],
      { ...state({ balances: { alice: 0 } }), refunds },
      newId,
    );
    expect(kinds(plan)).toEqual(["applied", "applied", "INVALID_STATE", "INVALID_STATE", "REFUND_NOT_FOUND", "repeat"]);
    expect(plan.updates).toEqual([{ id: "acct-alice", userId: "alice", version: 3, newVersion: 5, balance: 10n }]);
    // Counted against the debit when queued, not again now.
    expect(plan.refunded).toEqual([]);
  });

  it("purchases sell an item's units in arrival order, never past its stock; one order per buyer; a buyer who cannot pay buys nothing", () => {
    const buy = (userId: string, orderId: string) => debit(10, { userId, purchaseOf: "item-1", businessCode: "flashSale.purchase", businessId: orderId });
    const items = new Map([["item-1", { stock: 5, sold: 3 }]]);
    const orders = new Map([[pairKey("dora", "item-1"), { orderId: "o-old", transactionId: "tx-old", operationId: "op-old", balanceAfter: 7n }]]);
    const plan = planBatch(
      [buy("alice", "o1"), buy("alice", "o2"), buy("bob", "o3"), buy("carol", "o4"), buy("dora", "o5"), buy("erin", "o6"), debit(1, { purchaseOf: "nope" })],
      { ...state({ balances: { alice: 10, bob: 5, carol: 10, dora: 10, erin: 10 } }), items, orders },
      newId,
    );
    // alice buys; her second purchase answers her first order; bob cannot pay; carol takes the last unit;
    // dora has an order already; erin finds the item sold out.
    expect(kinds(plan)).toEqual(["applied", "repeat", "INSUFFICIENT_BALANCE", "applied", "repeat", "SOLD_OUT", "ITEM_NOT_FOUND"]);
    const repeats = plan.decisions.filter((d) => d.kind === "repeat");
    expect(repeats.map((d) => d.kind === "repeat" && d.orderId)).toEqual(["o1", "o-old"]);
    expect(plan.sold).toEqual([{ itemId: "item-1", from: 3, to: 5 }]);
    expect(plan.updates.map((u) => [u.id, u.balance])).toEqual([
      ["acct-alice", 0n],
      ["acct-carol", 0n],
    ]);
  });

  it("an item whose request id was recorded already does not run", () => {
    const plan = planBatch([debit(1, { fenced: true }), debit(1)], state({ balances: { alice: 1 } }), newId);
    expect(kinds(plan)).toEqual(["DUPLICATE_REQUEST_IN_FLIGHT", "applied"]);
    const fenced = plan.decisions[0];
    expect(fenced?.kind === "refused" && fenced.error.details).toEqual({ replayFence: true });
  });

  it("whatever the mix, each account ends at start + applied credits − applied debits, never below zero on the way", () => {
    const users = ["u0", "u1", "u2"];
    const op = fc.record({
      type: fc.constantFrom<"DEBIT" | "CREDIT">("DEBIT", "DEBIT", "CREDIT"),
      user: fc.nat(2),
      amount: fc.integer({ min: 1, max: 30 }),
      key: fc.nat(12),
    });
    fc.assert(
      fc.property(fc.array(op, { maxLength: 40 }), fc.array(fc.nat(40), { minLength: 3, maxLength: 3 }), (ops, starts) => {
        const items = ops.map((o) => item({ type: o.type, amount: BigInt(o.amount), userId: users[o.user]!, businessId: `k${o.key}` }));
        const plan = planBatch(items, state({ balances: Object.fromEntries(users.map((u, i) => [u, starts[i]!])) }), newId);
        const balance = new Map(users.map((u, i) => [u, BigInt(starts[i]!)]));
        const applied = new Set<string>();
        plan.decisions.forEach((d, i) => {
          const it = items[i]!;
          if (d.kind !== "applied") return;
          // A key applies at most once in a batch.
          expect(applied.has(it.businessId)).toBe(false);
          applied.add(it.businessId);
          const next = balance.get(it.userId)! + (it.type === "CREDIT" ? it.amount : -it.amount);
          expect(next).toBeGreaterThanOrEqual(0n);
          expect(d.balanceAfter).toBe(next);
          balance.set(it.userId, next);
        });
        for (const u of plan.updates) expect(u.balance).toBe(balance.get(u.id.replace("acct-", "")));
      }),
      { numRuns: 300 },
    );
  });
});
