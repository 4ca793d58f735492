import { Prisma, type Db, type Tx } from "~/server/infra/db";
import type { OutboxEventType } from "~/server/outbox/outbox";
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

/** Columns a hot-path statement returns for the ledger row of its business key, if any. */
export type ExistingEntryColumns = {
  e_id: string | null;
  e_account_id: string | null;
  e_user_id: string | null;
  e_credit_type_id: string | null;
  e_type: LedgerType | null;
  e_amount: bigint | null;
  e_balance_after: bigint | null;
  e_operation_id: string | null;
  e_created_at: Date | null;
};

/** `existing AS (…)`: the ledger row of a business key, for a WITH clause. */
export function existingEntryCte(businessCode: string, businessId: string): Prisma.Sql {
  return Prisma.sql`existing AS (
      SELECT id, account_id, user_id, credit_type_id, type::text AS type, amount, balance_after, operation_id, created_at
      FROM ledger_entries WHERE business_code = ${businessCode} AND business_id = ${businessId}
    )`;
}

/** The select list matching ExistingEntryColumns, from `existing` joined as `e`. */
export const EXISTING_ENTRY_SELECT = Prisma.sql`e.id::text AS e_id, e.account_id::text AS e_account_id, e.user_id AS e_user_id,
  e.credit_type_id AS e_credit_type_id, e.type AS e_type, e.amount AS e_amount, e.balance_after AS e_balance_after,
  e.operation_id::text AS e_operation_id, e.created_at AS e_created_at`;

export function existingEntryOf(
  row: ExistingEntryColumns | undefined,
  key: { businessCode: string; businessId: string },
): LedgerRow | null {
  if (!row?.e_id) return null;
  return {
    id: row.e_id,
    accountId: row.e_account_id!,
    userId: row.e_user_id!,
    creditTypeId: row.e_credit_type_id!,
    type: row.e_type!,
    amount: row.e_amount!,
    balanceAfter: row.e_balance_after!,
    businessCode: key.businessCode,
    businessId: key.businessId,
    operationId: row.e_operation_id,
    createdAt: row.e_created_at!,
  };
}

/**
 * Ledger row, outbox event and operation status in one round trip (the hot
 * path: each round trip is time the account stays locked).
 */
export async function writeEntry(
  tx: Tx,
  entry: {
    transactionId: string;
    accountId: string;
    userId: string;
    creditTypeId: string;
    type: LedgerType;
    amount: bigint;
    balanceAfter: bigint;
    businessCode: string;
    businessId: string;
    operationId: string;
    now: Date;
    event: { type: OutboxEventType; payload: Record<string, unknown> };
    result: Record<string, unknown>;
  },
): Promise<void> {
  await tx.$executeRaw`
    WITH ledger AS (
      INSERT INTO ledger_entries (id, account_id, user_id, credit_type_id, type, amount, balance_after, business_code, business_id, operation_id, created_at)
      VALUES (${entry.transactionId}::uuid, ${entry.accountId}::uuid, ${entry.userId}, ${entry.creditTypeId}, ${entry.type}::"LedgerType",
              ${entry.amount}, ${entry.balanceAfter}, ${entry.businessCode}, ${entry.businessId}, ${entry.operationId}::uuid, ${entry.now})
    ), event AS (
      INSERT INTO outbox_events (type, user_id, payload) VALUES (${entry.event.type}, ${entry.userId}, ${JSON.stringify(entry.event.payload)}::jsonb)
    )
    UPDATE operations SET status = 'completed', result = ${JSON.stringify(entry.result)}::jsonb, finished_at = ${entry.now}
    WHERE id = ${entry.operationId}::uuid`;
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
