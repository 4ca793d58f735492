import type { IncomingMessage, ServerResponse } from "node:http";
import { createHTTPHandler } from "@trpc/server/adapters/standalone";
import { appRouter } from "~/server/api/root";
import { createContextInner, normalizeRequestId } from "~/server/api/context";
import { retryAfterOf } from "~/server/api/error-map";
import type { Deps } from "~/server/infra/deps";
import { counterOf } from "~/server/infra/metrics";
import { readSessionToken } from "~/server/identity/sessions";
import { clientInfo } from "./client-info";
import { batchedProcedures, checkApiRequest, refusalBody } from "./request-guard";
import { createHealth, readiness, writeHealth, writeMetrics } from "./ops-endpoints";
import { setApiSecurityHeaders } from "./security-headers";

export const API_BASE = "/api/trpc/";

/** Every 503 carries a retry hint; this one when nothing more precise is known. */
const DEFAULT_RETRY_AFTER_S = 1;

/** What the HTTP server shares with the API handler: whether it is shutting down. */
export type ServerState = { draining: boolean };

export type ApiHandler = {
  /** Answers /api/trpc, /api/health, /api/ready and /api/metrics; false for anything else (the dashboard's). */
  handle: (req: IncomingMessage, res: ServerResponse) => boolean;
  /** tRPC calls being worked on now (a batch counts each of its calls). */
  inFlight: () => number;
};

function firstHeader(req: IncomingMessage, name: string): string | null {
  const v = req.headers[name];
  return (Array.isArray(v) ? v[0] : v) ?? null;
}

/** The default in-flight limit: enough to keep the pools busy, not enough to queue without end. */
export function maxInFlight(env: Deps["env"]): number {
  return env.MAX_IN_FLIGHT ?? 16 * env.DB_POOL_MAX;
}

/**
 * The API's whole path: request id → security headers → guard → in-flight
 * limit → tRPC's node adapter.
 */
export function createApiHandler(deps: Deps, state: ServerState = { draining: false }): ApiHandler {
  const { env } = deps;
  const limit = maxInFlight(env);
  let inFlight = 0;
  const shed = counterOf(deps.metrics.registry, "fp_overload_refusals_total", "API calls refused at once because the process was at MAX_IN_FLIGHT", []);
  const health = createHealth(deps, state);

  const trpc = createHTTPHandler({
    router: appRouter,
    basePath: API_BASE,
    maxBodySize: env.BODY_LIMIT_BYTES,
    createContext: ({ req, res }) => {
      const client = clientInfo(req, env.TRUST_PROXY);
      return createContextInner({
        deps,
        requestId: res.getHeader("x-request-id") as string,
        requestIdFromClient: normalizeRequestId(firstHeader(req, "x-request-id")).fromClient,
        authorization: firstHeader(req, "authorization"),
        sessionToken: readSessionToken(firstHeader(req, "cookie"), client.secure),
        ip: client.ip,
        userAgent: firstHeader(req, "user-agent"),
        secure: client.secure,
        setCookie: (cookie) => res.appendHeader("set-cookie", cookie),
      });
    },
    responseMeta: ({ errors }) => {
      const headers = new Headers({ "cache-control": "no-store" });
      const retryMs = retryAfterOf(errors);
      const unavailable = errors.some((e) => e.code === "SERVICE_UNAVAILABLE");
      const limited = unavailable || errors.some((e) => e.code === "TOO_MANY_REQUESTS");
      if (retryMs !== undefined && limited) headers.set("retry-after", String(Math.max(1, Math.ceil(retryMs / 1000))));
      else if (unavailable) headers.set("retry-after", String(DEFAULT_RETRY_AFTER_S));
      return { headers };
    },
    onError: ({ error, path }) => {
      if (error.code === "INTERNAL_SERVER_ERROR" && !(error.cause && "code" in error.cause)) {
        deps.log.error({ err: error.cause ?? error, path }, "unhandled API error");
      }
    },
  });

  const refuse = (res: ServerResponse, req: IncomingMessage, path: string, refusal: Parameters<typeof refusalBody>[0]) => {
    const headers: Record<string, string> = { "content-type": "application/json", "cache-control": "no-store" };
    if (refusal.status === 503) headers["retry-after"] = String(Math.ceil((refusal.retryAfterMs ?? 1000) / 1000));
    res.writeHead(refusal.status, headers);
    res.end(refusalBody(refusal, path));
    req.resume();
  };

  const handle = (req: IncomingMessage, res: ServerResponse): boolean => {
    const url = req.url ?? "/";
    const isApi = url.startsWith(API_BASE);
    const pathname = url.split("?", 1)[0]!;
    if (!isApi && pathname !== "/api/health" && pathname !== "/api/ready" && pathname !== "/api/metrics") return false;
    const { id } = normalizeRequestId(firstHeader(req, "x-request-id"));
    res.setHeader("x-request-id", id);
    setApiSecurityHeaders(res, clientInfo(req, env.TRUST_PROXY).secure);
    // While draining, answer what comes but let every connection close after it.
    if (state.draining) res.setHeader("connection", "close");
    if (pathname === "/api/health") {
      void writeHealth(health, res);
      return true;
    }
    if (pathname === "/api/ready") {
      void writeHealth(async () => readiness(state), res);
      return true;
    }
    if (pathname === "/api/metrics") {
      void writeMetrics(deps, req, res);
      return true;
    }
    const path = pathname.slice(API_BASE.length);
    const refusal = checkApiRequest(req, { bodyLimitBytes: env.BODY_LIMIT_BYTES, batchMax: env.BATCH_MAX, trustProxy: env.TRUST_PROXY }, API_BASE);
    if (refusal) {
      deps.metrics.guardRefusals.inc({ reason: refusal.reason });
      refuse(res, req, path, refusal);
      return true;
    }
    const calls = batchedProcedures(url, API_BASE)?.length ?? 1;
    if (inFlight + calls > limit) {
      // Local overload: answered at once, before any pool is asked, and not a
      // failure of a dependency (no breaker counts it).
      shed.inc();
      refuse(res, req, path, {
        status: 503,
        appCode: "UNAVAILABLE",
        message: `this instance is working on ${inFlight} calls, its limit; retry shortly`,
        retryAfterMs: 1000,
      });
      return true;
    }
    inFlight += calls;
    res.once("close", () => {
      inFlight -= calls;
    });
    trpc(req, res);
    return true;
  };

  return { handle, inFlight: () => inFlight };
}
