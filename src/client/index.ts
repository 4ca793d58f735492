/**
 * Typed client for services that call FlashPoints:
 *
 *   const fp = createFlashPointsClient({ url: "http://points:3000", apiKey });
 *   await fp.credit.grant.mutate({ userId, creditTypeId, amount, businessCode, businessId });
 */
import { createTRPCClient, httpLink, TRPCClientError } from "@trpc/client";
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

export function createFlashPointsClient(opts: FlashPointsClientOptions) {
  return createTRPCClient<AppRouter>({
    links: [
      httpLink({
        url: `${opts.url.replace(/\/$/, "")}/api/trpc`,
        headers: () => ({ authorization: `Bearer ${opts.apiKey}`, ...opts.headers?.() }),
        ...(opts.fetch ? { fetch: opts.fetch } : {}),
      }),
    ],
  });
}

export type FlashPointsClient = ReturnType<typeof createFlashPointsClient>;

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

export type { AppRouter, AppErrorCode };
