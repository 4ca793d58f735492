import type { IncomingMessage, ServerResponse } from "node:http";
import { createHTTPHandler } from "@trpc/server/adapters/standalone";
import { appRouter } from "~/server/api/root";
import { createContextInner, normalizeRequestId } from "~/server/api/context";
import { retryAfterOf } from "~/server/api/error-map";
import type { Deps } from "~/server/infra/deps";
import { readCookie, SESSION_COOKIE } from "~/server/identity/sessions";
import { checkApiRequest, refusalBody } from "./request-guard";
import { writeHealth, writeMetrics } from "./ops-endpoints";

export const API_BASE = "/api/trpc/";

function firstHeader(req: IncomingMessage, name: string): string | null {
  const v = req.headers[name];
  return (Array.isArray(v) ? v[0] : v) ?? null;
}

function clientIp(req: IncomingMessage): string | null {
  return req.socket.remoteAddress ?? null;
}

/**
 * The API's whole path: request id → guard → tRPC's node adapter. Returns a
 * handler that answers /api/trpc, /api/health and /api/metrics and reports
 * whether it handled the request (anything else is the dashboard's).
 */
export function createApiHandler(deps: Deps): (req: IncomingMessage, res: ServerResponse) => boolean {
  const trpc = createHTTPHandler({
    router: appRouter,
    basePath: API_BASE,
    maxBodySize: deps.env.BODY_LIMIT_BYTES,
    createContext: ({ req, res }) =>
      createContextInner({
        deps,
        requestId: res.getHeader("x-request-id") as string,
        requestIdFromClient: normalizeRequestId(firstHeader(req, "x-request-id")).fromClient,
        authorization: firstHeader(req, "authorization"),
        sessionToken: readCookie(firstHeader(req, "cookie"), SESSION_COOKIE),
        ip: clientIp(req),
        userAgent: firstHeader(req, "user-agent"),
        secure: firstHeader(req, "x-forwarded-proto") === "https",
        setCookie: (cookie) => res.appendHeader("set-cookie", cookie),
      }),
    responseMeta: ({ errors }) => {
      const headers = new Headers({ "cache-control": "no-store" });
      const retryMs = retryAfterOf(errors);
      const limited = errors.some((e) => e.code === "TOO_MANY_REQUESTS" || e.code === "SERVICE_UNAVAILABLE");
      if (retryMs !== undefined && limited) headers.set("retry-after", String(Math.max(1, Math.ceil(retryMs / 1000))));
      return { headers };
    },
    onError: ({ error, path }) => {
      if (error.code === "INTERNAL_SERVER_ERROR" && !(error.cause && "code" in error.cause)) {
        deps.log.error({ err: error.cause ?? error, path }, "unhandled API error");
      }
    },
  });

  return (req, res) => {
    const url = req.url ?? "/";
    const isApi = url.startsWith(API_BASE);
    const pathname = url.split("?", 1)[0];
    if (!isApi && pathname !== "/api/health" && pathname !== "/api/metrics") return false;

    const { id } = normalizeRequestId(firstHeader(req, "x-request-id"));
    res.setHeader("x-request-id", id);

    if (pathname === "/api/health") {
      void writeHealth(deps, res);
      return true;
    }
    if (pathname === "/api/metrics") {
      void writeMetrics(deps, res);
      return true;
    }
    const refusal = checkApiRequest(req, deps.env.BODY_LIMIT_BYTES);
    if (refusal) {
      deps.metrics.guardRefusals.inc({ reason: refusal.reason });
      res.writeHead(refusal.status, { "content-type": "application/json", "cache-control": "no-store" });
      res.end(refusalBody(refusal, pathname!.slice(API_BASE.length)));
      req.resume();
      return true;
    }
    trpc(req, res);
    return true;
  };
}
