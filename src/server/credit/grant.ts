import { randomUUID } from "node:crypto";
import type { Deps } from "~/server/infra/deps";
import { AppError } from "~/server/infra/app-error";
import { isCheckViolation, isUniqueViolation, mapDbError } from "~/server/infra/db";
import type { Tx } from "~/server/infra/db";
import { startOperation, finishOperation, failOperation } from "~/server/operations/operation-log";
import {
  assertSameRequest,
  EXISTING_ENTRY_SELECT,
  existingEntryCte,
  existingEntryOf,
  writeEntry,
  type ExistingEntryColumns,
  type LedgerRow,
} from "./ledger";
import { MAX_BALANCE } from "./accounts";
import { assertCreditType } from "./credit-types";
import { balanceChangeResult, type GrantResult } from "./results";
import type { BalanceChangeRequest, CallerInfo } from "./types";

export type { GrantResult };

/**
 * Credits an account (creating it if needed): balance and ledger row change in
 * one transaction, at most once per business key.
 */
export async function grantCredits(deps: Deps, req: BalanceChangeRequest, caller: CallerInfo): Promise<GrantResult> {
  const { db, clock } = deps;
  await assertCreditType(db, req.creditTypeId, clock);
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
        // The only CHECK a credit can break: the balance limit (accounts_balance_max).
        if (isCheckViolation(e)) {
          throw new AppError("BALANCE_LIMIT_EXCEEDED", `the balance would pass ${MAX_BALANCE} points; nothing was granted`);
        }
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
    const amount = BigInt(req.amount);
    const step = await checkAndCredit(tx, req, amount, now);
    if (step.kind === "repeat") {
      const existing = step.entry;
      assertSameRequest(existing, { type: "CREDIT", ...req });
      const result = balanceChangeResult("CREDIT", {
        transactionId: existing.id,
        operationId: existing.operationId ?? operationId,
        balanceAfter: existing.balanceAfter,
        idempotent: true,
      });
      await finishOperation(tx, operationId, "skipped", { ...result, existingTransactionId: existing.id }, now);
      await caller.recordRequest?.(tx, { operationId, userId: req.userId, response: result });
      return result;
    }
    const transactionId = randomUUID();
    const result = balanceChangeResult("CREDIT", { transactionId, operationId, balanceAfter: step.balanceAfter, idempotent: false });
    const payload = { ...req, accountId: step.accountId, transactionId, operationId, balanceAfter: result.balanceAfter };
    await writeEntry(tx, {
      ...req,
      transactionId,
      accountId: step.accountId,
      type: "CREDIT",
      amount,
      balanceAfter: step.balanceAfter,
      operationId,
      now,
      event: { type: "credit.granted", payload },
      result,
    });
    await caller.recordRequest?.(tx, { operationId, userId: req.userId, response: result });
    return result;
  });
}

type CreditStep = { kind: "repeat"; entry: LedgerRow } | { kind: "credited"; accountId: string; balanceAfter: bigint };

/**
 * Idempotency check and atomic credit in one round trip. The credit is an
 * upsert that adds in place (no read-modify-write, so concurrent grants cannot
 * lose an update) and runs only when the business key is unused.
 */
async function checkAndCredit(tx: Tx, req: BalanceChangeRequest, amount: bigint, now: Date): Promise<CreditStep> {
  const [row] = await tx.$queryRaw<(ExistingEntryColumns & { id: string | null; balance: bigint | null })[]>`
    WITH ${existingEntryCte(req.businessCode, req.businessId)}, credited AS (
      INSERT INTO accounts (user_id, credit_type_id, balance, version, updated_at)
      SELECT ${req.userId}, ${req.creditTypeId}, ${amount}, 1, ${now} WHERE NOT EXISTS (SELECT 1 FROM existing)
      ON CONFLICT (user_id, credit_type_id)
      DO UPDATE SET balance = accounts.balance + EXCLUDED.balance, version = accounts.version + 1, updated_at = EXCLUDED.updated_at
      RETURNING id, balance
    )
    SELECT ${EXISTING_ENTRY_SELECT}, c.id::text AS id, c.balance
    FROM (SELECT 1) AS one LEFT JOIN existing e ON true LEFT JOIN credited c ON true`;
  const existing = existingEntryOf(row, req);
  if (existing) return { kind: "repeat", entry: existing };
  if (!row?.id || row.balance === null) throw new AppError("INTERNAL", "account upsert returned nothing");
  return { kind: "credited", accountId: row.id, balanceAfter: row.balance };
}
