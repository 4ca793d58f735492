import { AppError } from "~/server/infra/app-error";
import { idPart } from "~/server/infra/redis-keys";
import type { LedgerType } from "~/generated/prisma/client";
import { MAX_BALANCE } from "./accounts";

/**
 * What one batch of balance changes does, decided in memory from what the
 * batch read in its transaction. Pure: no I/O, so every rule is unit-tested
 * (batch-plan.test.ts) and the statements (batch-statements.ts) only write
 * what the plan says.
 *
 * Items apply in arrival order. For each: a business key used before (in the
 * database, or by an earlier item of this batch that applied) makes it a
 * repeat — the same request answers idempotently, any other is refused; a
 * credit needs its credit type and stays under the balance limit; a debit
 * needs an account whose running balance covers it. An item that does not fit
 * is refused alone; the others go on.
 */

export type PlanItem = {
  type: LedgerType;
  userId: string;
  creditTypeId: string;
  amount: bigint;
  businessCode: string;
  businessId: string;
  operationId: string;
  /** The ledger row id it gets if it applies. */
  transactionId: string;
  /** Its X-Request-Id was recorded by another execution already: it must not run. */
  fenced?: boolean;
  /** A credit that gives back (part of) this debit (its transaction id). */
  refundOf?: string;
  /** A credit that applies this queued refund row (its id). */
  queuedRefund?: string;
  /** A debit that pays for a flash-sale order of this item: one unit sold with it. */
  purchaseOf?: string;
};

/** An item of a flash sale, as the batch read it. */
export type ItemState = { stock: number; sold: number };

/** An order a user has already for an item (one per user and item). */
export type ExistingOrder = { orderId: string; transactionId: string; operationId: string | null; balanceAfter: bigint };

/** A debit that refunds in the batch give back to. */
export type DebitState = { userId: string; creditTypeId: string; type: LedgerType; amount: bigint; refunded: bigint };

export type AccountState = { id: string; balance: bigint; version: number };

export type ExistingEntry = {
  id: string;
  userId: string;
  creditTypeId: string;
  type: LedgerType;
  amount: bigint;
  balanceAfter: bigint;
  operationId: string | null;
};

export type BatchState = {
  /** Ledger rows already written under the batch's business keys, by `businessKey`. */
  entries: ReadonlyMap<string, ExistingEntry>;
  /** The accounts the batch touches, by `accountKey`. */
  accounts: ReadonlyMap<string, AccountState>;
  /** Which of the credit types the batch names exist. */
  creditTypes: ReadonlySet<string>;
  /** The debits the batch's refunds name, by transaction id. */
  debits: ReadonlyMap<string, DebitState>;
  /** The status of each queued refund row the batch applies, by id. */
  refunds: ReadonlyMap<string, string>;
  /** The flash-sale items the batch's purchases buy, by id. */
  items: ReadonlyMap<string, ItemState>;
  /** Orders the batch's buyers hold already, by `pairKey(userId, itemId)`. */
  orders: ReadonlyMap<string, ExistingOrder>;
};

export type Decision =
  /** `refundedTotal`: for a refund, the debit's refunded total after it. */
  | { kind: "applied"; accountId: string; balanceAfter: bigint; refundedTotal?: bigint }
  | {
      kind: "repeat";
      transactionId: string;
      operationId: string | null;
      balanceAfter: bigint;
      refundedTotal?: bigint;
      /** A purchase by a buyer who has this order for the item already. */
      orderId?: string;
    }
  | { kind: "refused"; error: AppError };

/** One versioned update of an account that exists: from `version` to `newVersion` (`userId` lets the update prune to its partition). */
export type AccountUpdate = { id: string; userId: string; version: number; newVersion: number; balance: bigint };
/** An account a credit creates. */
export type AccountCreate = { id: string; userId: string; creditTypeId: string; balance: bigint; version: number };

/** A debit's refunded total, from what the batch read to what it gives back (a versioned update too). */
export type RefundedUpdate = { debitId: string; userId: string; from: bigint; to: bigint };

/** An item's sold count, from what the batch read to what it sells (a versioned update too). */
export type SoldUpdate = { itemId: string; from: number; to: number };

export type BatchPlan = {
  decisions: Decision[];
  updates: AccountUpdate[];
  creates: AccountCreate[];
  refunded: RefundedUpdate[];
  sold: SoldUpdate[];
};

/** A map key for a pair of ids that no other pair shares (the first is length-prefixed). */
export const pairKey = (first: string, second: string): string => `${idPart(first)}:${second}`;
export const accountKey = (userId: string, creditTypeId: string): string => pairKey(userId, creditTypeId);
export const businessKey = (code: string, id: string): string => pairKey(code, id);

/** Retry hint for a request id that another execution recorded first. */
export const REPLAY_FENCE_RETRY_MS = 200;

type Running = { id: string; userId: string; creditTypeId: string; balance: bigint; version: number; changes: number; created: boolean };

export function planBatch(items: readonly PlanItem[], state: BatchState, newAccountId: () => string): BatchPlan {
  const running = new Map<string, Running>();
  /** Refunded totals of debits as the batch goes. */
  const refunded = new Map<string, { from: bigint; to: bigint }>();
  const refundedOf = (debitId: string): bigint | undefined => refunded.get(debitId)?.to ?? state.debits.get(debitId)?.refunded;
  const appliedHere = new Map<string, { item: PlanItem; balanceAfter: bigint }>();
  /** Items' sold counts as the batch goes. */
  const sold = new Map<string, { from: number; to: number }>();
  /** Orders placed by this batch, by `pairKey(userId, itemId)`. */
  const ordered = new Map<string, ExistingOrder>();

  const accountOf = (item: PlanItem): Running | undefined => {
    const key = accountKey(item.userId, item.creditTypeId);
    let acct = running.get(key);
    if (!acct) {
      const stored = state.accounts.get(key);
      if (!stored) return undefined;
      acct = { ...stored, userId: item.userId, creditTypeId: item.creditTypeId, changes: 0, created: false };
      running.set(key, acct);
    }
    return acct;
  };

  const decide = (item: PlanItem): Decision => {
    if (item.fenced) {
      return {
        kind: "refused",
        error: new AppError("DUPLICATE_REQUEST_IN_FLIGHT", "a request with this X-Request-Id was already executed", {
          retryAfterMs: REPLAY_FENCE_RETRY_MS,
          details: { replayFence: true },
        }),
      };
    }
    if (item.type === "CREDIT" && !state.creditTypes.has(item.creditTypeId)) {
      return {
        kind: "refused",
        error: new AppError("CREDIT_TYPE_NOT_FOUND", `no credit type ${item.creditTypeId}: create it first (creditType.create)`),
      };
    }
    const bkey = businessKey(item.businessCode, item.businessId);
    const stored = state.entries.get(bkey);
    const earlier = appliedHere.get(bkey);
    const previous: ExistingEntry | undefined =
      stored ??
      (earlier && {
        id: earlier.item.transactionId,
        userId: earlier.item.userId,
        creditTypeId: earlier.item.creditTypeId,
        type: earlier.item.type,
        amount: earlier.item.amount,
        balanceAfter: earlier.balanceAfter,
        operationId: earlier.item.operationId,
      });
    if (previous) {
      const same =
        previous.type === item.type &&
        previous.userId === item.userId &&
        previous.creditTypeId === item.creditTypeId &&
        previous.amount === item.amount;
      if (!same) {
        return {
          kind: "refused",
          error: new AppError(
            "IDEMPOTENCY_KEY_REUSED",
            `business key ${item.businessCode}/${item.businessId} was already used for a different operation`,
          ),
        };
      }
      const repeat: Decision = { kind: "repeat", transactionId: previous.id, operationId: previous.operationId, balanceAfter: previous.balanceAfter };
      const total = item.refundOf === undefined ? undefined : refundedOf(item.refundOf);
      return total === undefined ? repeat : { ...repeat, refundedTotal: total };
    }

    if (item.queuedRefund !== undefined) {
      // Only a refund still due may credit: not one settled by hand, nor one
      // that failed for good since this attempt was claimed.
      const status = state.refunds.get(item.queuedRefund);
      if (status !== "PENDING" && status !== "RETRYING") {
        return {
          kind: "refused",
          error: status
            ? new AppError("INVALID_STATE", `refund ${item.queuedRefund} is ${status}; nothing was credited`)
            : new AppError("REFUND_NOT_FOUND", `no refund ${item.queuedRefund}`),
        };
      }
    }

    let itemSold: { from: number; to: number } | undefined;
    if (item.purchaseOf !== undefined) {
      // One order per buyer and item: a second purchase answers the first order.
      const order = state.orders.get(pairKey(item.userId, item.purchaseOf)) ?? ordered.get(pairKey(item.userId, item.purchaseOf));
      if (order) {
        return { kind: "repeat", transactionId: order.transactionId, operationId: order.operationId, balanceAfter: order.balanceAfter, orderId: order.orderId };
      }
      const stored = state.items.get(item.purchaseOf);
      if (!stored) return { kind: "refused", error: new AppError("ITEM_NOT_FOUND", `no flash-sale item ${item.purchaseOf}`) };
      const before = sold.get(item.purchaseOf) ?? { from: stored.sold, to: stored.sold };
      if (before.to >= stored.stock) {
        return { kind: "refused", error: new AppError("SOLD_OUT", "this item is sold out; nothing was deducted") };
      }
      itemSold = { from: before.from, to: before.to + 1 };
    }

    let refundedTotal: bigint | undefined;
    if (item.refundOf !== undefined) {
      const debit = state.debits.get(item.refundOf);
      if (!debit || debit.type !== "DEBIT" || debit.userId !== item.userId || debit.creditTypeId !== item.creditTypeId) {
        return { kind: "refused", error: new AppError("TRANSACTION_NOT_FOUND", `no debit ${item.refundOf} of this account to refund`) };
      }
      const before = refundedOf(item.refundOf) ?? 0n;
      if (before + item.amount > debit.amount) {
        return {
          kind: "refused",
          error: new AppError(
            "REFUND_EXCEEDS_DEBIT",
            `refunds of ${item.refundOf} would reach ${before + item.amount}, past the debit's ${debit.amount}; ${debit.amount - before} may still be refunded`,
          ),
        };
      }
      refundedTotal = before + item.amount;
    }

    let acct = accountOf(item);
    if (item.type === "DEBIT") {
      if (!acct) return { kind: "refused", error: new AppError("ACCOUNT_NOT_FOUND", `no account for user ${item.userId} in ${item.creditTypeId}`) };
      if (acct.balance < item.amount) {
        return { kind: "refused", error: new AppError("INSUFFICIENT_BALANCE", `the balance is less than ${item.amount}; nothing was deducted`) };
      }
      acct.balance -= item.amount;
    } else {
      if (!acct) {
        acct = { id: newAccountId(), userId: item.userId, creditTypeId: item.creditTypeId, balance: 0n, version: 0, changes: 0, created: true };
        running.set(accountKey(item.userId, item.creditTypeId), acct);
      }
      if (acct.balance + item.amount > BigInt(MAX_BALANCE)) {
        return {
          kind: "refused",
          error: new AppError("BALANCE_LIMIT_EXCEEDED", `the balance would pass ${MAX_BALANCE} points; nothing was granted`),
        };
      }
      acct.balance += item.amount;
    }
    acct.changes += 1;
    appliedHere.set(bkey, { item, balanceAfter: acct.balance });
    if (item.purchaseOf !== undefined && itemSold) {
      sold.set(item.purchaseOf, itemSold);
      ordered.set(pairKey(item.userId, item.purchaseOf), {
        orderId: item.businessId,
        transactionId: item.transactionId,
        operationId: item.operationId,
        balanceAfter: acct.balance,
      });
    }
    if (item.refundOf !== undefined && refundedTotal !== undefined) {
      refunded.set(item.refundOf, { from: refunded.get(item.refundOf)?.from ?? state.debits.get(item.refundOf)!.refunded, to: refundedTotal });
      return { kind: "applied", accountId: acct.id, balanceAfter: acct.balance, refundedTotal };
    }
    return { kind: "applied", accountId: acct.id, balanceAfter: acct.balance };
  };

  const decisions = items.map(decide);
  const updates: AccountUpdate[] = [];
  const creates: AccountCreate[] = [];
  for (const acct of running.values()) {
    if (acct.changes === 0) continue;
    if (acct.created) creates.push({ id: acct.id, userId: acct.userId, creditTypeId: acct.creditTypeId, balance: acct.balance, version: acct.changes });
    else updates.push({ id: acct.id, userId: acct.userId, version: acct.version, newVersion: acct.version + acct.changes, balance: acct.balance });
  }
  return {
    decisions,
    updates,
    creates,
    refunded: [...refunded].map(([debitId, r]) => ({ debitId, userId: state.debits.get(debitId)!.userId, from: r.from, to: r.to })),
    sold: [...sold].map(([itemId, r]) => ({ itemId, from: r.from, to: r.to })),
  };
}
