import { randomUUID } from "node:crypto";
import type { Deps } from "~/server/infra/deps";
import { AppError } from "~/server/infra/app-error";
import { isUniqueViolation, mapDbError } from "~/server/infra/db";
import type { BalanceChangeRequest } from "~/server/api/schemas";
import { startOperation, finishOperation, failOperation } from "~/server/operations/operation-log";
import { enqueueEvent } from "~/server/outbox/outbox";
import { assertSameRequest, findByBusinessKey } from "./ledger";
import { assertCreditType } from "./accounts";
import type { RequestRecorder } from "~/server/resilience/request-replay";

export type GrantResult = {
  transactionId: string;
  operationId: string;
  balanceAfter: number;
  idempotent: boolean;
};

export type CallerInfo = {
  principal: string | null;
  requestId: string | null;
  /** X-Request-Id replay: records this request's result inside the effect's transaction. */
  recordRequest?: RequestRecorder | null;
};

/**
 * Credits an account (creating it if needed): balance and ledger row change in
 * one transaction, at most once per business key.
 */
export async function grantCredits(deps: Deps, req: BalanceChangeRequest, caller: CallerInfo): Promise<GrantResult> {
  const { db, clock } = deps;
  await assertCreditType(db, req.creditTypeId);
  const operationId = randomUUID();
  await startOperation(db, {
    id: operationId,
    type: "credit.grant",
    userId: req.userId,
    creditTypeId: req.creditTypeId,
    principal: caller.principal,
    requestId: caller.requestId,
    businessCode: req.businessCode,
    businessId: req.businessId,
    input: req,
  });
  try {
    for (let attempt = 0; ; attempt++) {
      try {
        return await applyGrant(deps, req, operationId, caller);
      } catch (e) {
        // A racing duplicate won the unique key: the next pass finds it.
        if (isUniqueViolation(e) && attempt === 0) continue;
        throw e;
      }
    }
  } catch (e) {
    const err = mapDbError(e);
    const app = err instanceof AppError ? err : new AppError("INTERNAL", "grant failed", { cause: err });
    await failOperation(db, operationId, app, clock.now()).catch((fe: unknown) =>
      deps.log.error({ err: fe, operationId }, "could not mark operation failed"),
    );
    throw err;
  }
}

async function applyGrant(
  deps: Deps,
  req: BalanceChangeRequest,
  operationId: string,
  caller: CallerInfo,
): Promise<GrantResult> {
  return deps.db.$transaction(async (tx) => {
    const now = deps.clock.now();
    const existing = await findByBusinessKey(tx, req.businessCode, req.businessId);
    if (existing) {
      assertSameRequest(existing, { type: "CREDIT", ...req });
      const result = {
        transactionId: existing.id,
        operationId: existing.operationId ?? operationId,
        balanceAfter: Number(existing.balanceAfter),
        idempotent: true,
      };
      await finishOperation(tx, operationId, "skipped", { ...result, existingTransactionId: existing.id }, now);
      await caller.recordRequest?.(tx, { operationId, userId: req.userId, response: result });
      return result;
    }
    const amount = BigInt(req.amount);
    // Atomic credit: no read-modify-write, so concurrent grants cannot lose an update.
    const [account] = await tx.$queryRaw<{ id: string; balance: bigint }[]>`
      INSERT INTO accounts (user_id, credit_type_id, balance, version, updated_at)
      VALUES (${req.userId}, ${req.creditTypeId}, ${amount}, 1, ${now})
      ON CONFLICT (user_id, credit_type_id)
      DO UPDATE SET balance = accounts.balance + EXCLUDED.balance, version = accounts.version + 1, updated_at = EXCLUDED.updated_at
      RETURNING id, balance`;
    if (!account) throw new AppError("INTERNAL", "account upsert returned nothing");
    const entry = await tx.ledgerEntry.create({
      data: {
        accountId: account.id,
        userId: req.userId,
        creditTypeId: req.creditTypeId,
        type: "CREDIT",
        amount,
        balanceAfter: account.balance,
        businessCode: req.businessCode,
        businessId: req.businessId,
        operationId,
        createdAt: now,
      },
      select: { id: true },
    });
    const result = { transactionId: entry.id, operationId, balanceAfter: Number(account.balance), idempotent: false };
    await enqueueEvent(tx, {
      type: "credit.granted",
      userId: req.userId,
      payload: { ...req, accountId: account.id, transactionId: entry.id, operationId, balanceAfter: result.balanceAfter },
    });
    await finishOperation(tx, operationId, "completed", result, now);
    await caller.recordRequest?.(tx, { operationId, userId: req.userId, response: result });
    return result;
  });
}
