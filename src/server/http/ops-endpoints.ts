import type { ServerResponse } from "node:http";
import type { Deps } from "~/server/infra/deps";
import { refreshAdmissionGauges } from "~/server/resilience/gauges";

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

/** GET /api/health: 200 when Postgres and Redis answer, 503 naming what is down. */
export async function health(deps: Deps): Promise<{ status: number; body: Record<string, string> }> {
  const [postgres, redis] = await Promise.all([
    probe(() => deps.db.$queryRaw`SELECT 1`, 1500),
    probe(() => deps.redis.ping(), 1000),
  ]);
  const ok = postgres === "up" && redis === "up";
  return { status: ok ? 200 : 503, body: { status: ok ? "ok" : "degraded", postgres, redis } };
}

export async function writeHealth(deps: Deps, res: ServerResponse): Promise<void> {
  const { status, body } = await health(deps);
  res.writeHead(status, { "content-type": "application/json", "cache-control": "no-store" });
  res.end(JSON.stringify(body));
}

export async function writeMetrics(deps: Deps, res: ServerResponse): Promise<void> {
  await refreshAdmissionGauges(deps);
  const text = await deps.metrics.registry.metrics();
  res.writeHead(200, { "content-type": deps.metrics.registry.contentType, "cache-control": "no-store" });
  res.end(text);
}
