import type { Deps } from "~/server/infra/deps";
import { balanceEngine } from "./balance-engine";
import type { DeductResult } from "./results";
import type { BalanceChangeRequest, CallerInfo } from "./types";

export type { DeductResult };

/**
 * Debits an account, at most once per business key, never below zero, through
 * the balance engine (balance-engine.ts): the idempotency check, balance
 * check, versioned update, ledger row, outbox event, operation status and
 * request record commit together or not at all.
 */
export async function deductCredits(deps: Deps, req: BalanceChangeRequest, caller: CallerInfo): Promise<DeductResult> {
  const outcome = await balanceEngine(deps).submit({
    type: "DEBIT",
    operationType: "credit.deduct",
    eventType: "credit.deducted",
    request: req,
    caller,
  });
  if (!outcome.ok) throw outcome.error;
  // The deduction is committed; a failure from here on loses only the answer,
  // which the client recovers by status, by request id or by repeating the key.
  await deps.failpoints.hit("credit.afterCommit");
  return outcome.result as DeductResult;
}
