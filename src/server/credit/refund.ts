import type { Deps } from "~/server/infra/deps";
import { AppError } from "~/server/infra/app-error";
import { balanceEngine } from "./balance-engine";
import type { RefundResult } from "./results";
import type { CallerInfo } from "./types";

export type { RefundResult };

/** `credit.refund` as a service asks for it (docs/api.md). */
export type RefundRequest = {
  /** The debit to give back, by its transaction id. */
  transactionId: string;
  /** How much; the rest of the debit when left out. */
  amount?: number | undefined;
  businessCode: string;
  businessId: string;
};

/**
 * Gives back all or part of an earlier debit to the account it came from,
 * at once, through the balance engine: the credit, its ledger row, the
 * debit's refunded total (CHECK refunded ≤ amount on the debit's own row, so
 * concurrent refunds can never exceed it) and a SUCCEEDED refund row commit
 * together. Idempotent by business key.
 */
export async function refundDebit(deps: Deps, req: RefundRequest, caller: CallerInfo): Promise<RefundResult> {
  // The caller knows only the transaction id: its claim (business_keys, one
  // global index lookup) names the user, so the debit is read from that
  // user's partition instead of from every one.
  const claim = await deps.db.businessKey.findUnique({ where: { transactionId: req.transactionId }, select: { userId: true } });
  const debit =
    claim &&
    (await deps.db.ledgerEntry.findUnique({
      where: { id_userId: { id: req.transactionId, userId: claim.userId } },
      select: { userId: true, creditTypeId: true, type: true, amount: true, refundedAmount: true },
    }));
  if (!debit || debit.type !== "DEBIT") throw new AppError("TRANSACTION_NOT_FOUND", `no debit with transaction id ${req.transactionId}`);
  const amount = req.amount ?? (await defaultAmount(deps, req, debit));
  if (amount <= 0) {
    throw new AppError("REFUND_EXCEEDS_DEBIT", `debit ${req.transactionId} has been refunded in full already`);
  }
  const outcome = await balanceEngine(deps).submit({
    type: "CREDIT",
    operationType: "credit.refund",
    eventType: "credit.refunded",
    request: { userId: debit.userId, creditTypeId: debit.creditTypeId, amount, businessCode: req.businessCode, businessId: req.businessId },
    caller,
    refund: { kind: "immediate", originalTransactionId: req.transactionId, reason: `credit.refund ${req.businessCode}/${req.businessId}` },
  });
  if (!outcome.ok) throw outcome.error;
  return outcome.result as RefundResult;
}

/**
 * Without an amount: what is left of the debit — unless this business key
 * gave something back already, in which case it is that same refund again
 * (answered idempotently), not a new one for the rest.
 */
async function defaultAmount(deps: Deps, req: RefundRequest, debit: { amount: bigint; refundedAmount: bigint }): Promise<number> {
  const earlier = await deps.db.businessKey.findUnique({
    where: { businessCode_businessId: { businessCode: req.businessCode, businessId: req.businessId } },
    select: { amount: true },
  });
  return Number(earlier?.amount ?? debit.amount - debit.refundedAmount);
}
