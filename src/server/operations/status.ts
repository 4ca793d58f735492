import type { Deps } from "~/server/infra/deps";
import type { Db } from "~/server/infra/db";
import { AppError } from "~/server/infra/app-error";
import type { OperationStatus as DbStatus } from "~/generated/prisma/client";
import { findRequestRecord } from "~/server/resilience/request-record";

export type OperationQuery =
  | { operationId: string }
  | { requestId: string }
  | { businessCode: string; businessId: string };

/** docs/api.md, `operation.status`. */
export type OperationStatusView = {
  operationId: string;
  type: string;
  status: "in_progress" | "completed" | "failed" | "skipped";
  startedAt: string;
  elapsedMs: number;
  result?: unknown;
  error?: { appCode: string; message: string };
};

const operationSelect = {
  id: true,
  type: true,
  status: true,
  startedAt: true,
  finishedAt: true,
  result: true,
  errorCode: true,
  errorMessage: true,
} as const;

type OperationRow = {
  id: string;
  type: string;
  status: DbStatus;
  startedAt: Date;
  finishedAt: Date | null;
  result: unknown;
  errorCode: string | null;
  errorMessage: string | null;
};

export function toStatusView(op: OperationRow, nowMs: number): OperationStatusView {
  const view: OperationStatusView = {
    operationId: op.id,
    type: op.type,
    status: op.status === "started" ? "in_progress" : op.status,
    startedAt: op.startedAt.toISOString(),
    elapsedMs: Math.max(0, (op.finishedAt?.getTime() ?? nowMs) - op.startedAt.getTime()),
  };
  if ((op.status === "completed" || op.status === "skipped") && op.result !== null) view.result = op.result;
  if (op.status === "failed") view.error = { appCode: op.errorCode ?? "INTERNAL", message: op.errorMessage ?? "failed" };
  return view;
}

/**
 * Among several operations of one request id or business key (a retry after a
 * timeout makes a second one), the one that says what happened: the one that
 * took effect, else one still running, else the latest failure.
 */
function mostTelling(ops: OperationRow[]): OperationRow | undefined {
  const rank = (s: DbStatus) => ({ completed: 0, skipped: 1, started: 2, failed: 3 })[s];
  return [...ops].sort((a, b) => rank(a.status) - rank(b.status) || b.startedAt.getTime() - a.startedAt.getTime())[0];
}

/**
 * By id, and by its user when known (one partition); by id alone it is a
 * fan-out, one primary-key probe per partition (the key is (id, user_id)).
 */
async function byId(db: Db, id: string, userId?: string | null): Promise<OperationRow | null> {
  return db.operation.findFirst({ where: { id, ...(userId ? { userId } : {}) }, select: operationSelect });
}

/**
 * Status of an operation by its id, by the caller's X-Request-Id (only the
 * caller's own), or by business key.
 */
export async function getOperationStatus(
  deps: Pick<Deps, "db" | "clock">,
  query: OperationQuery,
  principal: string,
): Promise<OperationStatusView> {
  const { db, clock } = deps;
  const nowMs = clock.nowMs();
  let op: OperationRow | null | undefined;

  if ("operationId" in query) {
    op = await byId(db, query.operationId);
  } else if ("requestId" in query) {
    const record = await findRequestRecord(db, principal, query.requestId, clock.now());
    if (record?.operationId) op = await byId(db, record.operationId, record.userId);
    if (!op) {
      const ops = await db.operation.findMany({
        where: { principal, requestId: query.requestId },
        select: operationSelect,
        orderBy: { startedAt: "desc" },
        take: 20,
      });
      op = mostTelling(ops);
    }
  } else {
    // The operation that took effect (its transaction wrote the ledger row and
    // marked it completed together), else the most telling attempt. A key
    // that applied has its claim (business_keys), which names the user: the
    // operation that took effect is then read from that user's partition
    // alone; only a key that never applied (or whose effect was cancelled)
    // is looked for in every partition.
    const claim = await db.businessKey.findUnique({
      where: { businessCode_businessId: { businessCode: query.businessCode, businessId: query.businessId } },
      select: { userId: true },
    });
    op =
      (await db.operation.findFirst({
        where: {
          businessCode: query.businessCode,
          businessId: query.businessId,
          status: "completed",
          ...(claim ? { userId: claim.userId } : {}),
        },
        select: operationSelect,
      })) ??
      mostTelling(
        await db.operation.findMany({
          where: { businessCode: query.businessCode, businessId: query.businessId },
          select: operationSelect,
          orderBy: { startedAt: "desc" },
          take: 20,
        }),
      );
  }
  if (!op) throw new AppError("OPERATION_NOT_FOUND", "no operation matches");
  return toStatusView(op, nowMs);
}
