import { createTestDeps, closeDeps } from "~/test/deps";
import { ensureCreditType, makeApiKey, startApi } from "~/test/api";
import { createOwnDatabase } from "~/test/own-database";
import type { Deps } from "~/server/infra/deps";
import { createDb, type Db } from "~/server/infra/db";
import type { Env } from "~/server/infra/env";
import type { RunningServer } from "~/server/http/server";
import { grantCredits } from "~/server/credit/grant";
import { NO_RATE_LIMIT, startOwnRedis, type OwnRedis } from "~/server/credit/testing";
import { setQuickBreakers } from "~/server/resilience/testing";
import { INSTANCE_NAMES, type Instance } from "./steps";

/**
 * What the simulation runs against: a database and a redis-server of its own
 * (so Redis can be killed and PostgreSQL backends terminated without touching
 * anyone else), and two API instances — separate pools, Redis clients and
 * balance engines, as two processes would have — sharing both.
 */

/** Settings of both instances. Short lock and transaction limits so faults bite within a step. */
const SIM_ENV = {
  ...NO_RATE_LIMIT,
  KEY_RATE_LIMIT_PER_SECOND: "1000000",
  KEY_RATE_LIMIT_BURST: "1000000",
  MAX_IN_FLIGHT: "5000",
  // A batch held up by a delay failpoint outlives its lock (and the engine's
  // own hold on the account): the next batch on that account, here or on the
  // other instance, is kept out by the versioned update alone.
  LOCK_TTL_MS: "500",
  LOCK_WAIT_MS: "1000",
  DB_POOL_MAX: "8",
  DB_POOL_WAIT_MS: "1000",
  DB_STATEMENT_TIMEOUT_MS: "3000",
  DB_TX_TIMEOUT_MS: "3000",
  // A stopped Redis costs a call no more than this.
  REDIS_COMMAND_TIMEOUT_MS: "200",
  FLASH_SALE_RESERVATION_TTL_MS: "4000",
  REFUND_MAX_ATTEMPTS: "3",
  REFUND_BACKOFF_BASE_MS: "20",
  REFUND_BACKOFF_MAX_MS: "200",
  REFUND_LEASE_MS: "4000",
} as const satisfies Partial<Record<keyof Env, string>>;

export type SimInstance = { name: string; deps: Deps; api: RunningServer; applicationName: string };
export type Sale = { activityId: string; itemIds: string[] };

export type World = {
  dbName: string;
  redis: OwnRedis;
  instances: [SimInstance, SimInstance];
  /** The checker's own connection (never terminated by a fault). */
  observer: Db;
  apiKey: string;
  creditTypeId: string;
  users: readonly string[];
  sales: Sale[];
  close: () => Promise<void>;
};

/** What each account starts with. */
export const OPENING_BALANCE = 200;

export async function createWorld(opts: { users: readonly string[]; runTag: string }): Promise<World> {
  const cleanups: (() => Promise<unknown>)[] = [];
  const close = async () => {
    // Newest first; every one is tried, whatever failed before it.
    const errors: unknown[] = [];
    for (const c of cleanups.reverse()) await c().catch((e: unknown) => errors.push(e));
    if (errors.length > 0) throw new AggregateError(errors, "simulation clean-up failed");
  };
  try {
    const own = await createOwnDatabase();
    cleanups.push(() => own.dispose());
    const redis = await startOwnRedis();
    cleanups.push(() => redis.kill("SIGKILL"));

    const instance = async (i: Instance): Promise<SimInstance> => {
      const applicationName = `sim-${opts.runTag}-${INSTANCE_NAMES[i].toLowerCase()}`;
      // Its own pool under its own application_name, so a fault can terminate this instance's backends only.
      const db = createDb({
        url: own.databaseUrl,
        poolMax: Number(SIM_ENV.DB_POOL_MAX),
        poolWaitMs: Number(SIM_ENV.DB_POOL_WAIT_MS),
        statementTimeoutMs: Number(SIM_ENV.DB_STATEMENT_TIMEOUT_MS),
        txTimeoutMs: Number(SIM_ENV.DB_TX_TIMEOUT_MS),
        applicationName,
      });
      const deps = await createTestDeps({ ...SIM_ENV, DATABASE_URL: own.databaseUrl, REDIS_URL: redis.url, REDIS_KEY_PREFIX: own.redisPrefix }, { db });
      cleanups.push(() => closeDeps(deps));
      const api = await startApi(deps);
      cleanups.push(() => api.close());
      return { name: INSTANCE_NAMES[i], deps, api, applicationName };
    };
    const instances: [SimInstance, SimInstance] = [await instance(0), await instance(1)];
    const observer = createDb({
      url: own.databaseUrl,
      poolMax: 2,
      poolWaitMs: 5000,
      statementTimeoutMs: 30_000,
      txTimeoutMs: 60_000,
      applicationName: `sim-${opts.runTag}-checker`,
    });
    cleanups.push(() => observer.$disconnect());

    const a = instances[0].deps;
    const creditTypeId = await ensureCreditType(a, "points");
    const apiKey = await makeApiKey(a);
    await setQuickBreakers(a, "simulation");
    for (const userId of opts.users) {
      await grantCredits(a, { userId, creditTypeId, amount: OPENING_BALANCE, businessCode: "sim.open", businessId: userId }, { principal: null, requestId: null });
    }
    return { dbName: own.dbName, redis, instances, observer, apiKey, creditTypeId, users: opts.users, sales: [], close };
  } catch (e) {
    await close().catch(() => undefined);
    throw e;
  }
}
