import type { Deps } from "~/server/infra/deps";
import { sqlOf } from "~/server/infra/sql";
import { attemptRefund, leaseUntil, type AttemptOutcome } from "./refund-attempt";
import { claimDueRefunds } from "./refund-queue";

/** Refunds one worker takes per round: small enough to finish well within the lease, large enough for full engine batches. */
export const REFUND_CLAIM_LIMIT = 200;

/**
 * One round of the refund worker: takes the refunds that are due (skipping
 * rows another worker holds) and attempts them all at once — the balance
 * engine applies them in a few batched transactions. Returns how many it
 * took; a stopping worker takes none and finishes the round it is in.
 */
export async function processDueRefunds(
  deps: Deps,
  opts: { limit?: number; signal?: AbortSignal; random?: () => number } = {},
): Promise<{ taken: number; outcomes: AttemptOutcome[] }> {
  if (opts.signal?.aborted) return { taken: 0, outcomes: [] };
  const now = deps.clock.now();
  const taken = await claimDueRefunds(sqlOf(deps.db).query, { now, limit: opts.limit ?? REFUND_CLAIM_LIMIT, leaseUntil: leaseUntil(deps) });
  const outcomes = await Promise.all(taken.map((r) => attemptRefund(deps, r, opts.random ? { random: opts.random } : {})));
  return { taken: taken.length, outcomes };
}
