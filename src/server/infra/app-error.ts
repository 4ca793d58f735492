/**
 * The one error type of the service. Its `code` is the stable `appCode` of the
 * public contract (README, "Errors"); the API maps it to an HTTP status in one
 * place (src/server/api/error-map.ts).
 */
export const APP_ERROR_CODES = [
  "VALIDATION",
  "UNAUTHENTICATED",
  "FORBIDDEN",
  "ACCOUNT_NOT_FOUND",
  "ACTIVITY_NOT_FOUND",
  "ITEM_NOT_FOUND",
  "OPERATION_NOT_FOUND",
  "CREDIT_TYPE_NOT_FOUND",
  "REFUND_NOT_FOUND",
  "TRANSACTION_NOT_FOUND",
  "NOT_FOUND",
  "INSUFFICIENT_BALANCE",
  "IDEMPOTENCY_KEY_REUSED",
  "REFUND_EXCEEDS_DEBIT",
  "BALANCE_LIMIT_EXCEEDED",
  "ACTIVITY_NOT_ACTIVE",
  "INVALID_STATE",
  "CONFLICT",
  "SOLD_OUT",
  "OPERATION_LOCKED",
  "VERSION_CONFLICT",
  "DUPLICATE_REQUEST_IN_FLIGHT",
  "RATE_LIMITED",
  "CIRCUIT_OPEN",
  "DEGRADED",
  "UNAVAILABLE",
  "UNSUPPORTED_MEDIA_TYPE",
  "PAYLOAD_TOO_LARGE",
  "INTERNAL",
] as const;

export type AppErrorCode = (typeof APP_ERROR_CODES)[number];

/**
 * Errors of the infrastructure (timeouts, lost connections) rather than of the
 * request: these are what a circuit breaker counts and what a client may retry.
 */
export const INFRASTRUCTURE_CODES: ReadonlySet<AppErrorCode> = new Set(["UNAVAILABLE", "INTERNAL"]);

export class AppError extends Error {
  readonly code: AppErrorCode;
  readonly retryAfterMs: number | undefined;
  readonly details: Record<string, unknown> | undefined;

  constructor(
    code: AppErrorCode,
    message: string,
    opts: { retryAfterMs?: number; details?: Record<string, unknown>; cause?: unknown } = {},
  ) {
    // An answer such as SOLD_OUT or RATE_LIMITED is not a fault: its stack
    // would say nothing, and capturing one is the costliest part of refusing a
    // call. Faults keep theirs.
    const answer = isAnswerCode(code);
    const limit = Error.stackTraceLimit;
    if (answer) Error.stackTraceLimit = 0;
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause });
    Error.stackTraceLimit = limit;
    this.name = "AppError";
    this.code = code;
    this.retryAfterMs = opts.retryAfterMs === undefined ? undefined : Math.max(0, Math.ceil(opts.retryAfterMs));
    this.details = opts.details;
    if (answer) this.stack = `AppError: ${code}: ${message}`;
  }
}

/** Runs `make` with the stack trace limit at 0: the error it makes captures no stack. */
export function withoutStack<T>(make: () => T): T {
  const limit = Error.stackTraceLimit;
  Error.stackTraceLimit = 0;
  try {
    return make();
  } finally {
    Error.stackTraceLimit = limit;
  }
}

/** Whether `code` answers the request (SOLD_OUT, RATE_LIMITED…) rather than reporting a fault of the service. */
export function isAnswerCode(code: AppErrorCode): boolean {
  return !INFRASTRUCTURE_CODES.has(code);
}

export function isAppError(e: unknown, code?: AppErrorCode): e is AppError {
  return e instanceof AppError && (code === undefined || e.code === code);
}

