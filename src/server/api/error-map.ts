import { TRPCError } from "@trpc/server";
import type { TRPC_ERROR_CODE_KEY } from "@trpc/server/rpc";
import { ZodError } from "zod";
import { AppError, type AppErrorCode } from "~/server/infra/app-error";

/** appCode → tRPC code (and so HTTP status). The one place this mapping lives. */
const TRPC_CODE: Record<AppErrorCode, TRPC_ERROR_CODE_KEY> = {
  VALIDATION: "BAD_REQUEST",
  UNAUTHENTICATED: "UNAUTHORIZED",
  FORBIDDEN: "FORBIDDEN",
  ACCOUNT_NOT_FOUND: "NOT_FOUND",
  ACTIVITY_NOT_FOUND: "NOT_FOUND",
  ITEM_NOT_FOUND: "NOT_FOUND",
  OPERATION_NOT_FOUND: "NOT_FOUND",
  CREDIT_TYPE_NOT_FOUND: "NOT_FOUND",
  REFUND_NOT_FOUND: "NOT_FOUND",
  NOT_FOUND: "NOT_FOUND",
  INSUFFICIENT_BALANCE: "UNPROCESSABLE_CONTENT",
  IDEMPOTENCY_KEY_REUSED: "UNPROCESSABLE_CONTENT",
  REFUND_EXCEEDS_DEBIT: "UNPROCESSABLE_CONTENT",
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

export function toTRPCError(e: AppError): TRPCError {
  return new TRPCError({ code: TRPC_CODE[e.code], message: e.message, cause: e });
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
