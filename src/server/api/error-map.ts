import { TRPCError } from "@trpc/server";
import type { TRPC_ERROR_CODE_KEY } from "@trpc/server/rpc";
import { ZodError } from "zod";
import { AppError, isAnswerCode, withoutStack, type AppErrorCode } from "~/server/infra/app-error";

/** appCode → tRPC code (and so HTTP status). The one place this mapping lives. */
export const TRPC_CODE: Record<AppErrorCode, TRPC_ERROR_CODE_KEY> = {
  VALIDATION: "BAD_REQUEST",
  UNAUTHENTICATED: "UNAUTHORIZED",
  FORBIDDEN: "FORBIDDEN",
  ACCOUNT_NOT_FOUND: "NOT_FOUND",
  ACTIVITY_NOT_FOUND: "NOT_FOUND",
  ITEM_NOT_FOUND: "NOT_FOUND",
  OPERATION_NOT_FOUND: "NOT_FOUND",
  CREDIT_TYPE_NOT_FOUND: "NOT_FOUND",
  REFUND_NOT_FOUND: "NOT_FOUND",
  TRANSACTION_NOT_FOUND: "NOT_FOUND",
  NOT_FOUND: "NOT_FOUND",
  INSUFFICIENT_BALANCE: "UNPROCESSABLE_CONTENT",
  IDEMPOTENCY_KEY_REUSED: "UNPROCESSABLE_CONTENT",
  REFUND_EXCEEDS_DEBIT: "UNPROCESSABLE_CONTENT",
  BALANCE_LIMIT_EXCEEDED: "UNPROCESSABLE_CONTENT",
  ACTIVITY_NOT_ACTIVE: "UNPROCESSABLE_CONTENT",
  INVALID_STATE: "CONFLICT",
  CONFLICT: "CONFLICT",
  SOLD_OUT: "CONFLICT",
  OPERATION_LOCKED: "CONFLICT",
  VERSION_CONFLICT: "CONFLICT",
  DUPLICATE_REQUEST_IN_FLIGHT: "CONFLICT",
  RATE_LIMITED: "TOO_MANY_REQUESTS",
  CIRCUIT_OPEN: "SERVICE_UNAVAILABLE",
  DEGRADED: "SERVICE_UNAVAILABLE",
  UNAVAILABLE: "SERVICE_UNAVAILABLE",
  UNSUPPORTED_MEDIA_TYPE: "UNSUPPORTED_MEDIA_TYPE",
  PAYLOAD_TOO_LARGE: "PAYLOAD_TOO_LARGE",
  INTERNAL: "INTERNAL_SERVER_ERROR",
};

/** What each appCode means, for docs/api.md (generated from this). */
export const ERROR_DOCS: Record<AppErrorCode, { when: string; retryAfterMs?: string }> = {
  VALIDATION: { when: "bad input (the zod issues are in `error.data.zodError`), a malformed cursor, a batch too large" },
  UNAUTHENTICATED: { when: "no key, a bad or revoked key, no session or an expired one, a wrong password" },
  FORBIDDEN: { when: "the key lacks the scope or the session the role; a cross-site request" },
  ACCOUNT_NOT_FOUND: { when: "no account for this user and credit type" },
  ACTIVITY_NOT_FOUND: { when: "no such flash-sale activity" },
  ITEM_NOT_FOUND: { when: "no such item in the activity" },
  OPERATION_NOT_FOUND: { when: "no operation matches (or the request id is another caller's)" },
  CREDIT_TYPE_NOT_FOUND: { when: "no such credit type: create it first (`creditType.create`)" },
  REFUND_NOT_FOUND: { when: "no such refund" },
  TRANSACTION_NOT_FOUND: { when: "no debit with this transaction id (`credit.refund` gives back debits only)" },
  NOT_FOUND: { when: "no such procedure or thing" },
  INSUFFICIENT_BALANCE: { when: "the balance is less than the amount; nothing changed" },
  IDEMPOTENCY_KEY_REUSED: { when: "a business key or `X-Request-Id` used before for other values" },
  REFUND_EXCEEDS_DEBIT: { when: "the refunds of one debit would exceed it" },
  BALANCE_LIMIT_EXCEEDED: { when: "the balance would pass 2^53 − 1 (9,007,199,254,740,991), the largest exact JSON number; nothing changed" },
  ACTIVITY_NOT_ACTIVE: { when: "before start, after end, or paused", retryAfterMs: "until start, if scheduled" },
  INVALID_STATE: { when: "the thing is not in a state that allows this (e.g. resolving a refund that has not failed)" },
  CONFLICT: { when: "the thing exists with other values" },
  SOLD_OUT: { when: "no stock left" },
  OPERATION_LOCKED: { when: "the account stayed busy past the lock wait", retryAfterMs: "yes, growing with the queue" },
  VERSION_CONFLICT: { when: "the account kept changing under bounded retries", retryAfterMs: "yes" },
  DUPLICATE_REQUEST_IN_FLIGHT: { when: "the same `X-Request-Id` is still running", retryAfterMs: "yes" },
  RATE_LIMITED: { when: "a token bucket is empty (per user, per key, or sign-in attempts)", retryAfterMs: "until the next token" },
  CIRCUIT_OPEN: { when: "the breaker is open, or half-open and this call is no probe", retryAfterMs: "until half-open" },
  DEGRADED: { when: "a degradation switch turned this feature off", retryAfterMs: "yes" },
  UNAVAILABLE: { when: "PostgreSQL or Redis failed, timed out or is overloaded", retryAfterMs: "yes" },
  UNSUPPORTED_MEDIA_TYPE: { when: "a POST that is not `application/json`" },
  PAYLOAD_TOO_LARGE: { when: "a body over `BODY_LIMIT_BYTES`" },
  INTERNAL: { when: "a bug; logged with the request id" },
};

/** For errors tRPC raises itself (unknown procedure, bad JSON, wrong method…). */
const APP_CODE_OF_TRPC: Partial<Record<TRPC_ERROR_CODE_KEY, AppErrorCode>> = {
  BAD_REQUEST: "VALIDATION",
  PARSE_ERROR: "VALIDATION",
  METHOD_NOT_SUPPORTED: "VALIDATION",
  UNAUTHORIZED: "UNAUTHENTICATED",
  FORBIDDEN: "FORBIDDEN",
  NOT_FOUND: "NOT_FOUND",
  TOO_MANY_REQUESTS: "RATE_LIMITED",
  PAYLOAD_TOO_LARGE: "PAYLOAD_TOO_LARGE",
  UNSUPPORTED_MEDIA_TYPE: "UNSUPPORTED_MEDIA_TYPE",
  SERVICE_UNAVAILABLE: "UNAVAILABLE",
  TIMEOUT: "UNAVAILABLE",
};

/** The tRPC error for `e`; an answer's (not a fault's) is made without a stack, as the AppError was. */
export function toTRPCError(e: AppError): TRPCError {
  const make = () => new TRPCError({ code: TRPC_CODE[e.code], message: e.message, cause: e });
  return isAnswerCode(e.code) ? withoutStack(make) : make();
}

/** Whether tRPC error `error` already carries the code its AppError `cause` maps to. */
export function isMapped(error: TRPCError, cause: AppError): boolean {
  return error.code === TRPC_CODE[cause.code];
}

/** The AppError behind a tRPC error, if any. */
export function appErrorOf(error: TRPCError): AppError | undefined {
  return error.cause instanceof AppError ? error.cause : undefined;
}

export type ErrorData = {
  appCode: AppErrorCode;
  retryAfterMs?: number;
  zodError?: ZodError["issues"];
};

export function errorData(error: TRPCError): ErrorData {
  const app = appErrorOf(error);
  if (app) return { appCode: app.code, ...(app.retryAfterMs !== undefined ? { retryAfterMs: app.retryAfterMs } : {}) };
  if (error.cause instanceof ZodError) return { appCode: "VALIDATION", zodError: error.cause.issues };
  return { appCode: APP_CODE_OF_TRPC[error.code] ?? "INTERNAL" };
}

/** Largest retry hint among the errors of a (batched) response, in ms. */
export function retryAfterOf(errors: readonly TRPCError[]): number | undefined {
  let ms: number | undefined;
  for (const e of errors) {
    const hint = appErrorOf(e)?.retryAfterMs;
    if (hint !== undefined) ms = Math.max(ms ?? 0, hint);
  }
  return ms;
}
