import type { Deps } from "~/server/infra/deps";
import type { Db, Prisma } from "~/server/infra/db";
import { AppError } from "~/server/infra/app-error";
import type { RefundStatus } from "~/generated/prisma/client";
import { writeAudit, type AuditEntry } from "~/server/audit/audit-log";
import { prismaQuery } from "~/server/infra/sql";
import { attemptRefund, leaseUntil } from "./refund-attempt";
import { claimRefund, type ClaimedRefund } from "./refund-queue";

/** docs/api.md, `refund.list`. */
export type RefundView = {
  id: string;
  userId: string;
  creditTypeId: string;
  amount: number;
  reason: string;
  originalTransactionId: string;
  status: RefundStatus;
  attempts: number;
  lastError: string | null;
  nextAttemptAt: string;
  createdAt: string;
  updatedAt: string;
};

const refundSelect = {
  id: true,
  userId: true,
  creditTypeId: true,
  amount: true,
  reason: true,
  originalTransactionId: true,
  status: true,
  attempts: true,
  lastError: true,
  nextAttemptAt: true,
  createdAt: true,
  updatedAt: true,
} as const;

type RefundRow = Prisma.RefundGetPayload<{ select: typeof refundSelect }>;

function toView(r: RefundRow): RefundView {
  return {
    ...r,
    amount: Number(r.amount),
    nextAttemptAt: r.nextAttemptAt.toISOString(),
    createdAt: r.createdAt.toISOString(),
    updatedAt: r.updatedAt.toISOString(),
  };
}

/** Newest first, optionally of one status; keyset pages on (created_at, id). */
export async function listRefunds(
  db: Db,
  input: { status?: RefundStatus | undefined; limit: number; cursor?: string | undefined },
): Promise<{ items: RefundView[]; nextCursor: string | null }> {
  const after = input.cursor ? decodeCursor(input.cursor) : null;
  const rows = await db.refund.findMany({
    where: {
      ...(input.status ? { status: input.status } : {}),
      ...(after ? { OR: [{ createdAt: { lt: after.createdAt } }, { createdAt: after.createdAt, id: { lt: after.id } }] } : {}),
    },
    orderBy: [{ createdAt: "desc" }, { id: "desc" }],
    take: input.limit + 1,
    select: refundSelect,
  });
  const page = rows.slice(0, input.limit);
  const last = page[page.length - 1];
  return { items: page.map(toView), nextCursor: rows.length > input.limit && last ? encodeCursor(last) : null };
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

/**
 * An operator settles a FAILED refund by hand (the points went back some
 * other way): RESOLVED, nothing credited, audited in the same transaction.
 * Only a FAILED refund can be resolved (else 409 INVALID_STATE); two operators
 * at once resolve it once.
 */
export async function resolveRefund(
  deps: Pick<Deps, "db" | "clock">,
  input: { refundId: string; reason: string },
  caller: { actor: AuditEntry["actor"]; requestId?: string | null },
): Promise<RefundView> {
  return deps.db.$transaction(async (tx) => {
    // By id alone (an operator's click): one primary-key probe per partition.
    const [row] = await tx.$queryRaw<{ status: RefundStatus; userId: string }[]>`
      SELECT status, user_id AS "userId" FROM refunds WHERE id = ${input.refundId}::uuid FOR UPDATE`;
    if (!row) throw new AppError("REFUND_NOT_FOUND", `no refund ${input.refundId}`);
    if (row.status !== "FAILED") {
      throw new AppError("INVALID_STATE", `refund ${input.refundId} is ${row.status}; only a FAILED refund can be resolved`);
    }
    const updated = await tx.refund.update({
      where: { id_userId: { id: input.refundId, userId: row.userId } },
      data: { status: "RESOLVED", updatedAt: deps.clock.now() },
      select: refundSelect,
    });
    await writeAudit(tx, {
      actor: caller.actor,
      action: "refund.resolve",
      target: `refund:${input.refundId}`,
      reason: input.reason,
      before: { status: "FAILED" },
      after: { status: "RESOLVED" },
      requestId: caller.requestId ?? null,
    });
    return toView(updated);
  });
}

/**
 * An operator's retry: one attempt now, whatever the refund's schedule — a
 * FAILED refund included (RETRYING while it runs; FAILED again, without a
 * second alert, if it fails). Taking the refund and its audit row commit
 * together; then the attempt. Clicks that overlap each make an attempt, but
 * the ledger's business key (`refund`, <id>) lets only one credit: the rest
 * answer the SUCCEEDED refund. A SUCCEEDED refund is answered as it is;
 * a RESOLVED one is 409 INVALID_STATE.
 */
export async function retryRefund(
  deps: Deps,
  input: { refundId: string; reason: string },
  caller: { actor: AuditEntry["actor"]; requestId?: string | null },
): Promise<RefundView> {
  const taken = await deps.db.$transaction(async (tx): Promise<ClaimedRefund | null> => {
    const [row] = await tx.$queryRaw<{ status: RefundStatus; attempts: number }[]>`
      SELECT status, attempts FROM refunds WHERE id = ${input.refundId}::uuid FOR UPDATE`;
    if (!row) throw new AppError("REFUND_NOT_FOUND", `no refund ${input.refundId}`);
    if (row.status === "RESOLVED") {
      throw new AppError("INVALID_STATE", `refund ${input.refundId} was resolved by hand; it cannot be retried`);
    }
    if (row.status === "SUCCEEDED") return null;
    const claimed = await claimRefund(prismaQuery(tx), input.refundId, { now: deps.clock.now(), leaseUntil: leaseUntil(deps) });
    if (!claimed) throw new Error(`refund ${input.refundId} could not be taken although it is ${row.status}`);
    await writeAudit(tx, {
      actor: caller.actor,
      action: "refund.retry",
      target: `refund:${input.refundId}`,
      reason: input.reason,
      before: { status: row.status, attempts: row.attempts },
      after: { status: row.status === "FAILED" ? "RETRYING" : row.status, attempts: claimed.attempts },
      requestId: caller.requestId ?? null,
    });
    return claimed;
  });
  if (taken) await attemptRefund(deps, taken);
  const after = await deps.db.refund.findFirstOrThrow({ where: { id: input.refundId }, select: refundSelect });
  return toView(after);
}
