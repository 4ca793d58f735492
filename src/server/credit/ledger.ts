import type { Db, Tx } from "~/server/infra/db";
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
};

export async function findByBusinessKey(db: Db | Tx, businessCode: string, businessId: string): Promise<LedgerRow | null> {
  return db.ledgerEntry.findUnique({ where: { businessCode_businessId: { businessCode, businessId } } });
}

/**
 * A business key that was used before: the same request again is idempotent,
 * anything else under the same key is refused.
 */
export function assertSameRequest(
  existing: LedgerRow,
  request: { type: LedgerType; userId: string; creditTypeId: string; amount: number },
): void {
  const same =
    existing.type === request.type &&
    existing.userId === request.userId &&
    existing.creditTypeId === request.creditTypeId &&
    existing.amount === BigInt(request.amount);
  if (!same) {
    throw new AppError(
      "IDEMPOTENCY_KEY_REUSED",
      `business key ${existing.businessCode}/${existing.businessId} was already used for a different operation`,
    );
  }
}

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

export function toLedgerItem(r: LedgerRow): LedgerItem {
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

/** Newest first, keyset-paginated on (created_at, id). */
export async function listLedger(
  db: Db,
  input: { userId: string; creditTypeId: string; limit: number; cursor?: string | undefined },
): Promise<{ items: LedgerItem[]; nextCursor: string | null }> {
  const account = await db.account.findUnique({
    where: { userId_creditTypeId: { userId: input.userId, creditTypeId: input.creditTypeId } },
    select: { id: true },
  });
  if (!account) throw new AppError("ACCOUNT_NOT_FOUND", `no account for user ${input.userId} in ${input.creditTypeId}`);
  const after = input.cursor ? decodeCursor(input.cursor) : null;
  const rows = await db.ledgerEntry.findMany({
    where: {
      accountId: account.id,
      ...(after
        ? { OR: [{ createdAt: { lt: after.createdAt } }, { createdAt: after.createdAt, id: { lt: after.id } }] }
        : {}),
    },
    orderBy: [{ createdAt: "desc" }, { id: "desc" }],
    take: input.limit + 1,
  });
  const page = rows.slice(0, input.limit);
  const last = page[page.length - 1];
  return {
    items: page.map(toLedgerItem),
    nextCursor: rows.length > input.limit && last ? encodeCursor(last) : null,
  };
}

function encodeCursor(r: { createdAt: Date; id: string }): string {
  return Buffer.from(`${r.createdAt.toISOString()}|${r.id}`).toString("base64url");
}

function decodeCursor(cursor: string): { createdAt: Date; id: string } {
  const [iso, id] = Buffer.from(cursor, "base64url").toString("utf8").split("|");
  const createdAt = new Date(iso ?? "");
  if (!id || Number.isNaN(createdAt.getTime()) || !/^[0-9a-f-]{36}$/.test(id)) {
    throw new AppError("VALIDATION", "cursor is not one this service returned");
  }
  return { createdAt, id };
}
