import { inject } from "vitest";

// What src/test/global-setup.ts hands to the integration test workers.
declare module "vitest" {
  export interface ProvidedContext {
    testDatabaseUrl: string;
    testOwnerDatabaseUrl: string;
    testRedisPrefix: string;
    testAdminDatabaseUrl: string;
    /** `host:port,…` of the run's Redis Cluster (REDIS_CLUSTER=1), else "". */
    testRedisClusterNodes: string;
  }
}

function provided<K extends "testDatabaseUrl" | "testOwnerDatabaseUrl" | "testRedisPrefix" | "testAdminDatabaseUrl">(key: K): string {
  const value = inject(key);
  if (!value) {
    throw new Error(`${key} was not provided: run this file in the "integration" vitest project (*.int.test.ts)`);
  }
  return value;
}

/** URL of the throw-away, fully migrated database of this integration run, as the service's (app) role. */
export function testDatabaseUrl(): string {
  return provided("testDatabaseUrl");
}

/** The same database as its owner role (what migrations run as). */
export function testOwnerDatabaseUrl(): string {
  return provided("testOwnerDatabaseUrl");
}

/** Redis key prefix (`fp:test:<hex>:`) of this run; its keys are deleted at teardown. */
export function testRedisPrefix(): string {
  return provided("testRedisPrefix");
}

/** The server's `postgres` database as a role that may create databases and roles (for a test's own database). */
export function testAdminDatabaseUrl(): string {
  return provided("testAdminDatabaseUrl");
}

/**
 * The seeds of the Redis Cluster this run uses (`REDIS_CLUSTER=1`, started by
 * the global setup), or undefined when the run uses one Redis server.
 */
export function testRedisClusterNodes(): string | undefined {
  return inject("testRedisClusterNodes") || undefined;
}
