import type { IncomingMessage } from "node:http";
import type { AppErrorCode } from "~/server/infra/app-error";

export type GuardRefusal = { status: number; appCode: AppErrorCode; reason: string; message: string };

function header(req: IncomingMessage, name: string): string | undefined {
  const v = req.headers[name];
  return Array.isArray(v) ? v[0] : v;
}

/**
 * Checks an /api/trpc request before tRPC sees it. tRPC alone would execute a
 * mutation posted as multipart/form-data, and a browser sends cookies with a
 * cross-site form post, so: non-GET requests must be JSON, must not come from
 * another site, and must fit the body limit. Nothing runs when this refuses.
 */
export function checkApiRequest(req: IncomingMessage, bodyLimitBytes: number): GuardRefusal | null {
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
  if (origin !== undefined && !isSameOrigin(origin, req)) {
    return { status: 403, appCode: "FORBIDDEN", reason: "origin", message: "requests from another origin are refused" };
  }

  const length = Number(header(req, "content-length") ?? "0");
  if (Number.isFinite(length) && length > bodyLimitBytes) {
    return {
      status: 413,
      appCode: "PAYLOAD_TOO_LARGE",
      reason: "body-size",
      message: `request body exceeds ${bodyLimitBytes} bytes`,
    };
  }
  return null;
}

function isSameOrigin(origin: string, req: IncomingMessage): boolean {
  if (origin === "null") return false;
  let url: URL;
  try {
    url = new URL(origin);
  } catch {
    return false;
  }
  const host = header(req, "x-forwarded-host") ?? header(req, "host");
  return url.host === host;
}

/** The refusal in tRPC's error shape, so clients parse it like any other error. */
export function refusalBody(refusal: GuardRefusal, path: string): string {
  const code = { 415: "UNSUPPORTED_MEDIA_TYPE", 403: "FORBIDDEN", 413: "PAYLOAD_TOO_LARGE" }[refusal.status] ?? "BAD_REQUEST";
  const rpc = { 415: -32015, 403: -32003, 413: -32013 }[refusal.status] ?? -32600;
  return JSON.stringify({
    error: {
      message: refusal.message,
      code: rpc,
      data: { code, httpStatus: refusal.status, path, appCode: refusal.appCode },
    },
  });
}
