import type { Deps } from "~/server/infra/deps";
import type { Env } from "~/server/infra/env";
import { toJson } from "~/server/infra/db";
import { balanceChangeResult } from "./results";

/**
 * How long an operation may stay `started` before it is taken as abandoned (its
 * process died between the start row and the end of its transaction): past the
 * longest a live one can take — lock wait, pool wait, transaction timeout with
 * margin, and a lock TTL.
 */
export function stuckAfterMs(env: Env): number {
  return env.LOCK_WAIT_MS + env.DB_POOL_WAIT_MS + 2 * env.DB_TX_TIMEOUT_MS + env.LOCK_TTL_MS;
}

export const ABANDONED_CODE = "UNAVAILABLE";

/**
 * Resolves operations stuck `started` so that `operation.status` never reports
 * a dead request as running: a ledger row written by the operation means its
 * transaction committed → completed with the ledger's result; none means it
 * rolled back → failed. Rows are claimed with SKIP LOCKED, so several workers
 * can run this at once. Returns how many it resolved.
 */
export async function resolveStuckOperations(
  deps: Pick<Deps, "db" | "clock" | "env" | "log">,
  opts: { olderThanMs?: number; batch?: number } = {},
): Promise<number> {
  const cutoff = new Date(deps.clock.nowMs() - (opts.olderThanMs ?? stuckAfterMs(deps.env)));
  const batch = opts.batch ?? 100;
  return deps.db.$transaction(async (tx) => {
    // A fan-out by design (status, started_at in every partition); each one
    // found is then read and written by its user, in its own partition.
    const stuck = await tx.$queryRaw<{ id: string; userId: string; type: string }[]>`
      SELECT id, user_id AS "userId", type FROM operations
      WHERE status = 'started' AND started_at < ${cutoff}
      ORDER BY started_at
      LIMIT ${batch}
      FOR UPDATE SKIP LOCKED`;
    const now = deps.clock.now();
    for (const op of stuck) {
      const entry = await tx.ledgerEntry.findFirst({
        where: { userId: op.userId, operationId: op.id },
        select: { id: true, type: true, balanceAfter: true },
      });
      if (entry) {
        const result = balanceChangeResult(entry.type, {
          transactionId: entry.id,
          operationId: op.id,
          balanceAfter: entry.balanceAfter,
          idempotent: false,
        });
        await tx.operation.update({
          where: { id_userId: { id: op.id, userId: op.userId } },
          data: { status: "completed", result: toJson(result), finishedAt: now },
        });
      } else {
        await tx.operation.update({
          where: { id_userId: { id: op.id, userId: op.userId } },
          data: {
            status: "failed",
            errorCode: ABANDONED_CODE,
            errorMessage: "abandoned: the request stopped before it finished and nothing was applied; it is safe to retry",
            finishedAt: now,
          },
        });
      }
    }
    if (stuck.length > 0) deps.log.warn({ count: stuck.length }, "resolved operations left in progress by a stopped request");
    return stuck.length;
  });
}
