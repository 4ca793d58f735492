import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createTestDeps, closeDeps, uid } from "~/test/deps";
import { ensureCreditType } from "~/test/api";
import type { Deps } from "~/server/infra/deps";
import { isAppError } from "~/server/infra/app-error";
import { FailpointError } from "~/server/infra/failpoints";
import { grantCredits } from "./grant";
import { deductCredits } from "./deduct";
import { batchDeduct, batchGrant, type BatchItemResult } from "./batch";
import { accountChecks, NO_RATE_LIMIT } from "./testing";
import type { BalanceChangeRequest } from "./types";

/**
 * Random interleavings of grants, deductions, repeats of earlier business keys
 * (same or other values), requests that roll back before commit and requests
 * that die after it — in concurrent batches, from three "processes" sharing the
 * database and the lock space. A `batch` command sends 2–6 grants and
 * deductions at once through credit.batchGrant / credit.batchDeduct, so hot
 * accounts get engine batches with several changes (and repeats) in them. Whatever happens, every account must satisfy
 * balance == Σ credits − Σ debits ≥ 0, and what a client was told must be true.
 */
type Via = "ok" | "rollback" | "afterCommit";
type Item = { kind: "grant" | "deduct"; user: number; amount: number } | { kind: "repeat"; which: number; otherAmount: boolean };
type Cmd = (Item & { via: Via }) | { kind: "batch"; items: Item[]; via: Via };

const via = fc.constantFrom<Via>("ok", "ok", "ok", "ok", "rollback", "afterCommit");
const cmd: fc.Arbitrary<Cmd> = fc.oneof(
  { weight: 3, arbitrary: fc.record({ kind: fc.constant("grant" as const), user: fc.nat(3), amount: fc.integer({ min: 1, max: 40 }), via }) },
  { weight: 5, arbitrary: fc.record({ kind: fc.constant("deduct" as const), user: fc.nat(3), amount: fc.integer({ min: 1, max: 60 }), via }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant("repeat" as const), which: fc.nat(), otherAmount: fc.boolean(), via }) },
  {
    weight: 2,
    arbitrary: fc.record({
      kind: fc.constant("batch" as const),
      items: fc.array(
        fc.oneof(
          { weight: 2, arbitrary: fc.record({ kind: fc.constant("grant" as const), user: fc.nat(3), amount: fc.integer({ min: 1, max: 40 }) }) },
          { weight: 3, arbitrary: fc.record({ kind: fc.constant("deduct" as const), user: fc.nat(3), amount: fc.integer({ min: 1, max: 60 }) }) },
          { weight: 1, arbitrary: fc.record({ kind: fc.constant("repeat" as const), which: fc.nat(), otherAmount: fc.boolean() }) },
        ),
        { minLength: 2, maxLength: 6 },
      ),
      via,
    }),
  },
);
const batches = fc.array(fc.array(cmd, { minLength: 1, maxLength: 5 }), { minLength: 1, maxLength: 6 });

/** A failpoint's error, as thrown or as the cause of the INTERNAL answer it became. */
const isFailpointError = (e: unknown): boolean => e instanceof FailpointError || (isAppError(e, "INTERNAL") && e.cause instanceof FailpointError);

/** Final answers a domain call may give; anything else (INTERNAL other than the failpoints) is a bug. */
const EXPECTED = new Set(["INSUFFICIENT_BALANCE", "ACCOUNT_NOT_FOUND", "IDEMPOTENCY_KEY_REUSED", "OPERATION_LOCKED", "VERSION_CONFLICT"]);

describe("balance property", () => {
  const deps: Record<Via, Deps> = {} as Record<Via, Deps>;
  let creditTypeId: string;

  beforeAll(async () => {
    // No per-user bucket: batchDeduct takes a token per item, and the limit is not what this tests.
    deps.ok = await createTestDeps({ LOCK_WAIT_MS: "300", ...NO_RATE_LIMIT });
    // Same database and lock space, failpoints always on.
    const shared = { REDIS_KEY_PREFIX: deps.ok.env.REDIS_KEY_PREFIX, LOCK_WAIT_MS: "300", ...NO_RATE_LIMIT };
    deps.rollback = await createTestDeps({ ...shared, FAILPOINTS: "credit.beforeCommit=error" });
    deps.afterCommit = await createTestDeps({ ...shared, FAILPOINTS: "credit.afterCommit=error" });
    creditTypeId = await ensureCreditType(deps.ok, "property-points");
  });

  afterAll(async () => {
    await Promise.all(Object.values(deps).map((d) => closeDeps(d)));
  });

  it("keeps balance == Σ credits − Σ debits ≥ 0 for every account, whatever the interleaving", async () => {
    await fc.assert(
      fc.asyncProperty(batches, async (plan) => {
        const run = uid("p");
        const users = [0, 1, 2, 3].map((i) => `${run}-u${i}`);
        // Users 0–2 start with an account; user 3 has none until a grant makes one.
        for (const u of users.slice(0, 3)) {
          await grantCredits(deps.ok, { userId: u, creditTypeId, amount: 50, businessCode: "seed", businessId: `${u}-seed` }, { principal: null, requestId: null });
        }
        type Sent = { kind: "grant" | "deduct"; userId: string; amount: number; businessId: string };
        const sent: Sent[] = [];
        const told: { req: Sent; transactionId: string; idempotent: boolean }[] = [];
        const vias = new Map<string, Set<Via>>();
        let n = 0;
        /** The request an item stands for (a new key, or an earlier one again), or null for a repeat with nothing before it. */
        const requestOf = (c: Item, v: Via): Sent | null => {
          let req: Sent;
          if (c.kind === "repeat") {
            const prev = sent.length > 0 ? sent[c.which % sent.length]! : undefined;
            if (!prev) return null;
            req = c.otherAmount ? { ...prev, amount: prev.amount + 1 } : prev;
          } else {
            req = { kind: c.kind, userId: users[c.user]!, amount: c.amount, businessId: `${run}-${n++}` };
          }
          sent.push(req);
          vias.set(req.businessId, (vias.get(req.businessId) ?? new Set<Via>()).add(v));
          return req;
        };
        const inputOf = (req: Sent): BalanceChangeRequest => ({
          userId: req.userId,
          creditTypeId,
          amount: req.amount,
          businessCode: "prop",
          businessId: req.businessId,
        });
        /** One batch call's answers: one per item, each under the same rules as a single call's. */
        const checkBatch = (reqs: Sent[], v: Via, answers: BatchItemResult<{ transactionId: string; idempotent: boolean }>[]) => {
          expect(answers).toHaveLength(reqs.length);
          answers.forEach((a, i) => {
            const req = reqs[i]!;
            if (a.ok) told.push({ req, transactionId: a.result.transactionId, idempotent: a.result.idempotent });
            // The rollback failpoint fails the whole engine batch (INTERNAL, rolled back).
            else if (!(v === "rollback" && a.error.appCode === "INTERNAL") && !EXPECTED.has(a.error.appCode)) {
              throw new Error(`batch item ${JSON.stringify(req)} via ${v}: unexpected ${JSON.stringify(a.error)}`);
            }
          });
        };
        for (const batch of plan) {
          const calls = batch.map((c) => {
            if (c.kind === "batch") {
              const reqs = c.items.flatMap((item) => requestOf(item, c.via) ?? []);
              const grants = reqs.filter((r) => r.kind === "grant");
              const deducts = reqs.filter((r) => r.kind === "deduct");
              const d = deps[c.via];
              return Promise.all([
                grants.length > 0 ? batchGrant(d, grants.map(inputOf), { principal: null }).then((r) => checkBatch(grants, c.via, r.items)) : null,
                deducts.length > 0 ? batchDeduct(d, deducts.map(inputOf), { principal: null }).then((r) => checkBatch(deducts, c.via, r.items)) : null,
              ]);
            }
            const req = requestOf(c, c.via);
            if (!req) return Promise.resolve();
            const d = deps[c.via];
            const input = inputOf(req);
            const p = req.kind === "grant" ? grantCredits(d, input, { principal: null, requestId: null }) : deductCredits(d, input, { principal: null, requestId: null });
            return p.then(
              (r) => void told.push({ req, transactionId: r.transactionId, idempotent: r.idempotent }),
              (e: unknown) => {
                // The failpoints' own errors: before commit (rolled back) or after it (applied, answer lost).
                if (c.via !== "ok" && isFailpointError(e)) return;
                if (!isAppError(e) || !EXPECTED.has(e.code)) throw e;
              },
            );
          });
          await Promise.all(calls);
        }

        for (const c of await accountChecks(deps.ok.db, users)) {
          expect(c.balance).toBe(c.credits - c.debits);
          expect(c.balance).toBeGreaterThanOrEqual(0);
          expect(c.minBalanceAfter).toBeGreaterThanOrEqual(0);
        }
        // What a client was told is in the ledger, under that business key, with those values.
        const rows = await deps.ok.db.ledgerEntry.findMany({ where: { businessCode: "prop", businessId: { startsWith: `${run}-` } } });
        const byKey = new Map(rows.map((r) => [r.businessId, r]));
        for (const t of told) {
          const row = byKey.get(t.req.businessId);
          expect(row?.id).toBe(t.transactionId);
          expect(row).toMatchObject({ userId: t.req.userId, amount: BigInt(t.req.amount), type: t.req.kind === "grant" ? "CREDIT" : "DEBIT" });
        }
        // A deduction key whose every attempt rolled back left nothing.
        for (const s of sent) {
          const v = vias.get(s.businessId)!;
          if (s.kind === "deduct" && v.size === 1 && v.has("rollback")) expect(byKey.has(s.businessId)).toBe(false);
        }
      }),
      { numRuns: 30, interruptAfterTimeLimit: 40_000 },
    );
  });
});
