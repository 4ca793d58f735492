import type { Deps } from "~/server/infra/deps";
import { counterOf, gaugeOf, type Metrics } from "~/server/infra/metrics";

/** Counters of the refund attempts this process made. */
export function refundMetrics(metrics: Metrics) {
  const registry = metrics.registry;
  return {
    attempts: counterOf(registry, "fp_refund_attempts_total", "Refund attempts by outcome (succeeded, failed, superseded)", ["outcome"] as const),
    failed: counterOf(registry, "fp_refunds_failed_total", "Refunds that became FAILED after their last attempt (each raised one alert)", []),
  };
}

const ACTIVE = ["PENDING", "RETRYING", "FAILED"] as const;

/**
 * The queue as the whole deployment sees it, read from PostgreSQL right
 * before a scrape: refunds by status (the ones still needing something) and
 * the age of the oldest one due. A database that does not answer leaves the
 * last values.
 */
export async function refreshRefundGauges(deps: Pick<Deps, "db" | "clock" | "metrics">): Promise<void> {
  const registry = deps.metrics.registry;
  const depth = gaugeOf(registry, "fp_refund_queue_depth", "Refunds by status: PENDING and RETRYING still to be applied, FAILED waiting for a person", ["status"] as const);
  const oldest = gaugeOf(registry, "fp_refund_oldest_due_seconds", "How long the oldest due refund (PENDING or RETRYING) has been due; 0 when none is", []);
  const queue = await refundQueueState(deps).catch(() => null);
  if (!queue) return;
  for (const status of ACTIVE) depth.set({ status }, queue[status]);
  oldest.set(queue.oldestDueSeconds);
}

/** The refunds that still need something, by status, and how long the oldest due one has waited (s). */
export type RefundQueueState = Record<(typeof ACTIVE)[number], number> & { oldestDueSeconds: number };

export async function refundQueueState(deps: Pick<Deps, "db" | "clock">): Promise<RefundQueueState> {
  const now = deps.clock.now();
  const rows = await deps.db.$queryRaw<{ status: string; n: number; due_since: Date | null }[]>`
    SELECT status::text, count(*)::int AS n,
           min(next_attempt_at) FILTER (WHERE status IN ('PENDING', 'RETRYING') AND next_attempt_at <= ${now}) AS due_since
    FROM refunds WHERE status IN ('PENDING', 'RETRYING', 'FAILED') GROUP BY status`;
  const dueSince = rows.flatMap((r) => (r.due_since ? [r.due_since.getTime()] : []));
  return {
    PENDING: rows.find((r) => r.status === "PENDING")?.n ?? 0,
    RETRYING: rows.find((r) => r.status === "RETRYING")?.n ?? 0,
    FAILED: rows.find((r) => r.status === "FAILED")?.n ?? 0,
    oldestDueSeconds: dueSince.length ? Math.max(0, (now.getTime() - Math.min(...dueSince)) / 1000) : 0,
  };
}
