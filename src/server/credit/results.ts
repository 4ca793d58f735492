import type { LedgerType } from "~/generated/prisma/client";

/** What `credit.grant` answers. */
export type GrantResult = {
  transactionId: string;
  operationId: string;
  balanceAfter: number;
  idempotent: boolean;
};

/** What `credit.refund` answers: a grant's fields and the debit's refunded total after it. */
export type RefundResult = GrantResult & { refundedTotal: number };

/** What `credit.deduct` answers: a grant's fields and `success: true`. */
export type DeductResult = { success: true } & GrantResult;

/** A purchase's debit as the engine answers it: a deduction's fields, its order and what was paid. */
export type PurchaseOutcome = DeductResult & { orderId: string; pointsPaid: number };

export type BalanceChangeResult<T extends LedgerType> = T extends "DEBIT" ? DeductResult : GrantResult;

/** The one place a balance change's answer is shaped, for a new change, a repeat and a recovered one alike. */
export function balanceChangeResult<T extends LedgerType>(
  type: T,
  fields: { transactionId: string; operationId: string; balanceAfter: bigint | number; idempotent: boolean },
): BalanceChangeResult<T> {
  const base: GrantResult = {
    transactionId: fields.transactionId,
    operationId: fields.operationId,
    balanceAfter: Number(fields.balanceAfter),
    idempotent: fields.idempotent,
  };
  return (type === "DEBIT" ? { success: true, ...base } : base) as BalanceChangeResult<T>;
}
