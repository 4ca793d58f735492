import type { IncomingMessage } from "node:http";
import type { AppErrorCode } from "~/server/infra/app-error";
import { clientInfo } from "./client-info";

export type GuardRefusal = { status: number; appCode: AppErrorCode; reason: string; message: string };

export type GuardOptions = { bodyLimitBytes: number; batchMax: number; trustProxy: boolean };

function header(req: IncomingMessage, name: string): string | undefined {
  const v = req.headers[name];
  return Array.isArray(v) ? v[0] : v;
}

/** The procedures a tRPC request names: `/api/trpc/a,b?batch=1` → [a, b]; null when it is no batch. */
export function batchedProcedures(url: string, basePath: string): string[] | null {
  const [path = "", query = ""] = url.split("?", 2);
  if (!new URLSearchParams(query).has("batch")) return null;
  return decodeURIComponent(path.slice(basePath.length)).split(",");
}

/** Procedures that must never run inside a batch (each call is one decision of its own). */
const NEVER_BATCHED = new Set(["auth.login"]);

/**
 * Checks an /api/trpc request before tRPC sees it. tRPC alone would execute a
 * mutation posted as multipart/form-data, and a browser sends cookies with a
 * cross-site form post, so: non-GET requests must be JSON, must not come from
 * another site, and must fit the body limit. A batch holds at most
 * `batchMax` calls, and sign-in never runs in one. Nothing runs when this
 * refuses.
 */
export function checkApiRequest(req: IncomingMessage, opts: GuardOptions, basePath = "/api/trpc/"): GuardRefusal | null {
  const batch = batchedProcedures(req.url ?? "", basePath);
  if (batch && batch.length > opts.batchMax) {
    return {
      status: 400,
      appCode: "VALIDATION",
      reason: "batch-size",
      message: `a batch holds at most ${opts.batchMax} calls (this one ${batch.length}); for bulk work use the batch procedures`,
    };
  }
  if (batch?.some((p) => NEVER_BATCHED.has(p))) {
    return { status: 400, appCode: "VALIDATION", reason: "batch-login", message: "auth.login cannot be sent in a batch" };
  }

  const method = req.method ?? "GET";
  if (method === "GET" || method === "HEAD" || method === "OPTIONS") return null;

  const contentType = (header(req, "content-type") ?? "").split(";")[0]!.trim().toLowerCase();
  if (contentType !== "application/json") {
    return {
      status: 415,
      appCode: "UNSUPPORTED_MEDIA_TYPE",
      reason: "content-type",
      message: "POST bodies must be application/json",
    };
  }

  const fetchSite = header(req, "sec-fetch-site");
  if (fetchSite && fetchSite !== "same-origin" && fetchSite !== "none") {
    return { status: 403, appCode: "FORBIDDEN", reason: "cross-site", message: "cross-site requests are refused" };
  }
  const origin = header(req, "origin");
  if (origin !== undefined && !isSameOrigin(origin, clientInfo(req, opts.trustProxy).host)) {
    return { status: 403, appCode: "FORBIDDEN", reason: "origin", message: "requests from another origin are refused" };
  }

  const length = Number(header(req, "content-length") ?? "0");
  if (Number.isFinite(length) && length > opts.bodyLimitBytes) {
    return {
      status: 413,
      appCode: "PAYLOAD_TOO_LARGE",
      reason: "body-size",
      message: `request body exceeds ${opts.bodyLimitBytes} bytes`,
    };
  }
  return null;
}

function isSameOrigin(origin: string, host: string | null): boolean {
  if (origin === "null" || !host) return false;
  try {
    return new URL(origin).host === host;
  } catch {
    return false;
  }
}

const TRPC_CODES: Record<number, [name: string, rpc: number]> = {
  400: ["BAD_REQUEST", -32600],
  403: ["FORBIDDEN", -32003],
  413: ["PAYLOAD_TOO_LARGE", -32013],
  415: ["UNSUPPORTED_MEDIA_TYPE", -32015],
  503: ["SERVICE_UNAVAILABLE", -32603],
};

/** A refusal in tRPC's error shape, so clients parse it like any other error. */
export function refusalBody(refusal: { status: number; appCode: AppErrorCode; message: string; retryAfterMs?: number }, path: string): string {
  const [code, rpc] = TRPC_CODES[refusal.status] ?? ["BAD_REQUEST", -32600];
  return JSON.stringify({
    error: {
      message: refusal.message,
      code: rpc,
      data: {
        code,
        httpStatus: refusal.status,
        path,
        appCode: refusal.appCode,
        ...(refusal.retryAfterMs !== undefined ? { retryAfterMs: refusal.retryAfterMs } : {}),
      },
    },
  });
}
