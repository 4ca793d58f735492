import type { TestProject } from "vitest/node";
import type {} from "./env"; // ProvidedContext keys (type-only: `vitest` itself must not load here)
import { createThrowaway, disposeThrowaway, planThrowaway, randomRunId } from "./throwaway";

// Global setup of the vitest "integration" project: one migrated database and
// one Redis key prefix for the whole run, removed again at teardown.
export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const run = planThrowaway("test", randomRunId());
  await createThrowaway(run);

  project.provide("testDatabaseUrl", run.databaseUrl);
  project.provide("testOwnerDatabaseUrl", run.ownerUrl);
  project.provide("testRedisPrefix", run.redisPrefix);
  project.provide("testAdminDatabaseUrl", run.adminUrl);
  // Also point the app's own env at them, so a module that reads DATABASE_URL or
  // REDIS_KEY_PREFIX at import can never touch development data.
  process.env.DATABASE_URL = run.databaseUrl;
  process.env.REDIS_URL = run.redisUrl;
  process.env.REDIS_KEY_PREFIX = run.redisPrefix;

  return () => disposeThrowaway(run);
}
