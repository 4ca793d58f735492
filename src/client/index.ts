/**
 * Typed client for services that call FlashPoints:
 *
 *   const fp = createFlashPointsClient({ url: "http://points:3000", apiKey });
 *   await fp.credit.grant.mutate({ userId, creditTypeId, amount, businessCode, businessId });
 *
 *   // Retry what is worth retrying, with the same X-Request-Id on every attempt,
 *   // so a retry after a lost answer is served the first result, not run twice:
 *   const res = await withRetry((call) => fp.credit.deduct.mutate(input, call.options));
 *
 *   try { … } catch (e) { if (isFlashPointsError(e, "INSUFFICIENT_BALANCE")) … }
 *
 * A request whose calls are all for one user carries `X-FlashPoints-User`:
 * a balancer that routes by it (cluster:up's HAProxy does) sends one user's
 * calls to one instance, where they share the balance engine's batches.
 */
import { createTRPCClient, httpBatchLink, httpLink, splitLink, TRPCClientError } from "@trpc/client";
import type { inferRouterInputs, inferRouterOutputs } from "@trpc/server";
import type { AppRouter } from "~/server/api/root";
import type { AppErrorCode } from "~/server/infra/app-error";

export type FlashPointsClientOptions = {
  /** Base URL of the service, e.g. http://127.0.0.1:3000 */
  url: string;
  apiKey: string;
  /** Extra headers per call (e.g. a fixed X-Request-Id for a retried mutation). */
  headers?: () => Record<string, string>;
  fetch?: typeof fetch;
};

/** Per-call options that send `requestId` as X-Request-Id: `fp.credit.deduct.mutate(input, withRequestId(id))`. */
export function withRequestId(requestId: string): { context: { requestId: string } } {
  return { context: { requestId } };
}

/**
 * The most calls the service takes in one tRPC batch (its `BATCH_MAX`,
 * default 20). A stock tRPC client talking to FlashPoints should set
 * `httpBatchLink({ maxItems: 20 })` too: a larger batch is refused whole.
 */
export const MAX_BATCH_ITEMS = 20;

/** The header a balancer may route by, so one user's calls meet in one instance's batches. */
export const USER_ROUTING_HEADER = "x-flashpoints-user";

/** The user a call's input names (a well-formed id), if any. */
function userOf(input: unknown): string | undefined {
  const userId = typeof input === "object" && input !== null ? (input as { userId?: unknown }).userId : undefined;
  return typeof userId === "string" && /^[A-Za-z0-9_.:-]{1,64}$/.test(userId) ? userId : undefined;
}

/** The routing header when every call of a request is for the same user. */
function routingHeader(inputs: readonly unknown[]): Record<string, string> {
  const users = new Set(inputs.map(userOf));
  const [only] = users;
  return users.size === 1 && only !== undefined ? { [USER_ROUTING_HEADER]: only } : {};
}

export function createFlashPointsClient(opts: FlashPointsClientOptions) {
  const url = `${opts.url.replace(/\/$/, "")}/api/trpc`;
  const baseHeaders = () => ({ authorization: `Bearer ${opts.apiKey}`, ...opts.headers?.() });
  const fetchOpt = opts.fetch ? { fetch: opts.fetch } : {};
  return createTRPCClient<AppRouter>({
    links: [
      splitLink({
        // A call with its own X-Request-Id needs a request of its own (headers
        // are per HTTP request); the rest may share a batch.
        condition: (op) => typeof op.context.requestId === "string",
        true: httpLink({
          url,
          headers: ({ op }) => ({ ...baseHeaders(), ...routingHeader([op.input]), "x-request-id": op.context.requestId as string }),
          ...fetchOpt,
        }),
        false: httpBatchLink({
          url,
          maxItems: MAX_BATCH_ITEMS,
          headers: ({ opList }) => ({ ...baseHeaders(), ...routingHeader(opList.map((op) => op.input)) }),
          ...fetchOpt,
        }),
      }),
    ],
  });
}

export type FlashPointsClient = ReturnType<typeof createFlashPointsClient>;
export type FlashPointsInputs = inferRouterInputs<AppRouter>;
export type FlashPointsOutputs = inferRouterOutputs<AppRouter>;

export type FlashPointsErrorData = {
  appCode: AppErrorCode;
  httpStatus: number;
  retryAfterMs?: number;
};

/** Narrows an error from the client to a FlashPoints error, optionally of one appCode. */
export function isFlashPointsError<C extends AppErrorCode>(
  e: unknown,
  code?: C,
): e is TRPCClientError<AppRouter> & { data: FlashPointsErrorData & { appCode: C } } {
  if (!(e instanceof TRPCClientError)) return false;
  const data = e.data as Partial<FlashPointsErrorData> | undefined;
  return typeof data?.appCode === "string" && (code === undefined || data.appCode === code);
}

/**
 * Errors that say "not now" rather than "no": the same request may succeed
 * later. Retrying them is safe with the same X-Request-Id (never a second
 * execution) and, for balance changes, with the same business key.
 */
export const RETRYABLE_CODES: ReadonlySet<AppErrorCode> = new Set<AppErrorCode>([
  "OPERATION_LOCKED",
  "VERSION_CONFLICT",
  "DUPLICATE_REQUEST_IN_FLIGHT",
  "RATE_LIMITED",
  "CIRCUIT_OPEN",
  "UNAVAILABLE",
]);

/** The server's retry hint, if the error carries one. */
export function retryAfterMsOf(e: unknown): number | undefined {
  return isFlashPointsError(e) && typeof e.data.retryAfterMs === "number" ? e.data.retryAfterMs : undefined;
}

/** Retryable appCode, or no answer at all (connection refused or reset: the request may or may not have run). */
export function isRetryableError(e: unknown): boolean {
  if (isFlashPointsError(e)) return RETRYABLE_CODES.has(e.data.appCode);
  if (e instanceof TRPCClientError) {
    const status = (e.data as { httpStatus?: unknown } | undefined)?.httpStatus;
    // No tRPC payload: the network or a proxy failed, not the service's decision.
    return status === undefined || status === 502 || status === 503 || status === 504;
  }
  return false;
}

export type RetryCall = {
  /** 0 for the first try. */
  attempt: number;
  /** The same on every attempt. */
  requestId: string;
  /** Pass as the procedure's second argument to send the request id. */
  options: { context: { requestId: string } };
};

export type RetryOptions = {
  /** Tries in all, the first included (default 5). */
  attempts?: number;
  /** First back-off step; doubles per attempt, with full jitter (default 50 ms). */
  baseDelayMs?: number;
  /** No single wait exceeds this, whatever the hint (default 2000 ms). */
  maxDelayMs?: number;
  /** The X-Request-Id for every attempt (default: a new UUID). */
  requestId?: string;
  /** Which errors to retry (default: isRetryableError). */
  retryIf?: (e: unknown) => boolean;
  onRetry?: (info: { attempt: number; error: unknown; delayMs: number }) => void;
  signal?: AbortSignal;
  /** Injected in tests. */
  sleep?: (ms: number) => Promise<void>;
  random?: () => number;
};

const defaultSleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/**
 * Calls `fn` until it succeeds, fails with an error that is not worth retrying,
 * or runs out of attempts (then the last error is thrown). Waits at least the
 * server's `retryAfterMs`, else an exponential back-off with jitter, never more
 * than `maxDelayMs`. Every attempt gets the same request id.
 */
export async function withRetry<T>(fn: (call: RetryCall) => Promise<T>, opts: RetryOptions = {}): Promise<T> {
  const attempts = Math.max(1, opts.attempts ?? 5);
  const base = opts.baseDelayMs ?? 50;
  const max = opts.maxDelayMs ?? 2000;
  const retryIf = opts.retryIf ?? isRetryableError;
  const sleep = opts.sleep ?? defaultSleep;
  const random = opts.random ?? Math.random;
  const requestId = opts.requestId ?? globalThis.crypto.randomUUID();
  const options = withRequestId(requestId);
  for (let attempt = 0; ; attempt++) {
    try {
      return await fn({ attempt, requestId, options });
    } catch (error) {
      if (attempt + 1 >= attempts || !retryIf(error) || opts.signal?.aborted) throw error;
      const backoff = random() * Math.min(max, base * 2 ** attempt);
      const delayMs = Math.min(max, Math.max(retryAfterMsOf(error) ?? 0, backoff));
      opts.onRetry?.({ attempt, error, delayMs });
      await sleep(delayMs);
    }
  }
}

export type { AppRouter, AppErrorCode };
