import { randomUUID } from "node:crypto";
import type { Deps } from "~/server/infra/deps";
import type { Tx } from "~/server/infra/db";
import { AppError } from "~/server/infra/app-error";
import { isUniqueViolation, mapDbError } from "~/server/infra/db";
import { startOperation, finishOperation, failOperation } from "~/server/operations/operation-log";
import type { OutboxEventType } from "~/server/outbox/outbox";
import { acquireLock, accountLockKey } from "~/server/resilience/lock";
import {
  assertSameRequest,
  EXISTING_ENTRY_SELECT,
  existingEntryCte,
  existingEntryOf,
  writeEntry,
  type ExistingEntryColumns,
  type LedgerRow,
} from "./ledger";
import { balanceChangeResult, type DeductResult } from "./results";
import type { BalanceChangeRequest, CallerInfo } from "./types";

export type { DeductResult };

/**
 * Re-reads after a lost versioned update, within the same transaction. With the
 * lock held there is no competitor; these only matter when the lock expired or
 * Redis is down, and past them the client is told to come back.
 */
export const VERSION_RETRIES = 5;

const DEDUCTED_EVENT: OutboxEventType = "credit.deducted";

/**
 * Debits an account, at most once per business key, never below zero.
 *
 * The lock (Redis) queues competitors for a hot account outside Postgres; the
 * transaction decides: idempotency check, balance check, versioned update, ledger
 * row, outbox event and operation status commit together or not at all. If the
 * lock expires mid-way or Redis is down, the versioned update and the unique
 * business key still let exactly the right deductions through.
 */
export async function deductCredits(deps: Deps, req: BalanceChangeRequest, caller: CallerInfo): Promise<DeductResult> {
  const { db, clock, env } = deps;
  const operationId = randomUUID();
  // The started row is committed before the work (so a client that timed out
  // sees the operation in progress, and the worker can resolve it if this
  // process dies mid-way) — written while waiting for the lock, so that the
  // account stays locked only for the transaction itself.
  const [locking, starting] = await Promise.allSettled([
    acquireLock(deps, accountLockKey(req.userId, req.creditTypeId), { ttlMs: env.LOCK_TTL_MS, waitMs: env.LOCK_WAIT_MS }),
    startOperation(db, {
      id: operationId,
      type: "credit.deduct",
      userId: req.userId,
      creditTypeId: req.creditTypeId,
      principal: caller.principal,
      requestId: caller.requestId,
      businessCode: req.businessCode,
      businessId: req.businessId,
      input: req,
    }),
  ]);
  if (starting.status === "rejected") {
    if (locking.status === "fulfilled") await locking.value.release();
    throw starting.reason;
  }
  let result: DeductResult | undefined;
  let failure: unknown;
  if (locking.status === "rejected") {
    failure = locking.reason;
  } else {
    try {
      result = await applyWithDuplicateRetry(deps, req, operationId, caller);
    } catch (e) {
      failure = e;
    } finally {
      await locking.value.release();
    }
  }
  if (!result) {
    const err = mapDbError(failure);
    const app = err instanceof AppError ? err : new AppError("INTERNAL", "deduction failed", { cause: err });
    await failOperation(db, operationId, app, clock.now()).catch((fe: unknown) =>
      deps.log.error({ err: fe, operationId }, "could not mark operation failed"),
    );
    throw err;
  }
  // The deduction is committed; a failure from here on loses only the answer,
  // which the client recovers by status, by request id or by repeating the key.
  await deps.failpoints.hit("credit.afterCommit");
  return result;
}

async function applyWithDuplicateRetry(
  deps: Deps,
  req: BalanceChangeRequest,
  operationId: string,
  caller: CallerInfo,
): Promise<DeductResult> {
  for (let attempt = 0; ; attempt++) {
    try {
      return await deps.db.$transaction((tx) => applyDeduct(deps, tx, req, operationId, caller));
    } catch (e) {
      // A racing duplicate of the business key committed first: the next pass
      // finds its ledger row and answers idempotently.
      if (isUniqueViolation(e) && attempt === 0) continue;
      throw e;
    }
  }
}

async function applyDeduct(
  deps: Deps,
  tx: Tx,
  req: BalanceChangeRequest,
  operationId: string,
  caller: CallerInfo,
): Promise<DeductResult> {
  const now = deps.clock.now();
  const amount = BigInt(req.amount);
  let updated: { id: string; balance: bigint } | undefined;
  for (let i = 0; i < VERSION_RETRIES && !updated; i++) {
    const step = await checkAndDebit(tx, req, amount, now);
    if (step.kind === "repeat") {
      const existing = step.entry;
      assertSameRequest(existing, { type: "DEBIT", ...req });
      const result = balanceChangeResult("DEBIT", {
        transactionId: existing.id,
        operationId: existing.operationId ?? operationId,
        balanceAfter: existing.balanceAfter,
        idempotent: true,
      });
      await finishOperation(tx, operationId, "skipped", result, now);
      await caller.recordRequest?.(tx, { operationId, userId: req.userId, response: result });
      return result;
    }
    if (step.kind === "no-account") throw new AppError("ACCOUNT_NOT_FOUND", `no account for user ${req.userId} in ${req.creditTypeId}`);
    if (step.kind === "insufficient") {
      throw new AppError("INSUFFICIENT_BALANCE", `the balance is less than ${req.amount}; nothing was deducted`);
    }
    if (step.kind === "debited") updated = { id: step.accountId, balance: step.balanceAfter };
    // "moved": the version changed between read and update; read again.
  }
  if (!updated) {
    throw new AppError("VERSION_CONFLICT", "the account kept changing during the deduction; retry shortly", {
      retryAfterMs: 20 + Math.floor(Math.random() * 80),
    });
  }

  const transactionId = randomUUID();
  const result = balanceChangeResult("DEBIT", { transactionId, operationId, balanceAfter: updated.balance, idempotent: false });
  const payload = { ...req, accountId: updated.id, transactionId, operationId, balanceAfter: result.balanceAfter };
  await writeEntry(tx, {
    ...req,
    transactionId,
    accountId: updated.id,
    type: "DEBIT",
    amount,
    balanceAfter: updated.balance,
    operationId,
    now,
    event: { type: DEDUCTED_EVENT, payload },
    result,
  });
  await caller.recordRequest?.(tx, { operationId, userId: req.userId, response: result });
  // Inside the transaction: a failure here rolls everything back (drills, breaker tests).
  await deps.failpoints.hit("credit.beforeCommit");
  return result;
}

type CheckStep =
  | { kind: "repeat"; entry: LedgerRow }
  | { kind: "no-account" }
  | { kind: "insufficient" }
  | { kind: "moved" }
  | { kind: "debited"; accountId: string; balanceAfter: bigint };

/**
 * Idempotency check, balance check and versioned update in one round trip
 * (each one here is time the account stays locked). The UPDATE applies only to
 * the version the SELECT saw — a change in between (lock expired, Redis down)
 * makes it match nothing — and only when the business key is unused and the
 * balance covers the amount.
 */
async function checkAndDebit(tx: Tx, req: BalanceChangeRequest, amount: bigint, now: Date): Promise<CheckStep> {
  const [row] = await tx.$queryRaw<
    (ExistingEntryColumns & { id: string | null; balance: bigint | null; new_balance: bigint | null })[]
  >`
    WITH ${existingEntryCte(req.businessCode, req.businessId)}, cur AS (
      SELECT id, balance, version FROM accounts
      WHERE user_id = ${req.userId} AND credit_type_id = ${req.creditTypeId} AND NOT EXISTS (SELECT 1 FROM existing)
    ), upd AS (
      UPDATE accounts a SET balance = a.balance - ${amount}, version = a.version + 1, updated_at = ${now}
      FROM cur WHERE a.id = cur.id AND a.version = cur.version AND cur.balance >= ${amount}
      RETURNING a.balance
    )
    SELECT ${EXISTING_ENTRY_SELECT}, cur.id::text AS id, cur.balance, (SELECT balance FROM upd) AS new_balance
    FROM (SELECT 1) AS one LEFT JOIN existing e ON true LEFT JOIN cur ON true`;
  const existing = existingEntryOf(row, req);
  if (existing) return { kind: "repeat", entry: existing };
  if (!row?.id || row.balance === null) return { kind: "no-account" };
  if (row.balance < amount) return { kind: "insufficient" };
  if (row.new_balance === null) return { kind: "moved" };
  return { kind: "debited", accountId: row.id, balanceAfter: row.new_balance };
}
