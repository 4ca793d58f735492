/**
 * The one HTTP entry. /api/trpc goes through the request guard straight to
 * tRPC's node adapter (no Next.js on the API path: measured 708 vs 307 calls/s
 * against an app-router route with a proxy); every other path goes to Next.
 * With API_ONLY=1 Next is never loaded, which keeps promises fast on Node 20.
 */
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { loadEnvOrExit } from "~/server/infra/env";
import { createDeps, closeDeps, type Deps } from "~/server/infra/deps";
import { waitForRedis } from "~/server/infra/redis";
import { startSettingsSync } from "~/server/infra/settings-sync";
import { listCircuits } from "~/server/resilience/circuit-breaker";
import { createApiHandler } from "./api-handler";

export type StartOptions = {
  deps: Deps;
  port: number;
  host?: string;
  apiOnly: boolean;
  dev?: boolean;
};

export type RunningServer = { server: Server; url: string; close: () => Promise<void> };

export async function startServer(opts: StartOptions): Promise<RunningServer> {
  const { deps } = opts;
  const api = createApiHandler(deps);
  let next: ((req: import("node:http").IncomingMessage, res: import("node:http").ServerResponse) => Promise<void>) | null =
    null;
  if (!opts.apiOnly) {
    const { default: createNext } = await import("next");
    const app = createNext({ dev: opts.dev ?? false, dir: process.cwd(), hostname: opts.host, port: opts.port });
    await app.prepare();
    next = app.getRequestHandler();
  }
  const server = createServer((req, res) => {
    if (api(req, res)) return;
    if (!next) {
      res.writeHead(404, { "content-type": "application/json" });
      res.end(JSON.stringify({ error: "not found (API_ONLY=1: only /api/trpc, /api/health and /api/metrics)" }));
      return;
    }
    next(req, res).catch((err: unknown) => {
      deps.log.error({ err, url: req.url }, "page handler failed");
      if (!res.headersSent) res.writeHead(500);
      res.end();
    });
  });
  server.keepAliveTimeout = 65_000;
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(opts.port, opts.host, () => resolve());
  });
  const addr = server.address() as AddressInfo;
  const host = addr.family === "IPv6" ? `[${addr.address === "::" ? "::1" : addr.address}]` : addr.address === "0.0.0.0" ? "127.0.0.1" : addr.address;
  return {
    server,
    url: `http://${host}:${addr.port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

async function main(): Promise<void> {
  const env = loadEnvOrExit();
  const deps = createDeps(env, {}, "flashpoints-web");
  (globalThis as { __fpDeps?: Deps }).__fpDeps = deps;
  if (!(await waitForRedis(deps.redis, 3000))) {
    deps.log.warn("redis is not answering; starting anyway (degraded paths apply until it does)");
  }
  // Live limits, circuit settings and switches, pushed to this instance within a second.
  // Each tick also looks at every breaker, so time-based transitions (OPEN →
  // HALF_OPEN → CLOSED) are logged and counted close to when they are due.
  const settingsSync = startSettingsSync(deps, { onTick: () => listCircuits(deps) });
  const running = await startServer({
    deps,
    port: env.PORT,
    host: env.HOST,
    apiOnly: env.API_ONLY,
    dev: env.NODE_ENV === "development",
  });
  deps.log.info({ url: running.url, apiOnly: env.API_ONLY, mode: env.NODE_ENV }, "flashpoints listening");
  const shutdown = async (signal: string) => {
    deps.log.info({ signal }, "shutting down");
    await running.close();
    await settingsSync.stop();
    await closeDeps(deps);
    process.exit(0);
  };
  process.once("SIGINT", () => void shutdown("SIGINT"));
  process.once("SIGTERM", () => void shutdown("SIGTERM"));
}

const entry = process.argv[1] ?? "";
if (/(^|[\\/])(server\.(ts|js|mjs))$/.test(entry)) {
  void main();
}
