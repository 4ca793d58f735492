/**
 * The one HTTP entry. /api/trpc goes through the request guard straight to
 * tRPC's node adapter (no Next.js on the API path: measured 708 vs 307 calls/s
 * against an app-router route with a proxy); every other path goes to Next.
 * With API_ONLY=1 Next is never loaded, which keeps promises fast on Node 20.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import { Server as NetServer, type AddressInfo } from "node:net";
import { loadEnvOrExit } from "~/server/infra/env";
import { createDeps, closeDeps, type Deps } from "~/server/infra/deps";
import { waitForRedis } from "~/server/infra/redis";
import { waitForLockNodes } from "~/server/resilience/lock";
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
   * Graceful stop: /api/health and /api/ready answer 503 `draining` at once, and for
   * `graceMs` new connections are still served (a balancer needs a moment to
   * notice), each closing after its answer; then no new connection is taken,
   * the requests in flight finish, and after `timeoutMs` whatever is left is
   * cut. Resolves with how many requests had to be cut.
   */
  drain: (opts: { graceMs: number; timeoutMs: number }) => Promise<{ cut: number }>;
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
  // Requests being answered, and when the last one came: a drain waits for both to settle.
  let active = 0;
  let lastRequestAt = 0;
  const server = createServer((req, res) => {
    active++;
    lastRequestAt = Date.now();
    res.once("close", () => active--);
    if (api.handle(req, res)) return;
    const { secure } = clientInfo(req, deps.env.TRUST_PROXY);
    setPageSecurityHeaders(req, res, { secure, dev: opts.dev ?? false });
    if (state.draining) res.setHeader("connection", "close");
    if (!next) {
      res.writeHead(404, { "content-type": "application/json" });
      res.end(JSON.stringify({ error: "not found (API_ONLY=1: only /api/trpc, /api/health, /api/ready and /api/metrics)" }));
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

  return {
    server,
    url: `http://${host}:${addr.port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
    drain: async ({ graceMs, timeoutMs }) => {
      // From now on every answer closes its connection (`connection: close`),
      // so keep-alive clients reconnect elsewhere without being cut mid-request.
      state.draining = true;
      const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
      await sleep(graceMs);
      // Stop listening, but unlike http's own close() leave the open
      // connections alone: one just accepted may hold a request not yet read.
      const closed = new Promise<void>((resolve) => netClose.call(server, () => resolve()));
      const deadline = Date.now() + timeoutMs;
      // Settled: nothing being answered, and no request for a moment.
      while (Date.now() < deadline && (active > 0 || Date.now() - lastRequestAt < QUIET_MS)) await sleep(25);
      const cut = active;
      // What is left is idle keep-alive connections (or, past the deadline, requests still running).
      server.closeAllConnections();
      await closed;
      return { cut };
    },
  };
}

/** `net.Server#close`: stops listening without closing connections (http's own close() also drops idle ones). */
const netClose = NetServer.prototype.close;
/** A drain ends once no request has arrived for this long (and none is being answered). */
const QUIET_MS = 200;

/** How long a stopping instance still takes new connections (answering 503 on health) before it stops listening. */
export const DRAIN_GRACE_MS = 1_000;

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
  await waitForLockNodes(deps);
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
    const { cut } = await running.drain({ graceMs: DRAIN_GRACE_MS, timeoutMs });
    if (cut > 0) deps.log.warn({ cut }, "requests still running after the drain timeout were cut");
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
