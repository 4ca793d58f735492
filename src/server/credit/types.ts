import type { LedgerType } from "~/generated/prisma/client";
import type { OperationType } from "~/server/operations/operation-log";
import type { OutboxEventType } from "~/server/outbox/outbox";
import type { RequestRecordTicket } from "~/server/resilience/request-record";

/** A grant or a deduction as a service asks for it (the API validates it; docs/api.md). */
export type BalanceChangeRequest = {
  userId: string;
  creditTypeId: string;
  /** A positive whole number of points. */
  amount: number;
  businessCode: string;
  businessId: string;
};

/** Who asked, and how to record the answer for X-Request-Id replay. */
export type CallerInfo = {
  /** The caller's key (identity/principal.ts), or null for internal callers such as the seed. */
  principal: string | null;
  requestId: string | null;
  /** X-Request-Id replay: the record to write inside the effect's transaction. */
  record?: RequestRecordTicket | null;
};

/** One balance change as the balance engine takes it. */
export type BalanceChange = {
  type: LedgerType;
  operationType: OperationType;
  eventType: OutboxEventType;
  request: BalanceChangeRequest;
  caller: CallerInfo;
  /** A credit that gives points back (refunds): which refund it is. */
  refund?: RefundLink;
  /**
   * A debit that pays for a flash-sale order: the order row and the item's
   * `sold + 1` are written with it (`CHECK (sold <= stock)` and one order per
   * buyer and item underneath). Its business key is (`flashSale.purchase`, orderId).
   */
  purchase?: { orderId: string; activityId: string; itemId: string };
};

/** How a credit that gives points back is tied to its refund. */
export type RefundLink =
  /**
   * `credit.refund`: a new refund of (part of) this debit, applied now; the
   * debit's refunded total grows with it and its refund row is written
   * SUCCEEDED beside the credit.
   */
  | { kind: "immediate"; originalTransactionId: string; reason: string }
  /**
   * A queued refund row (refund/refund-queue.ts): its amount was counted
   * against the debit when it was queued; the credit marks the row SUCCEEDED
   * in the same statement, and applies only while the row is PENDING or
   * RETRYING.
   */
  | { kind: "queued"; refundId: string };
