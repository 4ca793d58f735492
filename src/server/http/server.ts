/**
 * The one HTTP entry. /api/trpc goes through the request guard straight to
 * tRPC's node adapter (no Next.js on the API path: measured 708 vs 307 calls/s
 * against an app-router route with a proxy); every other path goes to Next.
 * With API_ONLY=1 Next is never loaded, which keeps promises fast on Node 20.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { loadEnvOrExit } from "~/server/infra/env";
import { createDeps, closeDeps, type Deps } from "~/server/infra/deps";
import { waitForRedis } from "~/server/infra/redis";
import { startSettingsSync } from "~/server/infra/settings-sync";
import { listCircuits } from "~/server/resilience/circuit-breaker";
import { createApiHandler, type ServerState } from "./api-handler";
import { clientInfo, SECURE_REQUEST_HEADER } from "./client-info";
import { setPageSecurityHeaders } from "./security-headers";

export type StartOptions = {
  deps: Deps;
  port: number;
  host?: string;
  apiOnly: boolean;
  dev?: boolean;
};

export type RunningServer = {
  server: Server;
  url: string;
  /** Stops at once, cutting open connections (tests). */
  close: () => Promise<void>;
  /**
   * Graceful stop: /api/health answers 503 `draining`, no new connections are
   * taken, the requests in flight finish (each connection closes after its
   * answer), and after `timeoutMs` whatever is left is cut. Resolves with how
   * many connections had to be cut.
   */
  drain: (timeoutMs: number) => Promise<{ cut: number }>;
};

export async function startServer(opts: StartOptions): Promise<RunningServer> {
  const { deps } = opts;
  const state: ServerState = { draining: false };
  const api = createApiHandler(deps, state);
  let next: ((req: IncomingMessage, res: ServerResponse) => Promise<void>) | null = null;
  if (!opts.apiOnly) {
    const { default: createNext } = await import("next");
    const app = createNext({ dev: opts.dev ?? false, dir: process.cwd(), hostname: opts.host, port: opts.port });
    await app.prepare();
    next = app.getRequestHandler();
  }
  const server = createServer((req, res) => {
    if (api.handle(req, res)) return;
    const { secure } = clientInfo(req, deps.env.TRUST_PROXY);
    setPageSecurityHeaders(req, res, { secure, dev: opts.dev ?? false });
    if (state.draining) res.setHeader("connection", "close");
    if (!next) {
      res.writeHead(404, { "content-type": "application/json" });
      res.end(JSON.stringify({ error: "not found (API_ONLY=1: only /api/trpc, /api/health and /api/metrics)" }));
      return;
    }
    // Server components decide the session cookie's name by the scheme.
    req.headers[SECURE_REQUEST_HEADER] = secure ? "1" : "0";
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

  const connections = new Set<import("node:net").Socket>();
  server.on("connection", (socket) => {
    connections.add(socket);
    socket.once("close", () => connections.delete(socket));
  });

  return {
    server,
    url: `http://${host}:${addr.port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
    drain: async (timeoutMs) => {
      state.draining = true;
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeIdleConnections();
      // A keep-alive connection that goes idle later closes then.
      const sweep = setInterval(() => server.closeIdleConnections(), 100);
      let timer: NodeJS.Timeout | undefined;
      const timedOut = new Promise<"timeout">((resolve) => (timer = setTimeout(() => resolve("timeout"), timeoutMs)));
      const outcome = await Promise.race([closed.then(() => "closed" as const), timedOut]);
      clearInterval(sweep);
      clearTimeout(timer);
      const cut = outcome === "timeout" ? connections.size : 0;
      if (cut > 0) {
        server.closeAllConnections();
        await closed;
      }
      return { cut };
    },
  };
}

/**
 * How long a shutdown waits for the requests in flight: the longest one can
 * take (a lock wait, a pool wait, a transaction), with a margin.
 */
export function drainTimeoutMs(env: Deps["env"]): number {
  return env.LOCK_WAIT_MS + env.DB_POOL_WAIT_MS + env.DB_TX_TIMEOUT_MS + 2_000;
}

async function main(): Promise<void> {
  const env = loadEnvOrExit();
  const deps = createDeps(env, {}, "flashpoints-web");
  (globalThis as { __fpDeps?: Deps }).__fpDeps = deps;
  if (!(await waitForRedis(deps.redis, 3000))) {
    deps.log.warn("redis is not answering; starting anyway (degraded paths apply until it does)");
  }
  // Live limits, circuit settings and switches, pushed to this instance within
  // a second. Each tick also looks at every breaker, so time-based transitions
  // (OPEN → HALF_OPEN → CLOSED) are logged and counted close to when they are due.
  const settingsSync = startSettingsSync(deps, { onTick: () => listCircuits(deps) });
  const running = await startServer({
    deps,
    port: env.PORT,
    host: env.HOST,
    apiOnly: env.API_ONLY,
    dev: env.NODE_ENV === "development",
  });
  deps.log.info({ url: running.url, apiOnly: env.API_ONLY, mode: env.NODE_ENV }, "flashpoints listening");
  let stopping = false;
  const shutdown = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    const timeoutMs = drainTimeoutMs(env);
    deps.log.info({ signal, timeoutMs }, "draining: finishing the requests in flight");
    const { cut } = await running.drain(timeoutMs);
    if (cut > 0) deps.log.warn({ cut }, "connections still busy after the drain timeout were cut");
    await settingsSync.stop();
    await closeDeps(deps);
    deps.log.info("stopped");
    process.exit(0);
  };
  process.once("SIGINT", () => void shutdown("SIGINT"));
  process.once("SIGTERM", () => void shutdown("SIGTERM"));
}

const entry = process.argv[1] ?? "";
if (/(^|[\\/])(server\.(ts|js|mjs))$/.test(entry)) {
  void main();
}
