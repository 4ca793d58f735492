import type { TestProject } from "vitest/node";
import type {} from "./env"; // ProvidedContext keys (type-only: `vitest` itself must not load here)
import { createThrowaway, disposeThrowaway, planThrowaway, randomRunId } from "./throwaway";
import { startRedisCluster, type RedisCluster } from "./redis-cluster";

// Global setup of the vitest "integration" project: one migrated database and
// one Redis key prefix for the whole run, removed again at teardown. With
// REDIS_CLUSTER=1, or in the "integration-cluster" project (`npm run
// test:int:cluster`), the run's Redis is a Redis Cluster of three masters
// started here, and every test's deps use it.
export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  let cluster: RedisCluster | undefined;
  if (process.env.REDIS_CLUSTER === "1" || project.name === "integration-cluster") {
    cluster = await startRedisCluster();
    process.env.REDIS_CLUSTER_NODES = cluster.nodes.join(",");
  }
  project.provide("testRedisClusterNodes", cluster ? cluster.nodes.join(",") : "");
  const run = planThrowaway("test", randomRunId());
  try {
    await createThrowaway(run);
  } catch (e) {
    await cluster?.stop();
    throw e;
  }

  project.provide("testDatabaseUrl", run.databaseUrl);
  project.provide("testOwnerDatabaseUrl", run.ownerUrl);
  project.provide("testRedisPrefix", run.redisPrefix);
  project.provide("testAdminDatabaseUrl", run.adminUrl);
  // Also point the app's own env at them, so a module that reads DATABASE_URL or
  // REDIS_KEY_PREFIX at import can never touch development data.
  process.env.DATABASE_URL = run.databaseUrl;
  process.env.REDIS_URL = run.redisUrl;
  process.env.REDIS_KEY_PREFIX = run.redisPrefix;

  return async () => {
    try {
      await disposeThrowaway(run);
    } finally {
      await cluster?.stop();
    }
  };
}
