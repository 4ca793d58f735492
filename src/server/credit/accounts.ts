import type { Db } from "~/server/infra/db";
import { AppError } from "~/server/infra/app-error";
import type { Clock } from "~/server/infra/clock";

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

/**
 * Credit types are created rarely and never deleted, so a positive answer is
 * kept in the process for a minute: the grant path then asks Postgres nothing
 * extra. An unknown type is asked about every time.
 */
const KNOWN_TYPE_MS = 60_000;
const knownCreditTypes = new Map<string, number>();

export async function assertCreditType(db: Db, creditTypeId: string, clock: Clock): Promise<void> {
  const now = clock.nowMs();
  if ((knownCreditTypes.get(creditTypeId) ?? 0) > now) return;
  const found = await db.creditType.findUnique({ where: { id: creditTypeId }, select: { id: true } });
  if (!found) throw new AppError("CREDIT_TYPE_NOT_FOUND", `credit type ${creditTypeId} does not exist`);
  if (knownCreditTypes.size > 1_000) knownCreditTypes.clear();
  knownCreditTypes.set(creditTypeId, now + KNOWN_TYPE_MS);
}
