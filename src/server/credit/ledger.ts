import type { Db } from "~/server/infra/db";
import { AppError } from "~/server/infra/app-error";
import type { LedgerType } from "~/generated/prisma/client";

export type LedgerRow = {
  id: string;
  accountId: string;
  userId: string;
  creditTypeId: string;
  type: LedgerType;
  amount: bigint;
  balanceAfter: bigint;
  businessCode: string;
  businessId: string;
  operationId: string | null;
  createdAt: Date;
  seq: bigint;
};

export type LedgerItem = {
  transactionId: string;
  type: LedgerType;
  amount: number;
  balanceAfter: number;
  businessCode: string;
  businessId: string;
  operationId: string | null;
  createdAt: string;
};

function toLedgerItem(r: LedgerRow): LedgerItem {
  return {
    transactionId: r.id,
    type: r.type,
    amount: Number(r.amount),
    balanceAfter: Number(r.balanceAfter),
    businessCode: r.businessCode,
    businessId: r.businessId,
    operationId: r.operationId,
    createdAt: r.createdAt.toISOString(),
  };
}

/** Newest first (the order the changes applied), keyset-paginated on the ledger's sequence. */
export async function listLedger(
  db: Db,
  input: { userId: string; creditTypeId: string; limit: number; cursor?: string | undefined },
): Promise<{ items: LedgerItem[]; nextCursor: string | null }> {
  const account = await db.account.findUnique({
    where: { userId_creditTypeId: { userId: input.userId, creditTypeId: input.creditTypeId } },
    select: { id: true },
  });
  if (!account) throw new AppError("ACCOUNT_NOT_FOUND", `no account for user ${input.userId} in ${input.creditTypeId}`);
  const before = input.cursor ? decodeCursor(input.cursor) : null;
  const rows = await db.ledgerEntry.findMany({
    // user_id as well as the account: the read prunes to the user's partition.
    where: { userId: input.userId, accountId: account.id, ...(before !== null ? { seq: { lt: before } } : {}) },
    orderBy: { seq: "desc" },
    take: input.limit + 1,
  });
  const page = rows.slice(0, input.limit);
  const last = page[page.length - 1];
  return {
    items: page.map(toLedgerItem),
    nextCursor: rows.length > input.limit && last ? encodeCursor(last.seq) : null,
  };
}

function encodeCursor(seq: bigint): string {
  return Buffer.from(`s${seq}`).toString("base64url");
}

function decodeCursor(cursor: string): bigint {
  const text = Buffer.from(cursor, "base64url").toString("utf8");
  if (!/^s[0-9]{1,19}$/.test(text)) throw new AppError("VALIDATION", "cursor is not one this service returned");
  return BigInt(text.slice(1));
}
