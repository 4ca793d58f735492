import { randomBytes } from "node:crypto";
import { createTestDeps, closeDeps } from "~/test/deps";
import { ensureCreditType, makeApiKey } from "~/test/api";
import { testAdminDatabaseUrl } from "~/test/env";
import { createThrowaway, disposeThrowaway, planThrowaway, randomRunId, type Throwaway } from "~/test/throwaway";
import { createDb, type Db } from "~/server/infra/db";
import type { Env } from "~/server/infra/env";
import { grantCredits } from "~/server/credit/grant";
import { NO_RATE_LIMIT, sparePort, startOwnRedis, type OwnRedis } from "~/server/credit/testing";
import { createActivity } from "~/server/flash-sale/activities";
import { setQuickBreakers } from "~/server/resilience/testing";
import { startOwnPostgres, type OwnPostgres } from "./own-postgres";
import { assertBuilt, startBuiltServer, startBuiltWorker, type BuiltProcess } from "./processes";

/**
 * What a drill runs against: the production build as separate processes — API
 * servers and the worker — over a database and a redis-server of the drill's
 * own (and, for the drill that crashes PostgreSQL, a cluster of its own), with
 * users funded and a flash sale on. Everything is removed by `dispose`.
 */

/** Every process: limits out of the way, faults felt within a second, refunds retried quickly. */
const DRILL_ENV = {
  ...NO_RATE_LIMIT,
  KEY_RATE_LIMIT_PER_SECOND: "1000000",
  KEY_RATE_LIMIT_BURST: "1000000",
  MAX_IN_FLIGHT: "2000",
  DB_POOL_MAX: "10",
  DB_POOL_WAIT_MS: "1000",
  DB_STATEMENT_TIMEOUT_MS: "3000",
  DB_TX_TIMEOUT_MS: "3000",
  REDIS_COMMAND_TIMEOUT_MS: "300",
  LOCK_WAIT_MS: "1000",
  FLASH_SALE_RESERVATION_TTL_MS: "3000",
  FLASH_SALE_RECONCILE_MS: "1000",
  REFUND_MAX_ATTEMPTS: "6",
  REFUND_BACKOFF_BASE_MS: "50",
  REFUND_BACKOFF_MAX_MS: "500",
  REFUND_LEASE_MS: "6000",
} as const satisfies Partial<Record<keyof Env, string>>;

export const OPENING_BALANCE = 1_000;
export const ITEM_PRICE = 40;

export type StackOptions = {
  servers?: number;
  /** Settings of every server (failpoints, pool size, …), after DRILL_ENV. */
  serverEnv?: Record<string, string>;
  /** Node arguments of one server (e.g. a preload that skews its clock). */
  serverNodeArgs?: (i: number) => string[];
  serverEnvOf?: (i: number) => Record<string, string>;
  worker?: boolean;
  workerEnv?: Record<string, string>;
  /** A PostgreSQL cluster of the drill's own, which the drill may crash. */
  ownPostgres?: boolean;
  users?: number;
  stock?: number;
};

export type Server = BuiltProcess & { url: string; port: number };

export class Stack {
  private constructor(
    readonly name: string,
    readonly t: Throwaway,
    readonly pg: OwnPostgres | null,
    readonly redis: OwnRedis,
    /** The checks' own connection. */
    readonly observer: Db,
    readonly env: Record<string, string>,
    readonly opts: StackOptions,
  ) {}

  servers: (Server | null)[] = [];
  worker: BuiltProcess | null = null;
  apiKey = "";
  users: string[] = [];
  sale = { activityId: "", itemIds: [] as string[] };
  readonly creditTypeId = "points";
  private ports: number[] = [];

  static async start(name: string, opts: StackOptions = {}): Promise<Stack> {
    assertBuilt();
    const pg = opts.ownPostgres ? await startOwnPostgres() : null;
    const redis = await startOwnRedis();
    const t = planThrowaway("test", randomRunId(), {
      ...process.env,
      DATABASE_ADMIN_URL: pg?.adminUrl ?? testAdminDatabaseUrl(),
      REDIS_URL: redis.url,
    });
    let stack: Stack | undefined;
    try {
      await createThrowaway(t);
      const observer = createDb({ url: t.databaseUrl, poolMax: 2, poolWaitMs: 10_000, statementTimeoutMs: 60_000, txTimeoutMs: 60_000, applicationName: "drill-checker" });
      const env = { ...DRILL_ENV, DATABASE_URL: t.databaseUrl, REDIS_URL: redis.url, REDIS_KEY_PREFIX: t.redisPrefix };
      stack = new Stack(name, t, pg, redis, observer, env, opts);
      await stack.seed(opts.users ?? 40, opts.stock ?? 60);
      for (let i = 0; i < (opts.servers ?? 2); i++) {
        stack.ports.push(await sparePort());
        stack.servers.push(null);
        await stack.startServer(i);
      }
      if (opts.worker !== false) await stack.startWorker();
      return stack;
    } catch (error) {
      if (stack) await stack.dispose().catch(() => undefined);
      else {
        await disposeThrowaway(t).catch(() => undefined);
        await redis.kill("SIGKILL");
        pg?.dispose();
      }
      throw error;
    }
  }

  /** A key, the credit type, funded users and a sale on now with two items (made in-process against the same database and Redis). */
  private async seed(userCount: number, stock: number): Promise<void> {
    const deps = await createTestDeps({ ...this.env, DATABASE_URL: this.t.databaseUrl });
    try {
      await ensureCreditType(deps, this.creditTypeId);
      this.apiKey = await makeApiKey(deps);
      await setQuickBreakers(deps, "drill");
      const tag = randomBytes(3).toString("hex");
      this.users = Array.from({ length: userCount }, (_, i) => `drill-${tag}-${i}`);
      await Promise.all(
        this.users.map((userId) =>
          grantCredits(deps, { userId, creditTypeId: this.creditTypeId, amount: OPENING_BALANCE, businessCode: "drill.open", businessId: userId }, { principal: null, requestId: null }),
        ),
      );
      const now = Date.now();
      const activity = await createActivity(
        deps,
        {
          name: `drill sale ${tag}`,
          startsAt: new Date(now - 1_000),
          endsAt: new Date(now + 3_600_000),
          items: [
            { name: "lamp", creditTypeId: this.creditTypeId, pointsPrice: ITEM_PRICE, stock },
            { name: "mug", creditTypeId: this.creditTypeId, pointsPrice: ITEM_PRICE, stock },
          ],
        },
        { actor: { email: "drill@test.local", role: "operator" } },
      );
      this.sale = { activityId: activity.id, itemIds: activity.items.map((i) => i.id) };
    } finally {
      await closeDeps(deps);
    }
  }

  async startServer(i: number, extraEnv: Record<string, string> = {}): Promise<Server> {
    const port = this.ports[i];
    if (port === undefined) throw new Error(`no server ${i}`);
    const env = { ...this.env, ...this.opts.serverEnv, ...this.opts.serverEnvOf?.(i), ...extraEnv };
    const server = { ...(await startBuiltServer(port, env, this.opts.serverNodeArgs?.(i) ?? [])), port };
    this.servers[i] = server;
    return server;
  }

  async stopServer(i: number, signal: NodeJS.Signals = "SIGTERM"): Promise<void> {
    const server = this.servers[i];
    this.servers[i] = null;
    await server?.stop(signal);
  }

  async startWorker(extraEnv: Record<string, string> = {}): Promise<BuiltProcess> {
    this.worker = await startBuiltWorker({ ...this.env, ...this.opts.workerEnv, ...extraEnv });
    return this.worker;
  }

  async stopWorker(signal: NodeJS.Signals = "SIGTERM"): Promise<void> {
    const worker = this.worker;
    this.worker = null;
    await worker?.stop(signal);
  }

  /** The URLs of the servers that run now. */
  urls(): string[] {
    return this.servers.flatMap((s) => (s ? [s.url] : []));
  }

  /** What the processes printed (for a failure message). */
  logs(): string {
    const tail = (s: string) => s.split("\n").slice(-30).join("\n");
    return [
      ...this.servers.map((s, i) => `--- server ${i}\n${s ? tail(s.output()) : "(stopped)"}`),
      `--- worker\n${this.worker ? tail(this.worker.output()) : "(stopped)"}`,
    ].join("\n");
  }

  async dispose(): Promise<void> {
    const errors: unknown[] = [];
    const attempt = async (f: () => unknown) => {
      try {
        await f();
      } catch (e) {
        errors.push(e);
      }
    };
    for (let i = 0; i < this.servers.length; i++) await attempt(() => this.stopServer(i, "SIGKILL"));
    await attempt(() => this.stopWorker("SIGKILL"));
    await attempt(() => this.observer.$disconnect());
    // A cluster of the drill's own goes whole; otherwise the database and its roles are dropped.
    if (this.pg) await attempt(() => this.pg?.dispose());
    else {
      // Its own Redis is going anyway, but the throw-away clean-up wants it answering.
      await attempt(async () => {
        const proc = this.redis.process;
        if (proc.exitCode !== null || proc.signalCode !== null) await this.redis.restart();
        else proc.kill("SIGCONT");
      });
      await attempt(() => disposeThrowaway(this.t));
    }
    await attempt(() => this.redis.kill("SIGKILL"));
    if (errors.length > 0) throw new AggregateError(errors, `drill ${this.name}: clean-up failed`);
  }
}
