import type { Query, Statement } from "~/server/infra/sql";
import type { AppErrorCode } from "~/server/infra/app-error";

/** Operation types recorded in the operation log. */
export type OperationType = "credit.grant" | "credit.deduct" | "credit.refund" | "flashSale.purchase" | "refund.apply";

export type OperationStart = {
  id: string;
  type: OperationType;
  /** Its partition key: every operation the service records is for a user (docs/architecture.md, "Partitioning"). */
  userId: string;
  creditTypeId: string | null;
  principal: string | null;
  requestId: string | null;
  businessCode: string | null;
  businessId: string | null;
  input: Record<string, unknown>;
  /** When the request for it arrived. */
  startedAt: Date;
};

/** The columns of OperationStart as unnest arrays ($1…$10 of the statements below). */
function startArrays(ops: readonly OperationStart[]): unknown[] {
  return [
    ops.map((o) => o.id),
    ops.map((o) => o.type),
    ops.map((o) => o.userId),
    ops.map((o) => o.creditTypeId),
    ops.map((o) => o.principal),
    ops.map((o) => o.requestId),
    ops.map((o) => o.businessCode),
    ops.map((o) => o.businessId),
    ops.map((o) => JSON.stringify(o.input)),
    ops.map((o) => o.startedAt),
  ];
}

/** `o` rows from the unnest of startArrays; every writer inserts them in id order, so two never deadlock. */
const OPERATION_ROWS = `unnest($1::uuid[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[], $8::text[], $9::jsonb[], $10::timestamptz[])
  AS o(id, type, user_id, credit_type_id, principal, request_id, code, bid, input, started_at)`;

const START_SQL: Statement = {
  name: "fp_operations_start",
  text: `INSERT INTO operations (id, type, status, user_id, credit_type_id, principal, request_id, business_code, business_id, input, started_at)
     SELECT o.id, o.type, 'started', o.user_id, o.credit_type_id, o.principal, o.request_id, o.code, o.bid, o.input, o.started_at
     FROM ${OPERATION_ROWS} ORDER BY o.id
     ON CONFLICT (id, user_id) DO NOTHING`,
};

/**
 * Records operations as `started` (one statement for many, committed before
 * their work): what a client that timed out sees as `in_progress`, and what
 * the worker resolves if the process dies mid-way. The balance engine writes
 * the rows of a whole batch at once, one commit per batch; the batch's
 * transaction records each one finished. A row that exists is left alone.
 */
export async function startOperations(q: Query, ops: readonly OperationStart[]): Promise<void> {
  if (ops.length === 0) return;
  await q(START_SQL, startArrays(ops));
}

/** Records operations as failed (their work rolled back or never ran); finished ones are left alone. */
export async function failOperations(
  q: Query,
  ops: readonly OperationStart[],
  error: { code: AppErrorCode; message: string },
  now: Date,
): Promise<void> {
  if (ops.length === 0) return;
  await q(
    `INSERT INTO operations (id, type, status, user_id, credit_type_id, principal, request_id, business_code, business_id, input, started_at,
                             error_code, error_message, finished_at)
     SELECT o.id, o.type, 'failed', o.user_id, o.credit_type_id, o.principal, o.request_id, o.code, o.bid, o.input, o.started_at, $11, $12, $13
     FROM ${OPERATION_ROWS} ORDER BY o.id
     ON CONFLICT (id, user_id) DO UPDATE SET status = 'failed', error_code = EXCLUDED.error_code, error_message = EXCLUDED.error_message,
                                    finished_at = EXCLUDED.finished_at
       WHERE operations.status = 'started'`,
    [...startArrays(ops), error.code, error.message.slice(0, 1000), now],
  );
}

