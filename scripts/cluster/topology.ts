import { spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { chmodSync, existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { grantAppRole, provisionDatabase, urlAs, type DatabasePlan } from "../../prisma/roles";
import { createPrimary, createReplica, pgServer, postgresBinDir, waitUntilAnswers, type PgServer } from "./postgres";
import { startPgBouncer } from "./pgbouncer";
import { startHaproxy } from "./haproxy";
import { httpOk, sparePort, startDetached, stopProcess, waitFor, type ProcessEntry } from "./processes";
import { startRedis, type RedisTopology } from "./redis";

/**
 * Several instances on one machine, from the production build: a balancer
 * (HAProxy) in front of two API-only instances and a dashboard instance, two
 * workers, PgBouncer in front of a PostgreSQL primary, a streaming replica of
 * it for lag-tolerant reads, and Redis (a Redis Cluster of 3 masters with a replica each by default).
 * Everything lives in one directory: `started.json` lists what has been
 * started so far (what `down` stops), `state.json` the finished topology.
 */

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
export const DEFAULT_CLUSTER_DIR = "/tmp/flashpoints-cluster";

export type ClusterOptions = {
  dir?: string;
  /** The balancer's port (default: a spare one). */
  port?: number;
  apiInstances?: number;
  workers?: number;
  /** `cluster` (default): 3 masters, a replica each; `single`: one redis-server. */
  redis?: "cluster" | "single";
  /** Settings for every service process (after the topology's own). */
  env?: Record<string, string>;
  /** Load the demo data (credit type, funded accounts, sales, API key, admin login). */
  seed?: boolean;
  log?: (line: string) => void;
};

export type ClusterState = {
  dir: string;
  /** The balancer: the one address clients use. */
  url: string;
  statsUrl: string;
  api: { name: string; url: string; pid: number }[];
  dashboard: { url: string; pid: number };
  workers: { name: string; pid: number; metricsUrl: string }[];
  processes: ProcessEntry[];
  postgres: { primary: { port: number; dataDir: string }; replica: { port: number; dataDir: string } };
  pgbouncerPort: number;
  redis: RedisTopology;
  /** The service's role through PgBouncer (transaction pool). */
  databaseUrl: string;
  /** The owner role through PgBouncer's session pool (migrations). */
  migrateUrl: string;
  /** The service's role on the replica, directly. */
  replicaUrl: string;
  /** Superuser on the primary, directly (for checks). */
  primaryAdminUrl: string;
  dbName: string;
  /** What every service process was started with. */
  env: Record<string, string>;
  seedOutput?: string;
};

export function stateFile(dir: string): string {
  return path.join(dir, "state.json");
}

type Started = { processes: ProcessEntry[]; primaryPort?: number; replicaPort?: number };

function startedFile(dir: string): string {
  return path.join(dir, "started.json");
}

function assertReady(): void {
  for (const file of ["dist/server.js", "dist/worker.js"]) {
    if (!existsSync(path.join(ROOT, file))) throw new Error(`${file} is missing: the topology runs the production build — run \`npm run build\` first`);
  }
  const missing = ["pgbouncer", "haproxy", "redis-server", "redis-cli"].filter((bin) => spawnSync("sh", ["-c", `command -v ${bin}`]).status !== 0);
  if (missing.length > 0) throw new Error(`missing: ${missing.join(", ")} — sudo apt-get install -y pgbouncer haproxy redis-server`);
  postgresBinDir();
}

export async function clusterUp(opts: ClusterOptions = {}): Promise<ClusterState> {
  const log = opts.log ?? (() => {});
  const dir = opts.dir ?? DEFAULT_CLUSTER_DIR;
  assertReady();
  if (existsSync(startedFile(dir))) throw new Error(`a topology is already running from ${dir}: \`npm run cluster:down\` first`);
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  chmodSync(dir, 0o777); // PostgreSQL and PgBouncer run as `postgres` when we are root
  const logs = path.join(dir, "logs");
  mkdirSync(logs);

  // What has been started so far, on disk at every step: `down` (or Ctrl-C
  // during `up`) stops exactly that, however far `up` got.
  const started: Started = { processes: [] };
  const record = () => writeFileSync(startedFile(dir), JSON.stringify(started, null, 2));
  const processes = {
    push: (...ps: ProcessEntry[]) => {
      started.processes.push(...ps);
      record();
    },
  };
  let primary: PgServer | undefined;
  let replica: PgServer | undefined;
  let redis: RedisTopology | undefined;
  record();
  try {
    log("PostgreSQL primary");
    started.primaryPort = await sparePort();
    record();
    primary = await createPrimary(dir, started.primaryPort);
    const dbName = "flashpoints";
    const secret = () => randomBytes(12).toString("hex");
    const plan: DatabasePlan = { dbName, owner: { name: "flashpoints_owner", password: secret() }, app: { name: "flashpoints_app", password: secret() } };
    await provisionDatabase(primary.adminUrl, plan);

    log("PgBouncer (transaction pool for the service, session pool for migrations)");
    const pgbouncerPort = await sparePort();
    const statementTimeoutMs = Number(opts.env?.DB_STATEMENT_TIMEOUT_MS ?? 5_000);
    const txTimeoutMs = Number(opts.env?.DB_TX_TIMEOUT_MS ?? 5_000);
    processes.push(
      startPgBouncer({
        dir,
        port: pgbouncerPort,
        primaryPort: primary.port,
        dbName,
        users: [plan.owner.name, plan.app.name],
        poolSize: 24,
        statementTimeoutMs,
        idleInTransactionTimeoutMs: Math.max(txTimeoutMs * 2, 10_000),
      }),
    );
    const bouncer = (role: DatabasePlan["owner"], db: string) => urlAs(`postgresql://127.0.0.1:${pgbouncerPort}/postgres`, role, db);
    const databaseUrl = bouncer(plan.app, dbName);
    const migrateUrl = bouncer(plan.owner, `${dbName}_session`);
    await waitUntilAnswers(migrateUrl, 20_000).catch((e: unknown) => {
      throw new Error(`PgBouncer: ${String(e)}\n${tail(path.join(dir, "pgbouncer.log"))}`);
    });

    log("migrations (through the session pool)");
    const migrate = spawnSync(path.join(ROOT, "node_modules", ".bin", "prisma"), ["migrate", "deploy"], {
      cwd: ROOT,
      env: { ...process.env, DATABASE_URL: migrateUrl, MIGRATE_DATABASE_URL: migrateUrl },
      encoding: "utf8",
    });
    if (migrate.status !== 0) throw new Error(`prisma migrate deploy failed:\n${migrate.stdout}${migrate.stderr}`);
    await grantAppRole(migrateUrl, plan);

    log("streaming replica (pg_basebackup)");
    started.replicaPort = await sparePort();
    record();
    replica = await createReplica(dir, started.replicaPort, primary);
    const replicaUrl = urlAs(replica.adminUrl, plan.app, dbName);

    log(opts.redis === "single" ? "Redis" : "Redis Cluster (3 masters, a replica each)");
    redis = await startRedis(opts.redis ?? "cluster", dir, (p) => processes.push(p));

    const env: Record<string, string> = {
      NODE_ENV: "production",
      HOST: "127.0.0.1",
      TRUST_PROXY: "1",
      DATABASE_URL: databaseUrl,
      DB_POOLER: "pgbouncer",
      DATABASE_REPLICA_URL: replicaUrl,
      REPLICA_MAX_LAG_MS: "1000",
      REDIS_KEY_PREFIX: "fp:",
      ...redis.env,
      LOG_LEVEL: "info",
      ...opts.env,
    };
    const childEnv = (extra: Record<string, string>): NodeJS.ProcessEnv => {
      // Only what the service needs: nothing of this shell's own settings leaks in.
      return { NODE_ENV: "production", PATH: process.env.PATH, HOME: process.env.HOME, NEXT_TELEMETRY_DISABLED: "1", ...env, ...extra };
    };

    let seedOutput: string | undefined;
    if (opts.seed) {
      log("demo data");
      const seed = spawnSync(path.join(ROOT, "node_modules", ".bin", "tsx"), ["prisma/seed.ts"], { cwd: ROOT, env: childEnv({ NODE_ENV: "development", LOG_LEVEL: "warn" }), encoding: "utf8" });
      if (seed.status !== 0) throw new Error(`the demo data failed:\n${seed.stdout}${seed.stderr}`);
      seedOutput = seed.stdout.trim();
    }

    log(`${opts.apiInstances ?? 2} API instances, the dashboard, ${opts.workers ?? 2} workers`);
    const api: ClusterState["api"] = [];
    for (let i = 1; i <= (opts.apiInstances ?? 2); i++) {
      const port = await sparePort();
      const p = startDetached(`api-${i}`, process.execPath, [path.join(ROOT, "dist/server.js")], {
        log: path.join(logs, `api-${i}.log`),
        env: childEnv({ API_ONLY: "1", PORT: String(port) }),
        cwd: ROOT,
      });
      processes.push(p);
      api.push({ name: `api-${i}`, url: `http://127.0.0.1:${port}`, pid: p.pid });
    }
    const dashboardPort = await sparePort();
    const dash = startDetached("dashboard", process.execPath, [path.join(ROOT, "dist/server.js")], {
      log: path.join(logs, "dashboard.log"),
      env: childEnv({ PORT: String(dashboardPort) }),
      cwd: ROOT,
    });
    processes.push(dash);
    const workers: ClusterState["workers"] = [];
    for (let i = 1; i <= (opts.workers ?? 2); i++) {
      const metricsPort = await sparePort();
      const w = startDetached(`worker-${i}`, process.execPath, [path.join(ROOT, "dist/worker.js")], {
        log: path.join(logs, `worker-${i}.log`),
        env: childEnv({ WORKER_METRICS_PORT: String(metricsPort) }),
        cwd: ROOT,
      });
      processes.push(w);
      workers.push({ name: `worker-${i}`, pid: w.pid, metricsUrl: `http://127.0.0.1:${metricsPort}/metrics` });
    }
    const dashboard = { url: `http://127.0.0.1:${dashboardPort}`, pid: dash.pid };
    for (const node of [...api, { name: "dashboard", ...dashboard }]) {
      await waitFor(node.name, () => httpOk(`${node.url}/api/health`), 60_000, () => tail(path.join(logs, `${node.name}.log`)));
    }
    for (const w of workers) {
      // Its metrics answer once it has started its tasks.
      await waitFor(w.name, () => httpOk(w.metricsUrl), 60_000, () => tail(path.join(logs, `${w.name}.log`)));
    }

    log("HAProxy");
    const port = opts.port ?? (await sparePort());
    const statsPort = await sparePort();
    processes.push(startHaproxy({ dir, port, statsPort, api: api.map((a) => ({ name: a.name, port: Number(new URL(a.url).port) })), dashboardPort }));
    const url = `http://127.0.0.1:${port}`;
    await waitFor("HAProxy", () => httpOk(`${url}/api/health`), 20_000, () => tail(path.join(dir, "haproxy.log")));

    const state: ClusterState = {
      dir,
      url,
      statsUrl: `http://127.0.0.1:${statsPort}/stats`,
      api,
      dashboard,
      workers,
      processes: started.processes,
      postgres: { primary: { port: primary.port, dataDir: primary.dataDir }, replica: { port: replica.port, dataDir: replica.dataDir } },
      pgbouncerPort,
      redis,
      databaseUrl,
      migrateUrl,
      replicaUrl,
      primaryAdminUrl: primary.adminUrl,
      dbName,
      env,
      ...(seedOutput ? { seedOutput } : {}),
    };
    writeFileSync(stateFile(dir), JSON.stringify(state, null, 2));
    return state;
  } catch (error) {
    await clusterDown(dir).catch(() => undefined);
    throw error;
  }
}

/** Stops everything `clusterUp` started from `dir` (as far as it got) and removes the directory. */
export async function clusterDown(dir = DEFAULT_CLUSTER_DIR): Promise<boolean> {
  if (!existsSync(startedFile(dir))) {
    rmSync(dir, { recursive: true, force: true });
    return false;
  }
  const started = JSON.parse(readFileSync(startedFile(dir), "utf8")) as Started;
  // The balancer and the service first (they drain), then what they use.
  const rank = (p: ProcessEntry) => (p.name === "haproxy" ? 0 : p.name === "pgbouncer" || p.name.startsWith("redis-") ? 2 : 1);
  for (const r of [0, 1, 2]) {
    await Promise.all(started.processes.filter((p) => rank(p) === r).map((p) => stopProcess(p.pid)));
  }
  for (const [role, port] of [["replica", started.replicaPort], ["primary", started.primaryPort]] as const) {
    if (port === undefined) continue;
    const server = pgServer(role, dir, port);
    if (!server.running()) continue;
    try {
      server.stop("fast");
    } catch {
      try {
        server.stop("immediate");
      } catch {
        // gone meanwhile
      }
    }
  }
  rmSync(dir, { recursive: true, force: true });
  return true;
}

function tail(file: string, lines = 40): string {
  try {
    return readFileSync(file, "utf8").split("\n").slice(-lines).join("\n");
  } catch {
    return `(no ${file})`;
  }
}
