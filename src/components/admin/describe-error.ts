import { TRPCClientError } from "@trpc/client";

export type ErrorInfo = {
  /** The service's stable error code, when the server answered with one. */
  appCode: string | undefined;
  retryAfterMs: number | undefined;
  message: string;
};

/** Reads the typed error a tRPC call failed with (`error.data.appCode`, docs/api.md "Errors"). */
export function errorInfo(error: unknown): ErrorInfo {
  if (error instanceof TRPCClientError) {
    const data = (error.data ?? {}) as { appCode?: unknown; retryAfterMs?: unknown };
    return {
      appCode: typeof data.appCode === "string" ? data.appCode : undefined,
      retryAfterMs: typeof data.retryAfterMs === "number" ? data.retryAfterMs : undefined,
      message: error.message,
    };
  }
  return { appCode: undefined, retryAfterMs: undefined, message: error instanceof Error ? error.message : String(error) };
}

export function retryAfterSeconds(ms: number | undefined): number | undefined {
  return ms === undefined ? undefined : Math.max(1, Math.ceil(ms / 1000));
}

/** A sentence an operator can act on, for failures shared by every page. */
export function describeError(error: unknown): string {
  const info = errorInfo(error);
  switch (info.appCode) {
    case undefined:
      return "The server could not be reached. Check your connection and try again.";
    case "UNAUTHENTICATED":
      return "Your session has ended. Sign in again.";
    case "FORBIDDEN":
      return "Your role does not allow this.";
    case "RATE_LIMITED": {
      const s = retryAfterSeconds(info.retryAfterMs);
      return s ? `Too many requests. Try again in ${s} s.` : "Too many requests. Try again shortly.";
    }
    case "UNAVAILABLE":
    case "DEGRADED":
    case "CIRCUIT_OPEN":
      return "The service is temporarily unavailable. Try again shortly.";
    default:
      return info.message;
  }
}
