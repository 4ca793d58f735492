import type { Env } from "./env";
import { getEnv } from "./env";
import { createDb, type Db } from "./db";
import { closeRedis, createRedis, type RedisClient } from "./redis";
import { systemClock, type Clock } from "./clock";
import { createLogger, type Logger } from "./logger";
import { Failpoints } from "./failpoints";
import { getMetrics, type Metrics } from "./metrics";
import { LiveSettings } from "./live-settings";
import { primaryOnly, replicaRouter, type ReadRouter } from "./replica";

/**
 * Everything a domain function may need, passed explicitly. The HTTP server,
 * the worker, the CLI and the tests each build one.
 */
export type Deps = {
  env: Env;
  /** The primary: every write, and every read that decides something. */
  db: Db;
  /** Reads that tolerate lag (history, lists): the replica while it is fresh enough, else the primary. */
  reads: ReadRouter;
  /** One Redis server or a Redis Cluster (REDIS_CLUSTER_NODES). */
  redis: RedisClient;
  /**
   * Independent Redis servers the account locks use with Redlock
   * (REDLOCK_NODES); empty: the locks live on `redis`.
   */
  lockNodes: readonly RedisClient[];
  clock: Clock;
  log: Logger;
  failpoints: Failpoints;
  metrics: Metrics;
  /** This instance's cache of the live settings (kept current by the settings sync). */
  settings: LiveSettings;
};

export function createDeps(env: Env, overrides: Partial<Omit<Deps, "env">> = {}, name = "flashpoints"): Deps {
  const log = overrides.log ?? createLogger(env.LOG_LEVEL, name);
  const db =
    overrides.db ??
    createDb({
      url: env.DATABASE_URL,
      poolMax: env.DB_POOL_MAX,
      poolWaitMs: env.DB_POOL_WAIT_MS,
      statementTimeoutMs: env.DB_STATEMENT_TIMEOUT_MS,
      txTimeoutMs: env.DB_TX_TIMEOUT_MS,
      applicationName: name,
      pooler: env.DB_POOLER,
    });
  const reads =
    overrides.reads ??
    (env.DATABASE_REPLICA_URL
      ? replicaRouter({
          primary: db,
          replica: createDb({
            url: env.DATABASE_REPLICA_URL,
            poolMax: env.DB_POOL_MAX,
            poolWaitMs: env.DB_POOL_WAIT_MS,
            statementTimeoutMs: env.DB_STATEMENT_TIMEOUT_MS,
            txTimeoutMs: env.DB_TX_TIMEOUT_MS,
            applicationName: `${name}-replica-reads`,
          }),
          maxLagMs: env.REPLICA_MAX_LAG_MS,
        })
      : primaryOnly(db));
  const redisOptions = { keyPrefix: env.REDIS_KEY_PREFIX, commandTimeoutMs: env.REDIS_COMMAND_TIMEOUT_MS };
  return {
    env,
    log,
    clock: overrides.clock ?? systemClock,
    db,
    reads,
    redis:
      overrides.redis ??
      createRedis({ ...redisOptions, url: env.REDIS_URL, clusterNodes: env.REDIS_CLUSTER_NODES, name }),
    lockNodes: overrides.lockNodes ?? (env.REDLOCK_NODES ?? []).map((url) => createRedis({ ...redisOptions, url, name: `${name}-lock` })),
    failpoints:
      overrides.failpoints ?? new Failpoints(env.FAILPOINTS, env.NODE_ENV === "test" || env.FAILPOINTS_ENABLED),
    metrics: overrides.metrics ?? getMetrics(),
    settings: overrides.settings ?? new LiveSettings({ db, log }),
  };
}

const store = globalThis as unknown as { __fpDeps?: Deps };

/** The process-wide dependencies (one pool, one Redis client per process). */
export function getDeps(): Deps {
  store.__fpDeps ??= createDeps(getEnv());
  return store.__fpDeps;
}

export async function closeDeps(deps: Deps): Promise<void> {
  await Promise.allSettled([deps.reads.close(), deps.db.$disconnect(), closeRedis(deps.redis), ...deps.lockNodes.map(closeRedis)]);
}
