import { randomBytes } from "node:crypto";
import type { Deps } from "~/server/infra/deps";
import { sqlOf } from "~/server/infra/sql";
import { grantCredits } from "~/server/credit/grant";
import { deductCredits } from "~/server/credit/deduct";
import { enqueueRefund } from "./refund-queue";
import { REFUND_BUSINESS_CODE } from "./refund-attempt";

/**
 * Test support for the refund tests (integration only; imports nothing of
 * vitest): debits to give back, queued refunds, and what the books say.
 */

const internal = { principal: null, requestId: null };

export type Debited = { userId: string; creditTypeId: string; debitId: string };

/** `count` users, each granted `grant` points and then debited `debit` of them (through the engine). */
export async function debitedUsers(deps: Deps, count: number, opts: { creditTypeId: string; grant: number; debit: number }): Promise<Debited[]> {
  const tag = randomBytes(4).toString("hex");
  const users = Array.from({ length: count }, (_, i) => `rf-${tag}-${i}`);
  const key = (kind: string, userId: string) => ({ businessCode: `test.${kind}`, businessId: `${kind}-${userId}` });
  await Promise.all(
    users.map((userId) => grantCredits(deps, { userId, creditTypeId: opts.creditTypeId, amount: opts.grant, ...key("grant", userId) }, internal)),
  );
  return Promise.all(
    users.map(async (userId) => {
      const d = await deductCredits(deps, { userId, creditTypeId: opts.creditTypeId, amount: opts.debit, ...key("debit", userId) }, internal);
      return { userId, creditTypeId: opts.creditTypeId, debitId: d.transactionId };
    }),
  );
}

/** Queues a refund of each debit (the rest of it), all in one transaction; returns their ids in order. */
export async function queueRefunds(deps: Deps, debits: readonly Debited[], amount?: bigint): Promise<string[]> {
  return sqlOf(deps.db).transaction(async (q) => {
    const ids: string[] = [];
    for (const d of debits) ids.push(await enqueueRefund(q, { debitId: d.debitId, userId: d.userId, amount, reason: "test: purchase failed after its debit" }, deps.clock.now()));
    return ids;
  });
}

export type RefundCheck = { id: string; status: string; attempts: number; credits: number; credited: number };

/** Per refund: its status and attempts, and the credits the ledger holds under its business key. */
export async function refundChecks(deps: Deps, ids: readonly string[]): Promise<RefundCheck[]> {
  const rows = await deps.db.$queryRaw<{ id: string; status: string; attempts: number; credits: bigint; credited: bigint | null }[]>`
    SELECT f.id::text, f.status::text, f.attempts, count(l.id) AS credits, sum(l.amount) AS credited
    FROM refunds f LEFT JOIN ledger_entries l ON l.business_code = ${REFUND_BUSINESS_CODE} AND l.business_id = f.id::text
    WHERE f.id = ANY(${ids}::uuid[])
    GROUP BY f.id, f.user_id ORDER BY f.id`;
  return rows.map((r) => ({ id: r.id, status: r.status, attempts: r.attempts, credits: Number(r.credits), credited: Number(r.credited ?? 0) }));
}

/** Refunds of `ids` by status. */
export async function statusCounts(deps: Deps, ids: readonly string[]): Promise<Record<string, number>> {
  const rows = await deps.db.$queryRaw<{ status: string; n: number }[]>`
    SELECT status::text, count(*)::int AS n FROM refunds WHERE id = ANY(${ids}::uuid[]) GROUP BY status`;
  return Object.fromEntries(rows.map((r) => [r.status, r.n]));
}
