import { timingSafeEqual } from "node:crypto";
import type { IncomingMessage, ServerResponse } from "node:http";
import type { Deps } from "~/server/infra/deps";
import { pingRedis } from "~/server/infra/redis";
import { refreshAdmissionGauges } from "~/server/resilience/gauges";
import { refreshRefundGauges } from "~/server/refund/refund-metrics";

async function probe(fn: () => Promise<unknown>, timeoutMs: number): Promise<"up" | "down"> {
  let timer: NodeJS.Timeout | undefined;
  try {
    await Promise.race([
      fn(),
      new Promise((_, reject) => {
        timer = setTimeout(() => reject(new Error("timeout")), timeoutMs);
      }),
    ]);
    return "up";
  } catch {
    return "down";
  } finally {
    clearTimeout(timer);
  }
}

export type Health = { status: number; body: Record<string, string> };

/** How long one probe of PostgreSQL and Redis answers every health check. */
export const HEALTH_CACHE_MS = 1_000;

/**
 * GET /api/health: 200 when PostgreSQL and Redis answer, 503 naming what is
 * down, 503 `draining` while the process shuts down (so a balancer stops
 * sending). However often a balancer asks, the dependencies are probed at
 * most once a second: concurrent checks share one probe.
 */
export function createHealth(deps: Deps, state: { draining: boolean }): () => Promise<Health> {
  let cached: { at: number; value: Promise<Health> } | undefined;
  const check = async (): Promise<Health> => {
    const [postgres, redis, replica] = await Promise.all([
      probe(() => deps.db.$queryRaw`SELECT 1`, 1500),
      probe(() => pingRedis(deps.redis), 1000),
      deps.reads.check(),
    ]);
    const ok = postgres === "up" && redis === "up";
    // A replica that is behind or gone costs nothing but where reads run: it
    // is reported, never a reason to take this instance out of the balancer.
    const body: Record<string, string> = { status: ok ? "ok" : "degraded", postgres, redis };
    if (replica.configured) body.replica = replica.serving ? "up" : replica.lastError ? "down" : "lagging";
    return { status: ok ? 200 : 503, body };
  };
  return async () => {
    if (state.draining) return { status: 503, body: { status: "draining" } };
    const now = Date.now();
    if (!cached || now - cached.at >= HEALTH_CACHE_MS) cached = { at: now, value: check() };
    return cached.value;
  };
}

/**
 * GET /api/ready, for load balancers: 200 while this instance takes traffic,
 * 503 `draining` while it shuts down. PostgreSQL and Redis are shared by every
 * instance, so their outage is no reason to pick another one: it would empty
 * the pool at once, where each instance would still answer — degraded, or with
 * a typed retryable error. `/api/health` says how the dependencies are.
 */
export function readiness(state: { draining: boolean }): Health {
  return state.draining ? { status: 503, body: { status: "draining" } } : { status: 200, body: { status: "ready" } };
}

export async function writeHealth(health: () => Promise<Health>, res: ServerResponse): Promise<void> {
  const { status, body } = await health();
  const headers: Record<string, string> = { "content-type": "application/json", "cache-control": "no-store" };
  if (status === 503) headers["retry-after"] = "1";
  res.writeHead(status, headers);
  res.end(JSON.stringify(body));
}

/** With METRICS_TOKEN set, the scrape must carry `Authorization: Bearer <it>`. */
function metricsAllowed(deps: Deps, req: IncomingMessage): boolean {
  const token = deps.env.METRICS_TOKEN;
  if (!token) return true;
  const sent = /^Bearer\s+(\S+)$/i.exec(req.headers.authorization ?? "")?.[1] ?? "";
  const a = Buffer.from(sent);
  const b = Buffer.from(token);
  return a.length === b.length && timingSafeEqual(a, b);
}

export async function writeMetrics(deps: Deps, req: IncomingMessage, res: ServerResponse): Promise<void> {
  if (!metricsAllowed(deps, req)) {
    res.writeHead(401, { "content-type": "text/plain", "cache-control": "no-store", "www-authenticate": "Bearer" });
    res.end("metrics need Authorization: Bearer <METRICS_TOKEN>\n");
    return;
  }
  await Promise.all([refreshAdmissionGauges(deps), refreshRefundGauges(deps)]);
  const text = await deps.metrics.registry.metrics();
  res.writeHead(200, { "content-type": deps.metrics.registry.contentType, "cache-control": "no-store" });
  res.end(text);
}
