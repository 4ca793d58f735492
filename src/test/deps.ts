import { randomBytes } from "node:crypto";
import { loadEnv, type Env } from "~/server/infra/env";
import { createDeps, closeDeps, type Deps } from "~/server/infra/deps";
import { createLogger } from "~/server/infra/logger";
import { waitForRedis } from "~/server/infra/redis";
import { testDatabaseUrl, testRedisClusterNodes, testRedisPrefix } from "./env";

/**
 * Real dependencies for an integration test: the run's migrated database and
 * a Redis key prefix of the test's own (under the run's prefix, so teardown
 * removes it). Close them with `closeDeps` in afterAll. In a cluster run
 * (`npm run test:int:cluster`) the Redis is the run's Redis Cluster, unless
 * the test points REDIS_URL at a server of its own (the kill tests).
 */
export async function createTestDeps(
  envOverrides: Partial<Record<keyof Env, string>> = {},
  overrides: Partial<Omit<Deps, "env">> = {},
): Promise<Deps> {
  const env = loadEnv({
    NODE_ENV: "test",
    DATABASE_URL: testDatabaseUrl(),
    REDIS_URL: process.env.TEST_REDIS_URL ?? "redis://127.0.0.1:6379",
    REDIS_KEY_PREFIX: `${testRedisPrefix()}${randomBytes(3).toString("hex")}:`,
    LOG_LEVEL: process.env.TEST_LOG_LEVEL ?? "silent",
    DB_POOL_MAX: "20",
    ...(envOverrides.REDIS_URL === undefined ? { REDIS_CLUSTER_NODES: testRedisClusterNodes() } : {}),
    ...envOverrides,
  });
  const deps = createDeps(env, { log: createLogger(env.LOG_LEVEL, "test"), ...overrides }, "flashpoints-test");
  await waitForRedis(deps.redis, 3000);
  return deps;
}

export { closeDeps };

/** A unique id for test data (users, business keys) so tests never collide. */
export function uid(prefix = "t"): string {
  return `${prefix}-${randomBytes(6).toString("hex")}`;
}
