import type { Db } from "~/server/infra/db";
import { AppError } from "~/server/infra/app-error";

/**
 * The largest balance an account may hold: 2^53 − 1, the largest integer a
 * JSON number carries exactly (CHECK accounts_balance_max in the schema).
 * Amounts and balances are plain JSON numbers on the wire, never rounded.
 */
export const MAX_BALANCE = Number.MAX_SAFE_INTEGER;

export type AccountView = {
  userId: string;
  creditTypeId: string;
  balance: number;
  version: number;
  updatedAt: string;
};

export async function getAccount(db: Db, userId: string, creditTypeId: string): Promise<AccountView> {
  const row = await db.account.findUnique({
    where: { userId_creditTypeId: { userId, creditTypeId } },
    select: { userId: true, creditTypeId: true, balance: true, version: true, updatedAt: true },
  });
  if (!row) throw new AppError("ACCOUNT_NOT_FOUND", `no account for user ${userId} in ${creditTypeId}`);
  return { ...row, balance: Number(row.balance), updatedAt: row.updatedAt.toISOString() };
}
