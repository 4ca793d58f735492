import type { Deps } from "~/server/infra/deps";
import { AppError, isAppError } from "~/server/infra/app-error";
import { checkRateLimit } from "~/server/resilience/rate-limit";
import { balanceEngine, type ItemOutcome } from "./balance-engine";
import type { DeductResult, GrantResult } from "./results";
import type { BalanceChange, BalanceChangeRequest } from "./types";

/**
 * `credit.batchDeduct` / `credit.batchGrant`: many balance changes in one
 * call, each applied or refused on its own exactly as the single call would
 * be (its own business key, balance check, and — for deductions — the rate
 * limit of its user), through the same engine. Not atomic: the answer has one
 * entry per item, in input order.
 */

export type BatchItemError = { appCode: AppError["code"]; message: string; retryAfterMs?: number };
export type BatchItemResult<T> = { ok: true; result: T } | { ok: false; error: BatchItemError };

function itemError(e: AppError): BatchItemError {
  return { appCode: e.code, message: e.message, ...(e.retryAfterMs !== undefined ? { retryAfterMs: e.retryAfterMs } : {}) };
}

/**
 * When every item failed for the same infrastructure reason the call itself
 * failed (the breaker counts it, the client retries it whole): throw that.
 */
function failedWhole(outcomes: ItemOutcome[]): AppError | null {
  const first = outcomes[0];
  if (!first || first.ok || first.error.code !== "UNAVAILABLE") return null;
  return outcomes.every((o) => !o.ok && o.error.code === "UNAVAILABLE") ? first.error : null;
}

async function run<T extends GrantResult>(
  deps: Deps,
  changes: (BalanceChange | AppError)[],
): Promise<{ items: BatchItemResult<T>[] }> {
  const engine = balanceEngine(deps);
  // A bulk caller would rather wait than get items back unapplied: its items
  // may wait for their accounts as long as a transaction may last.
  const waitMs = Math.max(deps.env.LOCK_WAIT_MS, deps.env.DB_TX_TIMEOUT_MS);
  const outcomes = await Promise.all(
    changes.map((c): Promise<ItemOutcome> => (c instanceof AppError ? Promise.resolve({ ok: false, error: c }) : engine.submit(c, { waitMs }))),
  );
  const whole = failedWhole(outcomes);
  if (whole) throw whole;
  return {
    items: outcomes.map((o) => (o.ok ? { ok: true, result: o.result as T } : { ok: false, error: itemError(o.error) })),
  };
}

type BatchCaller = { principal: string | null };

export async function batchDeduct(
  deps: Deps,
  items: readonly BalanceChangeRequest[],
  caller: BatchCaller,
): Promise<{ items: BatchItemResult<DeductResult>[] }> {
  // Each item takes a token from its user's bucket, as a single call would.
  const admitted = await Promise.all(
    items.map(async (request): Promise<BalanceChange | AppError> => {
      try {
        await checkRateLimit(deps, { procedure: "credit.batchDeduct", userId: request.userId, creditTypeId: request.creditTypeId });
      } catch (e) {
        if (isAppError(e)) return e;
        throw e;
      }
      return { type: "DEBIT", operationType: "credit.deduct", eventType: "credit.deducted", request, caller: { principal: caller.principal, requestId: null } };
    }),
  );
  return run<DeductResult>(deps, admitted);
}

export async function batchGrant(
  deps: Deps,
  items: readonly BalanceChangeRequest[],
  caller: BatchCaller,
): Promise<{ items: BatchItemResult<GrantResult>[] }> {
  return run<GrantResult>(
    deps,
    items.map((request) => ({
      type: "CREDIT",
      operationType: "credit.grant",
      eventType: "credit.granted",
      request,
      caller: { principal: caller.principal, requestId: null },
    })),
  );
}
