import { spawnSync } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { Cluster, Redis } from "ioredis";
import { deleteByPrefix, parseNode, type RedisClient } from "../server/infra/redis";
import pg from "pg";
import { dropRoles, grantAppRole, provisionDatabase, urlAs, type DatabasePlan } from "../../prisma/roles";

// A throw-away database + Redis key prefix per test run (vitest integration,
// Playwright e2e, benchmarks), so runs can share the machine's services with a dev server or
// another run, and leave nothing behind.

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
const DEFAULT_ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/postgres";
const DEFAULT_REDIS_URL = "redis://127.0.0.1:6379";

export interface Throwaway {
  dbName: string;
  /** URL of the throw-away database as its app role: what the service connects as. */
  databaseUrl: string;
  /** The same database as its owner role: what migrations run as. */
  ownerUrl: string;
  /** The `postgres` database on the same server, for CREATE/DROP DATABASE and roles. */
  adminUrl: string;
  /** The run's own owner and app roles (dropped with the database). */
  roles: Pick<DatabasePlan, "owner" | "app">;
  redisUrl: string;
  /** `host:port` seeds when the run uses a Redis Cluster (REDIS_CLUSTER_NODES); `redisUrl` is then unused. */
  redisClusterNodes: string[] | undefined;
  /** `fp:<kind>:<runId>:` — every key the run writes starts with it. */
  redisPrefix: string;
}

export function randomRunId(): string {
  return randomBytes(6).toString("hex");
}

/**
 * Names only, no I/O: the same run id always gives the same resources. The
 * server is DATABASE_ADMIN_URL's (else DATABASE_URL's), as a role that may
 * create databases and roles.
 */
export function planThrowaway(kind: "test" | "e2e" | "bench", runId: string, env = process.env): Throwaway {
  if (!/^[0-9a-z]+$/.test(runId)) throw new Error(`invalid run id ${JSON.stringify(runId)}`);
  const admin = new URL(env.DATABASE_ADMIN_URL ?? env.DATABASE_URL ?? DEFAULT_ADMIN_URL);
  admin.pathname = "/postgres";
  admin.search = "";
  const dbName = `fp_${kind}_${runId}`;
  // Passwords derived from the run id: any process of the run can rebuild the URLs.
  const secret = (role: string) => createHash("sha256").update(`${dbName}:${role}:${env.FP_THROWAWAY_SECRET ?? "flashpoints"}`).digest("hex");
  const roles = {
    owner: { name: `${dbName}_owner`, password: secret("owner") },
    app: { name: `${dbName}_app`, password: secret("app") },
  };
  return {
    dbName,
    databaseUrl: urlAs(admin.toString(), roles.app, dbName),
    ownerUrl: urlAs(admin.toString(), roles.owner, dbName),
    adminUrl: admin.toString(),
    roles,
    redisUrl: env.REDIS_URL ?? DEFAULT_REDIS_URL,
    redisClusterNodes: env.REDIS_CLUSTER_NODES ? env.REDIS_CLUSTER_NODES.split(",").map((s) => s.trim()).filter(Boolean) : undefined,
    redisPrefix: `fp:${kind}:${runId}:`,
  };
}

async function withAdmin<T>(t: Throwaway, run: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: t.adminUrl, connectionTimeoutMillis: 5000 });
  try {
    await client.connect();
  } catch (error) {
    throw new Error(`PostgreSQL at ${t.adminUrl.replace(/\/\/[^@]*@/, "//")} does not answer: ${String(error)}`);
  }
  try {
    return await run(client);
  } finally {
    await client.end();
  }
}

async function deleteKeys(t: Throwaway): Promise<void> {
  // No reconnect loop: a Redis that is down must fail here with its real error.
  const where = t.redisClusterNodes ? `the Redis Cluster at ${t.redisClusterNodes.join(",")}` : `Redis at ${t.redisUrl}`;
  const redis: RedisClient = t.redisClusterNodes
    ? new Cluster(t.redisClusterNodes.map(parseNode), {
        lazyConnect: true,
        clusterRetryStrategy: () => null,
        redisOptions: { connectTimeout: 3000, maxRetriesPerRequest: 0 },
      })
    : new Redis(t.redisUrl, { lazyConnect: true, connectTimeout: 3000, maxRetriesPerRequest: 0, retryStrategy: () => null });
  let connectError: unknown;
  redis.on("error", (error: unknown) => (connectError ??= error));
  try {
    await redis.connect().catch((error: unknown) => {
      throw new Error(`${where} does not answer: ${String(connectError ?? error)}`);
    });
    await deleteByPrefix(redis, t.redisPrefix);
  } finally {
    redis.disconnect();
  }
}

/** Drops the database (WITH FORCE) and its roles, and deletes the prefix's keys; all are tried. */
export async function disposeThrowaway(t: Throwaway): Promise<void> {
  const results = await Promise.allSettled([
    withAdmin(t, (client) => client.query(`DROP DATABASE IF EXISTS "${t.dbName}" WITH (FORCE)`)).then(() => dropRoles(t.adminUrl, t.roles)),
    deleteKeys(t),
  ]);
  const failures = results.flatMap((r) => (r.status === "rejected" ? [String(r.reason)] : []));
  if (failures.length > 0) throw new Error(`clean-up of ${t.dbName} / ${t.redisPrefix} failed: ${failures.join("; ")}`);
}

/**
 * Checks Redis answers, creates the roles and the database, applies every
 * migration as the owner, and grants the app role its rights: the service
 * under test connects as a role as limited as in production.
 */
export async function createThrowaway(t: Throwaway): Promise<void> {
  await deleteKeys(t); // nothing to delete yet: proves Redis answers before we create anything
  await withAdmin(t, async () => undefined); // a clear message when PostgreSQL does not answer
  await provisionDatabase(t.adminUrl, { dbName: t.dbName, ...t.roles });
  const migrate = spawnSync(path.join(ROOT, "node_modules", ".bin", "prisma"), ["migrate", "deploy"], {
    cwd: ROOT,
    env: { ...process.env, DATABASE_URL: t.ownerUrl, MIGRATE_DATABASE_URL: t.ownerUrl },
    encoding: "utf8",
  });
  if (migrate.status !== 0) {
    await disposeThrowaway(t);
    throw new Error(
      `prisma migrate deploy failed on ${t.dbName} (exit ${migrate.status}):\n` +
        `${migrate.stdout}${migrate.stderr}${migrate.error ?? ""}`,
    );
  }
  await grantAppRole(t.ownerUrl, t.roles);
}
