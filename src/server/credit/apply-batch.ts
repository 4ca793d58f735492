import { randomUUID } from "node:crypto";
import type { Deps } from "~/server/infra/deps";
import { AppError } from "~/server/infra/app-error";
import { isForeignKeyViolation, isUniqueViolation, mapDbError } from "~/server/infra/db";
import { sqlOf, type Query, type SqlRunner } from "~/server/infra/sql";
import { failOperations, startOperations, type OperationStart } from "~/server/operations/operation-log";
import { acquireLocks } from "~/server/resilience/lock";
import { planBatch, type BatchPlan, type PlanItem } from "./batch-plan";
import {
  readBatchState,
  requestKey,
  writeBatch,
  type BatchWrite,
  type RecordInsert,
} from "./batch-statements";
import { balanceChangeResult, type GrantResult, type PurchaseOutcome, type RefundResult } from "./results";
import type { BalanceChange } from "./types";

/**
 * One batch of the balance engine, start to end:
 *
 *   1. in parallel: the account locks of the batch (one redlock call) and the
 *      operation rows of every item recorded `started` (one statement, one
 *      commit for the whole batch, not one per change): what a client that
 *      timed out sees as `in_progress`, and what the worker resolves if the
 *      process dies;
 *   2. one transaction: read what the batch needs (one statement), decide in
 *      memory (batch-plan.ts), write everything, the operations' results
 *      included (one statement), check that every versioned update matched,
 *      commit;
 *   3. release the locks.
 *
 * Items whose account is locked by another instance are handed back to the
 * engine to try again; the rest get their own answer.
 */

/** A balance change inside the engine: the ids it will carry are fixed when it is submitted. */
export type EngineItem = {
  change: BalanceChange;
  /** When it was submitted: its operation's start. */
  submittedAt: Date;
  operationId: string;
  transactionId: string;
  lockKey: string;
};

export type ItemOutcome = { ok: true; result: GrantResult } | { ok: false; error: AppError };

export type BatchRun = {
  outcomes: Map<EngineItem, ItemOutcome>;
  /** Items whose account another instance holds: not run, to be tried again (their operation rows are written). */
  deferred: EngineItem[];
};

/**
 * Records the operations of items that did not apply (their batch rolled
 * back, or they waited too long for their account) as failed, with the reason.
 */
export async function abandonItems(deps: Deps, items: readonly EngineItem[], error: AppError, sql: SqlRunner = sqlOf(deps.db)): Promise<void> {
  await failOperations(sql.query, items.map(operationStart), error, deps.clock.now()).catch((e: unknown) =>
    deps.log.warn({ err: e, items: items.length }, "could not record operations as failed"),
  );
}

/** Passes through one batch after a versioned update found the account moved (only without the lock). */
const VERSION_RETRIES = 5;

class AccountMoved extends Error {}

export async function applyBatch(deps: Deps, items: readonly EngineItem[], sql: SqlRunner = sqlOf(deps.db)): Promise<BatchRun> {
  const outcomes = new Map<EngineItem, ItemOutcome>();
  const [locking, starting] = await Promise.allSettled([
    acquireLocks(deps, [...new Set(items.map((i) => i.lockKey))], deps.env.LOCK_TTL_MS),
    startOperations(sql.query, items.map(operationStart)),
  ]);
  // acquireLocks answers `degraded` rather than throw; this is only a guard.
  const locks = locking.status === "fulfilled" ? locking.value : null;
  if (starting.status === "rejected") {
    // PostgreSQL refused the first statement: nothing of the batch ran.
    await locks?.release();
    const error = asAppError(starting.reason);
    for (const item of items) outcomes.set(item, { ok: false, error });
    return { outcomes, deferred: [] };
  }
  const ready = locks ? items.filter((i) => locks.held.has(i.lockKey)) : [...items];
  const deferred = locks ? items.filter((i) => !locks.held.has(i.lockKey)) : [];
  try {
    if (ready.length > 0) await runTransaction(deps, sql, ready, outcomes);
  } catch (e) {
    const error = asAppError(e);
    await abandonItems(deps, ready, error, sql);
    for (const item of ready) outcomes.set(item, { ok: false, error });
  } finally {
    await locks?.release();
  }
  return { outcomes, deferred };
}

function asAppError(e: unknown): AppError {
  const mapped = mapDbError(e);
  return mapped instanceof AppError ? mapped : new AppError("INTERNAL", "the balance change failed", { cause: mapped });
}

function operationStart(item: EngineItem): OperationStart {
  const { change } = item;
  return {
    id: item.operationId,
    type: change.operationType,
    userId: change.request.userId,
    creditTypeId: change.request.creditTypeId,
    principal: change.caller.principal,
    requestId: change.caller.requestId,
    businessCode: change.request.businessCode,
    businessId: change.request.businessId,
    input: change.request,
    startedAt: item.submittedAt,
  };
}

async function runTransaction(
  deps: Deps,
  sql: SqlRunner,
  items: readonly EngineItem[],
  outcomes: Map<EngineItem, ItemOutcome>,
): Promise<void> {
  for (let attempt = 1; ; attempt++) {
    try {
      const { results, write } = await sql.transaction((q) => applyOnce(deps, q, items));
      for (const [item, outcome] of results) outcomes.set(item, outcome);
      markRecorded(items, write.records);
      return;
    } catch (e) {
      // Someone changed an account or used a key between our read and our
      // write (a lock that expired, Redis down, another instance): read again.
      const raced = e instanceof AccountMoved || isUniqueViolation(e) || isForeignKeyViolation(e);
      if (raced && attempt < VERSION_RETRIES) continue;
      if (raced) {
        throw new AppError("VERSION_CONFLICT", "the account kept changing during the change; retry shortly", {
          retryAfterMs: 20 + Math.floor(Math.random() * 80),
          cause: e,
        });
      }
      throw e;
    }
  }
}

async function applyOnce(
  deps: Deps,
  q: Query,
  items: readonly EngineItem[],
): Promise<{ results: Map<EngineItem, ItemOutcome>; write: BatchWrite }> {
  const now = deps.clock.now();
  const tickets = items.map((i) => i.change.caller.record ?? null);
  const state = await readBatchState(q, {
    users: [...new Set(items.map((i) => i.change.request.userId))],
    debits: [...new Set(items.flatMap((i) => (i.change.refund?.kind === "immediate" ? [i.change.refund.originalTransactionId] : [])))],
    refunds: [...new Set(items.flatMap((i) => (i.change.refund?.kind === "queued" ? [i.change.refund.refundId] : [])))],
    items: [...new Set(items.flatMap((i) => (i.change.purchase ? [i.change.purchase.itemId] : [])))],
    buyers: items.flatMap((i) => (i.change.purchase ? [{ userId: i.change.request.userId, itemId: i.change.purchase.itemId }] : [])),
    businessKeys: items.map((i) => ({ code: i.change.request.businessCode, id: i.change.request.businessId })),
    accounts: items.map((i) => ({ userId: i.change.request.userId, creditTypeId: i.change.request.creditTypeId })),
    creditTypes: [...new Set(items.filter((i) => i.change.type === "CREDIT").map((i) => i.change.request.creditTypeId))],
    requestIds: tickets.flatMap((t) => (t ? [{ principal: t.principal, requestId: t.requestId }] : [])),
    now,
  });
  const seen = new Set<string>();
  const planItems: PlanItem[] = items.map((i, n) => {
    const t = tickets[n];
    const rkey = t ? requestKey(t.principal, t.requestId) : null;
    // A request id recorded already, or twice in this batch (possible only
    // while Redis is down): only its first execution may run.
    const fenced = rkey !== null && (state.recorded.has(rkey) || seen.has(rkey));
    if (rkey) seen.add(rkey);
    return {
      type: i.change.type,
      userId: i.change.request.userId,
      creditTypeId: i.change.request.creditTypeId,
      amount: BigInt(i.change.request.amount),
      businessCode: i.change.request.businessCode,
      businessId: i.change.request.businessId,
      operationId: i.operationId,
      transactionId: i.transactionId,
      fenced,
      ...(i.change.refund?.kind === "immediate" ? { refundOf: i.change.refund.originalTransactionId } : {}),
      ...(i.change.refund?.kind === "queued" ? { queuedRefund: i.change.refund.refundId } : {}),
      ...(i.change.purchase ? { purchaseOf: i.change.purchase.itemId } : {}),
    };
  });
  const plan = planBatch(planItems, state, randomUUID);
  const { write, results } = buildWrite(items, plan, now);
  const counts = await writeBatch(q, write);
  if (
    counts.updated !== plan.updates.length ||
    counts.created !== plan.creates.length ||
    counts.recorded !== write.records.length ||
    counts.refunded !== plan.refunded.length ||
    counts.marked !== write.marks.length ||
    counts.ordered !== write.orders.length ||
    counts.soldUpdated !== plan.sold.length
  ) {
    throw new AccountMoved();
  }
  // Inside the transaction: a failure here rolls the batch back (drills, breaker tests).
  if (items.some((i) => i.change.type === "DEBIT")) await deps.failpoints.hit("credit.beforeCommit");
  return { results, write };
}

/** The plan as rows: ledger, events, operation results and request records, in item order. */
function buildWrite(
  items: readonly EngineItem[],
  plan: BatchPlan,
  now: Date,
): { write: BatchWrite; results: Map<EngineItem, ItemOutcome> } {
  const write: BatchWrite = {
    updates: plan.updates,
    creates: plan.creates,
    refunded: plan.refunded,
    refunds: [],
    marks: [],
    orders: [],
    sold: plan.sold,
    ledger: [],
    events: [],
    operations: [],
    records: [],
    now,
  };
  const results = new Map<EngineItem, ItemOutcome>();
  const expiresAt = (ttlSeconds: number) => new Date(now.getTime() + ttlSeconds * 1000);
  items.forEach((item, n) => {
    const decision = plan.decisions[n];
    const { change } = item;
    const req = change.request;
    if (!decision) throw new Error("the plan has no decision for an item");
    if (decision.kind === "refused") {
      write.operations.push({
        id: item.operationId,
        userId: req.userId,
        status: "failed",
        result: null,
        errorCode: decision.error.code,
        errorMessage: decision.error.message.slice(0, 1000),
      });
      results.set(item, { ok: false, error: decision.error });
      return;
    }
    let result: GrantResult;
    if (decision.kind === "applied") {
      result = withRefundedTotal(
        balanceChangeResult(change.type, {
          transactionId: item.transactionId,
          operationId: item.operationId,
          balanceAfter: decision.balanceAfter,
          idempotent: false,
        }),
        decision.refundedTotal,
      );
      if (change.purchase) {
        write.orders.push({
          id: change.purchase.orderId,
          userId: req.userId,
          activityId: change.purchase.activityId,
          itemId: change.purchase.itemId,
          creditTypeId: req.creditTypeId,
          pointsPaid: BigInt(req.amount),
          transactionId: item.transactionId,
          operationId: item.operationId,
        });
        result = { ...result, orderId: change.purchase.orderId, pointsPaid: req.amount } as PurchaseOutcome;
      }
      if (change.refund?.kind === "queued") {
        write.marks.push({ refundId: change.refund.refundId, userId: req.userId, transactionId: item.transactionId });
      } else if (change.refund) {
        write.refunds.push({
          id: randomUUID(),
          userId: req.userId,
          creditTypeId: req.creditTypeId,
          amount: BigInt(req.amount),
          reason: change.refund.reason,
          originalTransactionId: change.refund.originalTransactionId,
          transactionId: item.transactionId,
        });
      }
      write.ledger.push({
        id: item.transactionId,
        accountId: decision.accountId,
        userId: req.userId,
        creditTypeId: req.creditTypeId,
        type: change.type,
        amount: BigInt(req.amount),
        balanceAfter: decision.balanceAfter,
        businessCode: req.businessCode,
        businessId: req.businessId,
        operationId: item.operationId,
      });
      write.events.push({
        type: change.eventType,
        userId: req.userId,
        payload: {
          ...req,
          ...(change.purchase ?? {}),
          accountId: decision.accountId,
          transactionId: item.transactionId,
          operationId: item.operationId,
          balanceAfter: result.balanceAfter,
        },
      });
      write.operations.push({ id: item.operationId, userId: req.userId, status: "completed", result, errorCode: null, errorMessage: null });
    } else {
      result = withRefundedTotal(
        balanceChangeResult(change.type, {
          transactionId: decision.transactionId,
          operationId: decision.operationId ?? item.operationId,
          balanceAfter: decision.balanceAfter,
          idempotent: true,
        }),
        decision.refundedTotal,
      );
      if (change.purchase) {
        result = { ...result, orderId: decision.orderId ?? change.purchase.orderId, pointsPaid: req.amount } as PurchaseOutcome;
      }
      write.operations.push({
        id: item.operationId,
        userId: req.userId,
        status: "skipped",
        result: { ...result, existingTransactionId: decision.transactionId },
        errorCode: null,
        errorMessage: null,
      });
    }
    const ticket = change.caller.record;
    if (ticket) {
      write.records.push({
        principal: ticket.principal,
        requestId: ticket.requestId,
        procedure: ticket.procedure,
        inputHash: ticket.inputHash,
        userId: req.userId,
        operationId: item.operationId,
        response: result,
        expiresAt: expiresAt(ticket.ttlSeconds),
      });
    }
    results.set(item, { ok: true, result });
  });
  return { write, results };
}

/** A refund's answer carries the debit's refunded total. */
function withRefundedTotal(result: GrantResult, refundedTotal: bigint | undefined): GrantResult {
  return refundedTotal === undefined ? result : ({ ...result, refundedTotal: Number(refundedTotal) } as RefundResult);
}

/** After commit: tell each request-id middleware that its record is in. */
function markRecorded(items: readonly EngineItem[], records: readonly RecordInsert[]): void {
  const written = new Map(records.map((r) => [requestKey(r.principal, r.requestId), r]));
  for (const item of items) {
    const ticket = item.change.caller.record;
    const rec = ticket && written.get(requestKey(ticket.principal, ticket.requestId));
    if (ticket && rec) {
      ticket.recorded = {
        procedure: rec.procedure,
        inputHash: rec.inputHash,
        outcome: "success",
        operationId: rec.operationId,
        response: rec.response,
      };
    }
  }
}
