import type { Deps } from "~/server/infra/deps";
import { AppError } from "~/server/infra/app-error";
import { raiseAlert } from "~/server/infra/alerts";
import { sqlOf } from "~/server/infra/sql";
import { balanceEngine } from "~/server/credit/balance-engine";
import { refundBackoffMs } from "./backoff";
import { markRefundSucceeded, recordRefundFailure, type ClaimedRefund } from "./refund-queue";
import { refundMetrics } from "./refund-metrics";

/** The business code of the credits that apply queued refunds; the business id is the refund's id. */
export const REFUND_BUSINESS_CODE = "refund";

export type AttemptOutcome =
  | { kind: "succeeded"; transactionId: string }
  /** The attempt failed; the refund is RETRYING (due again later) or FAILED. */
  | { kind: "failed"; status: "RETRYING" | "FAILED" | null; error: AppError }
  /** The refund was settled elsewhere meanwhile (resolved, or taken over): nothing done. */
  | { kind: "superseded"; error: AppError };

/** When a refund taken now must be done, or is free for another worker. */
export const leaseUntil = (deps: Pick<Deps, "env" | "clock">): Date => new Date(deps.clock.now().getTime() + deps.env.REFUND_LEASE_MS);

/**
 * One attempt at a taken refund: the credit goes through the balance engine
 * under the business key (`refund`, <refund id>), and the same statement
 * marks the row SUCCEEDED — so a crash between the credit and the mark
 * cannot happen, and a second attempt (a worker that took the row over, an
 * operator's retry) is answered by the ledger as a repeat, never credited
 * twice. A failure records the next attempt with back-off, or FAILED with one
 * alert after the last.
 */
export async function attemptRefund(
  deps: Deps,
  refund: ClaimedRefund,
  opts: { random?: () => number } = {},
): Promise<AttemptOutcome> {
  const metrics = refundMetrics(deps.metrics);
  let error: AppError;
  try {
    await deps.failpoints.hit("refund.apply");
    const outcome = await balanceEngine(deps).submit(
      {
        type: "CREDIT",
        operationType: "refund.apply",
        eventType: "credit.refunded",
        request: {
          userId: refund.userId,
          creditTypeId: refund.creditTypeId,
          amount: Number(refund.amount),
          businessCode: REFUND_BUSINESS_CODE,
          businessId: refund.id,
        },
        caller: { principal: null, requestId: null },
        refund: { kind: "queued", refundId: refund.id },
      },
      { waitMs: Math.max(deps.env.LOCK_WAIT_MS, deps.env.DB_TX_TIMEOUT_MS) },
    );
    if (outcome.ok) {
      // A repeat: the credit is in the ledger already (its row was marked with it).
      if (outcome.result.idempotent) await markRefundSucceeded(sqlOf(deps.db).query, refund, outcome.result.transactionId, deps.clock.now());
      metrics.attempts.inc({ outcome: "succeeded" });
      return { kind: "succeeded", transactionId: outcome.result.transactionId };
    }
    error = outcome.error;
  } catch (e) {
    error = e instanceof AppError ? e : new AppError("INTERNAL", e instanceof Error ? e.message : "the refund attempt failed", { cause: e });
  }
  if (error.code === "INVALID_STATE" || error.code === "REFUND_NOT_FOUND") {
    metrics.attempts.inc({ outcome: "superseded" });
    return { kind: "superseded", error };
  }
  metrics.attempts.inc({ outcome: "failed" });
  return { kind: "failed", status: await recordFailure(deps, refund, error, opts.random ?? Math.random), error };
}

async function recordFailure(deps: Deps, refund: ClaimedRefund, error: AppError, random: () => number): Promise<"RETRYING" | "FAILED" | null> {
  const now = deps.clock.now();
  const last = refund.attempts >= deps.env.REFUND_MAX_ATTEMPTS;
  const delay = refundBackoffMs(refund.attempts, { baseMs: deps.env.REFUND_BACKOFF_BASE_MS, maxMs: deps.env.REFUND_BACKOFF_MAX_MS }, random);
  const written = await recordRefundFailure(sqlOf(deps.db).query, {
    id: refund.id,
    userId: refund.userId,
    attempts: refund.attempts,
    status: last ? "FAILED" : "RETRYING",
    nextAttemptAt: new Date(now.getTime() + delay),
    error: `${error.code}: ${error.message}`,
    now,
  }).catch((e: unknown) => {
    // The lease runs out and the refund is due again: nothing is lost.
    deps.log.warn({ err: e, refundId: refund.id }, "could not record a failed refund attempt; it is due again after its lease");
    return null;
  });
  deps.log.warn({ refundId: refund.id, attempt: refund.attempts, status: written, retryInMs: last ? null : delay, err: error }, "refund attempt failed");
  // One alert per refund: when it first becomes FAILED, not again when an operator's retry fails.
  if (written === "FAILED" && refund.status !== "FAILED") {
    refundMetrics(deps.metrics).failed.inc();
    raiseAlert(deps, {
      kind: "refund.failed",
      severity: "critical",
      summary: `refund ${refund.id} of ${refund.amount} ${refund.creditTypeId} to ${refund.userId} failed ${refund.attempts} times; it needs a person (retry or resolve)`,
      dedupKey: `refund.failed:${refund.id}`,
      details: {
        refundId: refund.id,
        userId: refund.userId,
        creditTypeId: refund.creditTypeId,
        amount: Number(refund.amount),
        originalTransactionId: refund.originalTransactionId,
        attempts: refund.attempts,
        lastError: `${error.code}: ${error.message}`,
      },
    });
  }
  return written === "RETRYING" || written === "FAILED" ? written : null;
}
