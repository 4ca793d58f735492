import { testAdminDatabaseUrl, testRedisClusterNodes } from "./env";
import { createThrowaway, disposeThrowaway, planThrowaway, randomRunId, type Throwaway } from "./throwaway";

/**
 * A migrated database and Redis key prefix of one test file's own, for tests
 * whose subject works on a whole table (the refund queue takes every due
 * refund it finds): nothing of the other files is in it. About 2 s to make;
 * `dispose` drops it.
 */
export async function createOwnDatabase(): Promise<Throwaway & { dispose: () => Promise<void> }> {
  const t = planThrowaway("test", randomRunId(), {
    ...process.env,
    DATABASE_ADMIN_URL: testAdminDatabaseUrl(),
    REDIS_CLUSTER_NODES: testRedisClusterNodes(),
  });
  await createThrowaway(t);
  return { ...t, dispose: () => disposeThrowaway(t) };
}
