import type { Db, Tx } from "~/server/infra/db";
import { AppError, APP_ERROR_CODES, type AppErrorCode } from "~/server/infra/app-error";

/**
 * The Postgres record of an X-Request-Id: a mutation's outcome, written inside
 * the transaction of its effect, so "effect applied" and "result recorded"
 * cannot disagree. The primary key (principal, request_id) fences two
 * concurrent executions even when Redis is gone.
 */

/**
 * What a domain function needs to record an X-Request-Id's result inside the
 * transaction of its effect. The writer sets `recorded` once that transaction
 * committed with the record in it.
 */
export type RequestRecordTicket = {
  principal: string;
  requestId: string;
  procedure: string;
  inputHash: string;
  ttlSeconds: number;
  recorded: StoredRequest | null;
};

export type StoredRequest = {
  procedure: string;
  inputHash: string;
  outcome: "success" | "error";
  operationId: string | null;
  /** The procedure's output, or `{appCode, message}` for a recorded error. */
  response: unknown;
  /** The user of its operation, when the record was written with the effect: the operation is then read from that user's partition. */
  userId?: string | null;
};

/**
 * Errors that are the final answer to a request (they changed nothing and would
 * come back the same): recorded and replayed. Everything else — busy, limited,
 * unavailable, in flight — is not, so the client may retry with the same id.
 */
export const RECORDED_ERROR_CODES: ReadonlySet<AppErrorCode> = new Set<AppErrorCode>([
  "INSUFFICIENT_BALANCE",
  "IDEMPOTENCY_KEY_REUSED",
  "ACCOUNT_NOT_FOUND",
  "CREDIT_TYPE_NOT_FOUND",
  "ACTIVITY_NOT_FOUND",
  "ITEM_NOT_FOUND",
  "SOLD_OUT",
  "REFUND_EXCEEDS_DEBIT",
  "TRANSACTION_NOT_FOUND",
  "BALANCE_LIMIT_EXCEEDED",
  "CONFLICT",
]);

/**
 * Whether a successful answer is final and may be replayed for its X-Request-Id.
 * A batch answer (`{items: [{ok: false, error: {appCode}}, …]}`) is not while any
 * item failed with a retryable code: the same id must run those items again
 * (the applied ones answer idempotently through their business keys).
 */
export function isFinalAnswer(data: unknown): boolean {
  if (typeof data !== "object" || data === null || !("items" in data) || !Array.isArray(data.items)) return true;
  return (data.items as unknown[]).every((item) => {
    if (typeof item !== "object" || item === null || !("ok" in item) || item.ok !== false) return true;
    const code = "error" in item && typeof item.error === "object" && item.error !== null && "appCode" in item.error ? item.error.appCode : null;
    return typeof code === "string" && RECORDED_ERROR_CODES.has(code as AppErrorCode);
  });
}

export async function findRequestRecord(
  db: Db | Tx,
  principal: string,
  requestId: string,
  now: Date,
): Promise<StoredRequest | null> {
  const row = await db.requestRecord.findUnique({
    where: { principal_requestId: { principal, requestId } },
    select: { procedure: true, inputHash: true, outcome: true, operationId: true, response: true, expiresAt: true, userId: true },
  });
  if (!row || row.expiresAt <= now) return null;
  return {
    procedure: row.procedure,
    inputHash: row.inputHash,
    outcome: row.outcome === "error" ? "error" : "success",
    operationId: row.operationId,
    response: row.response,
    userId: row.userId,
  };
}

/**
 * Inserts the record; false when a live record with this key already exists.
 * A concurrent insert of the same key waits for the other transaction, so
 * "false" means the other one committed. An expired record is replaced.
 */
export async function insertRequestRecord(
  db: Db | Tx,
  rec: StoredRequest & { principal: string; requestId: string; userId: string | null; now: Date; ttlSeconds: number },
): Promise<boolean> {
  const expiresAt = new Date(rec.now.getTime() + rec.ttlSeconds * 1000);
  const rows = await db.$queryRaw<{ ok: number }[]>`
    INSERT INTO request_records (principal, request_id, procedure, input_hash, user_id, operation_id, outcome, response, created_at, expires_at)
    VALUES (${rec.principal}, ${rec.requestId}, ${rec.procedure}, ${rec.inputHash}, ${rec.userId},
            ${rec.operationId}::uuid, ${rec.outcome}, ${JSON.stringify(rec.response ?? null)}::jsonb, ${rec.now}, ${expiresAt})
    ON CONFLICT (principal, request_id) DO UPDATE SET
      procedure = EXCLUDED.procedure, input_hash = EXCLUDED.input_hash, user_id = EXCLUDED.user_id,
      operation_id = EXCLUDED.operation_id, outcome = EXCLUDED.outcome, response = EXCLUDED.response,
      created_at = EXCLUDED.created_at, expires_at = EXCLUDED.expires_at
      WHERE request_records.expires_at <= EXCLUDED.created_at
    RETURNING 1 AS ok`;
  return rows.length === 1;
}

/** Deletes expired records, a batch at a time; returns how many went. */
export async function deleteExpiredRequestRecords(db: Db, now: Date, batch = 1000): Promise<number> {
  return db.$executeRaw`
    DELETE FROM request_records WHERE (principal, request_id) IN (
      SELECT principal, request_id FROM request_records WHERE expires_at <= ${now} LIMIT ${batch})`;
}

/**
 * A stored record as the answer to a repeat: its result, the recorded error,
 * or 422 if the id was used for another procedure or input.
 */
export function replayAnswer(rec: StoredRequest, hash: string, procedure: string): unknown {
  if (rec.inputHash !== hash) {
    throw new AppError(
      "IDEMPOTENCY_KEY_REUSED",
      `X-Request-Id was already used for ${rec.procedure === procedure ? "another input" : `another procedure (${rec.procedure})`}`,
    );
  }
  if (rec.outcome === "error") {
    const r = (rec.response ?? {}) as { appCode?: unknown; message?: unknown };
    const code = (APP_ERROR_CODES as readonly unknown[]).includes(r.appCode) ? (r.appCode as AppErrorCode) : "INTERNAL";
    throw new AppError(code, typeof r.message === "string" ? r.message : "recorded error");
  }
  return rec.response;
}
