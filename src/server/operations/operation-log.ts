import { toJson, type Db, type Tx } from "~/server/infra/db";
import type { AppErrorCode } from "~/server/infra/app-error";

/** Operation types recorded in the operation log. */
export type OperationType = "credit.grant" | "credit.deduct" | "flashSale.purchase" | "refund.apply";

export type OperationStart = {
  id: string;
  type: OperationType;
  userId: string;
  creditTypeId: string | null;
  principal: string | null;
  requestId: string | null;
  businessCode: string | null;
  businessId: string | null;
  input: Record<string, unknown>;
};

/**
 * Records that an operation started, committed on its own before the work, so
 * that a client that timed out can see it `in_progress` and the worker can
 * resolve it if the process dies mid-way.
 */
export async function startOperation(db: Db | Tx, op: OperationStart): Promise<void> {
  await db.operation.create({
    data: {
      id: op.id,
      type: op.type,
      status: "started",
      userId: op.userId,
      creditTypeId: op.creditTypeId,
      principal: op.principal,
      requestId: op.requestId,
      businessCode: op.businessCode,
      businessId: op.businessId,
      input: toJson(op.input),
    },
  });
}

/** Marks the operation done, inside the transaction that made its effect. */
export async function finishOperation(
  tx: Tx,
  id: string,
  status: "completed" | "skipped",
  result: Record<string, unknown>,
  now: Date,
): Promise<void> {
  await tx.operation.update({ where: { id }, data: { status, result: toJson(result), finishedAt: now } });
}

/** Marks the operation failed, in its own small transaction, after the work rolled back. */
export async function failOperation(
  db: Db,
  id: string,
  error: { code: AppErrorCode; message: string },
  now: Date,
): Promise<void> {
  await db.operation.updateMany({
    where: { id, status: "started" },
    data: { status: "failed", errorCode: error.code, errorMessage: error.message.slice(0, 1000), finishedAt: now },
  });
}
