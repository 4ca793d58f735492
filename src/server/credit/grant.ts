import type { Deps } from "~/server/infra/deps";
import { balanceEngine } from "./balance-engine";
import type { GrantResult } from "./results";
import type { BalanceChangeRequest, CallerInfo } from "./types";

export type { GrantResult };

/**
 * Credits an account (creating it if needed), at most once per business key,
 * through the balance engine: balance, ledger row, outbox event and operation
 * status change in one transaction. 404 CREDIT_TYPE_NOT_FOUND for a type that
 * does not exist; 422 BALANCE_LIMIT_EXCEEDED past 2^53 − 1.
 */
export async function grantCredits(deps: Deps, req: BalanceChangeRequest, caller: CallerInfo): Promise<GrantResult> {
  const outcome = await balanceEngine(deps).submit({
    type: "CREDIT",
    operationType: "credit.grant",
    eventType: "credit.granted",
    request: req,
    caller,
  });
  if (!outcome.ok) throw outcome.error;
  return outcome.result;
}
