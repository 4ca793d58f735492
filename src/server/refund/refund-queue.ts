import { randomUUID } from "node:crypto";
import { AppError } from "~/server/infra/app-error";
import type { Query, Statement } from "~/server/infra/sql";
import type { RefundStatus } from "~/generated/prisma/client";

/**
 * The refund queue is the `refunds` table itself: a row is written PENDING in
 * the transaction that decides points must go back, and workers take due rows
 * with `FOR UPDATE SKIP LOCKED`. Statuses:
 *
 *   PENDING ──attempt fails──▶ RETRYING ──(REFUND_MAX_ATTEMPTS)──▶ FAILED ──▶ RESOLVED
 *      └──────────┴──── attempt credits ────▶ SUCCEEDED ◀── refund.retry ─┘
 *
 * Taking a row is a lease, not a state: the claim counts the attempt and
 * moves `next_attempt_at` past the lease, so a row whose worker died is due
 * again when the lease runs out. The attempt count fences what an attempt may
 * record afterwards: only the latest claim of a row writes its failure.
 */

/** A refund taken for one attempt. */
export type ClaimedRefund = {
  id: string;
  userId: string;
  creditTypeId: string;
  amount: bigint;
  reason: string;
  originalTransactionId: string;
  /** Its status when taken (PENDING or RETRYING; FAILED for an operator's retry). */
  status: RefundStatus;
  /** This attempt's number (the claim counted it). */
  attempts: number;
};

/** What `enqueueRefund` needs: the debit to give back, how much (the rest when left out), and why. */
export type RefundOrder = {
  debitId: string;
  /** The debit's user: the refund lives in (and the debit is found in) that user's partition. */
  userId: string;
  amount?: bigint | undefined;
  reason: string;
  /** What the refund came from (an order, an activity), kept with it for operators. */
  context?: Record<string, unknown> | undefined;
  /** The refund's id, when the caller needs to know it before the row exists. */
  id?: string | undefined;
};

const ENQUEUE_SQL: Statement = { name: "fp_refund_enqueue", text: `
WITH want AS (
  SELECT e.id, e.user_id, e.credit_type_id, coalesce($2::bigint, e.amount - e.refunded_amount) AS amount
  FROM ledger_entries e WHERE e.id = $1::uuid AND e.user_id = $7 AND e.type = 'DEBIT'
), counted AS (
  UPDATE ledger_entries e SET refunded_amount = e.refunded_amount + w.amount
  FROM want w
  WHERE e.id = w.id AND e.user_id = $7 AND w.amount > 0 AND e.refunded_amount + w.amount <= e.amount
  RETURNING e.id
), queued AS (
  INSERT INTO refunds (id, user_id, credit_type_id, amount, reason, original_transaction_id, status, attempts,
                       next_attempt_at, context, created_at, updated_at)
  SELECT $3::uuid, w.user_id, w.credit_type_id, w.amount, $4, w.id, 'PENDING', 0, $5, $6::jsonb, $5, $5
  FROM want w JOIN counted c ON c.id = w.id
  RETURNING id
)
SELECT (SELECT count(*) FROM want)::int AS found, (SELECT count(*) FROM queued)::int AS queued` };

/**
 * Queues a refund of (part of) a debit, inside the caller's transaction (the
 * one that decides the points must go back), so it is never only in memory.
 * The amount counts against the debit at once (`refunded_amount`, kept within
 * the debit by a CHECK on its row): all refunds of one debit, queued or
 * immediate, never exceed it. Returns the refund's id.
 */
export async function enqueueRefund(q: Query, order: RefundOrder, now: Date): Promise<string> {
  const id = order.id ?? randomUUID();
  const [row] = await q<{ found: number; queued: number }>(ENQUEUE_SQL, [
    order.debitId,
    order.amount === undefined ? null : order.amount.toString(),
    id,
    order.reason.slice(0, 200),
    now,
    order.context === undefined ? null : JSON.stringify(order.context),
    order.userId,
  ]);
  if (!row?.found) throw new AppError("TRANSACTION_NOT_FOUND", `no debit with transaction id ${order.debitId}`);
  if (!row.queued) {
    throw new AppError("REFUND_EXCEEDS_DEBIT", `a refund of ${order.amount ?? "the rest"} would take refunds of ${order.debitId} past the debit`);
  }
  return id;
}

// A fan-out by design: due refunds are found by (status, next_attempt_at)
// in every partition's index; each is then updated by its full key.
const CLAIM_SQL: Statement = { name: "fp_refund_claim", text: `
WITH due AS (
  SELECT id, user_id FROM refunds
  WHERE status IN ('PENDING', 'RETRYING') AND next_attempt_at <= $1
  ORDER BY next_attempt_at
  LIMIT $2
  FOR UPDATE SKIP LOCKED
)
UPDATE refunds f SET attempts = f.attempts + 1, next_attempt_at = $3, version = f.version + 1, updated_at = $1
FROM due WHERE f.id = due.id AND f.user_id = due.user_id
RETURNING f.id, f.user_id AS "userId", f.credit_type_id AS "creditTypeId", f.amount::text AS amount, f.reason,
          f.original_transaction_id AS "originalTransactionId", f.status, f.attempts` };

type ClaimRow = Omit<ClaimedRefund, "amount"> & { amount: string };

const toClaimed = (r: ClaimRow): ClaimedRefund => ({ ...r, amount: BigInt(r.amount) });

/**
 * Takes up to `limit` due refunds for one attempt each, oldest due first.
 * Rows another worker is taking are skipped, not waited for; each taken row
 * is leased until `leaseUntil`.
 */
export async function claimDueRefunds(q: Query, opts: { now: Date; limit: number; leaseUntil: Date }): Promise<ClaimedRefund[]> {
  const rows = await q<ClaimRow>(CLAIM_SQL, [opts.now, opts.limit, opts.leaseUntil]);
  return rows.map(toClaimed);
}

const CLAIM_ONE_SQL = `
UPDATE refunds f SET attempts = f.attempts + 1, next_attempt_at = $2,
       status = CASE WHEN f.status = 'FAILED' THEN 'RETRYING'::"RefundStatus" ELSE f.status END,
       version = f.version + 1, updated_at = $3
FROM (SELECT id, user_id, status FROM refunds WHERE id = $1::uuid) before
WHERE f.id = before.id AND f.user_id = before.user_id AND f.status IN ('PENDING', 'RETRYING', 'FAILED')
RETURNING f.id, f.user_id AS "userId", f.credit_type_id AS "creditTypeId", f.amount::text AS amount, f.reason,
          f.original_transaction_id AS "originalTransactionId", before.status, f.attempts`;

/**
 * Takes one refund for an immediate attempt (an operator's retry), whatever
 * its schedule; a FAILED refund is RETRYING while the attempt runs. Call it in
 * the transaction that holds the row (`SELECT … FOR UPDATE`), so `before`
 * reads the status it replaces. Null when the refund is not one that may be
 * attempted (SUCCEEDED or RESOLVED).
 */
export async function claimRefund(q: Query, id: string, opts: { now: Date; leaseUntil: Date }): Promise<ClaimedRefund | null> {
  const [row] = await q<ClaimRow>(CLAIM_ONE_SQL, [id, opts.leaseUntil, opts.now]);
  return row ? toClaimed(row) : null;
}

const FAIL_SQL: Statement = { name: "fp_refund_fail", text: `
UPDATE refunds SET status = $3::"RefundStatus", next_attempt_at = $4, last_error = $5, version = version + 1, updated_at = $6
WHERE id = $1::uuid AND user_id = $7 AND attempts = $2 AND status IN ('PENDING', 'RETRYING')
RETURNING status` };

/**
 * Records a failed attempt: RETRYING until `nextAttemptAt`, or FAILED when it
 * was the last. Only the latest claim of the row may (attempt number), and
 * only while the row is still due: a row that succeeded or was taken again
 * meanwhile is left as it is. Returns the status written, or null.
 */
export async function recordRefundFailure(
  q: Query,
  failure: { id: string; userId: string; attempts: number; status: "RETRYING" | "FAILED"; nextAttemptAt: Date; error: string; now: Date },
): Promise<RefundStatus | null> {
  const [row] = await q<{ status: RefundStatus }>(FAIL_SQL, [
    failure.id,
    failure.attempts,
    failure.status,
    failure.nextAttemptAt,
    failure.error.slice(0, 1000),
    failure.now,
    failure.userId,
  ]);
  return row?.status ?? null;
}

const MARK_SQL = `
UPDATE refunds SET status = 'SUCCEEDED', refund_transaction_id = $2::uuid, last_error = NULL, version = version + 1, updated_at = $3
WHERE id = $1::uuid AND user_id = $4 AND status IN ('PENDING', 'RETRYING')`;

/**
 * Marks a refund SUCCEEDED with a credit already in the ledger under its
 * business key. The engine marks the row in the credit's own statement; this
 * is for a credit that turned out to be there already.
 */
export async function markRefundSucceeded(q: Query, refund: { id: string; userId: string }, transactionId: string, now: Date): Promise<void> {
  await q(MARK_SQL, [refund.id, transactionId, now, refund.userId]);
}
