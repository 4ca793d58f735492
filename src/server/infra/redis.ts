import { Redis } from "ioredis";
import { AppError } from "./app-error";
import { defineLuaCommands } from "./lua";

export type { Redis };

export type RedisOptions = {
  url: string;
  /** Prepended to every key by ioredis (Lua KEYS included); not to pub/sub channels. */
  keyPrefix: string;
  commandTimeoutMs: number;
};

/**
 * A Redis client that fails fast: a command gets one try, a bounded time, and
 * is refused at once while the connection is down (no offline queue), so a
 * Redis outage turns into typed errors or the degraded path, never a hang.
 */
export function createRedis(opts: RedisOptions & { name?: string }): Redis {
  const client = new Redis(opts.url, {
    keyPrefix: opts.keyPrefix,
    connectionName: opts.name ?? "flashpoints",
    commandTimeout: opts.commandTimeoutMs,
    connectTimeout: Math.max(1000, opts.commandTimeoutMs * 2),
    maxRetriesPerRequest: 1,
    enableOfflineQueue: false,
    enableReadyCheck: true,
    retryStrategy: (times) => Math.min(100 * times, 1000),
    reconnectOnError: () => false,
    // Commands issued in the same tick (the calls of one request, of a batch)
    // leave in one write.
    enableAutoPipelining: true,
  });
  defineLuaCommands(client);
  // Errors surface on the commands that hit them; the event would otherwise
  // crash the process as an unhandled 'error'.
  client.on("error", () => {});
  return client;
}

/** Resolves when the client is ready, or after `timeoutMs` (the caller decides whether that is fatal). */
export function waitForRedis(client: Redis, timeoutMs: number): Promise<boolean> {
  if (client.status === "ready") return Promise.resolve(true);
  return new Promise((resolve) => {
    const done = (ok: boolean) => {
      clearTimeout(timer);
      client.off("ready", onReady);
      resolve(ok);
    };
    const onReady = () => done(true);
    const timer = setTimeout(() => done(false), timeoutMs);
    client.once("ready", onReady);
  });
}

export function isRedisUnavailable(e: unknown): boolean {
  if (!(e instanceof Error)) return false;
  return /Command timed out|Stream isn't writeable|Connection is closed|ECONNREFUSED|ECONNRESET|ETIMEDOUT|Reached the max retries|EPIPE|LOADING|CLUSTERDOWN|MASTERDOWN/i.test(
    e.message,
  );
}

export function redisUnavailable(cause: unknown): AppError {
  return new AppError("UNAVAILABLE", "the cache is unavailable; retry shortly", { retryAfterMs: 500, cause });
}
