import type { Query } from "~/server/infra/sql";
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
 * Records that operations started, in one statement committed on its own
 * before their work: a client that timed out sees them `in_progress`, and the
 * worker resolves them if the process dies mid-way. The balance engine writes
 * the rows of a whole batch at once (one commit per batch, not per request);
 * the batch's transaction then marks each one finished. Writing a row again
 * (a batch retried) changes nothing.
 */
export async function startOperations(q: Query, ops: readonly OperationStart[], now: Date): Promise<void> {
  if (ops.length === 0) return;
  await q(
    `INSERT INTO operations (id, type, status, user_id, credit_type_id, principal, request_id, business_code, business_id, input, started_at)
     SELECT o.id, o.type, 'started', o.user_id, o.credit_type_id, o.principal, o.request_id, o.code, o.bid, o.input, $1
     FROM unnest($2::uuid[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[], $8::text[], $9::text[], $10::jsonb[])
          AS o(id, type, user_id, credit_type_id, principal, request_id, code, bid, input)
     ON CONFLICT (id) DO NOTHING`,
    [
      now,
      ops.map((o) => o.id),
      ops.map((o) => o.type),
      ops.map((o) => o.userId),
      ops.map((o) => o.creditTypeId),
      ops.map((o) => o.principal),
      ops.map((o) => o.requestId),
      ops.map((o) => o.businessCode),
      ops.map((o) => o.businessId),
      ops.map((o) => JSON.stringify(o.input)),
    ],
  );
}

/** Marks operations failed after their work rolled back (those still `started`). */
export async function failOperations(
  q: Query,
  ids: readonly string[],
  error: { code: AppErrorCode; message: string },
  now: Date,
): Promise<void> {
  if (ids.length === 0) return;
  await q(
    `UPDATE operations SET status = 'failed', error_code = $2, error_message = $3, finished_at = $4
     WHERE id = ANY($1::uuid[]) AND status = 'started'`,
    [ids, error.code, error.message.slice(0, 1000), now],
  );
}
