import { spawn, type ChildProcess } from "node:child_process";
import { createServer } from "node:net";
import { Redis } from "ioredis";
import type { Db } from "~/server/infra/db";
import { createRedis, deleteByPrefix, waitForRedis } from "~/server/infra/redis";

/**
 * Test support for the credit tests (integration only; imports nothing of vitest).
 */

/** A free local TCP port (best effort: another process could take it before use). */
export function sparePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once("error", reject);
    srv.listen(0, "127.0.0.1", () => {
      const addr = srv.address();
      const port = typeof addr === "object" && addr ? addr.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

/**
 * A redis-server of the test's own on a spare port, so a test can kill it
 * without touching the shared one. Keeps nothing on disk.
 */
export type OwnRedis = { url: string; port: number; process: ChildProcess; kill: (signal?: NodeJS.Signals) => Promise<void>; restart: () => Promise<void> };

export async function startOwnRedis(): Promise<OwnRedis> {
  const port = await sparePort();
  let proc = await launch(port);
  const own: OwnRedis = {
    url: `redis://127.0.0.1:${port}`,
    port,
    get process() {
      return proc;
    },
    kill: async (signal = "SIGKILL") => {
      if (proc.exitCode !== null || proc.signalCode !== null) return;
      const exited = new Promise<void>((r) => proc.once("exit", () => r()));
      proc.kill(signal);
      await exited;
    },
    restart: async () => {
      await own.kill();
      proc = await launch(port);
    },
  };
  return own;
}

async function launch(port: number): Promise<ChildProcess> {
  const proc = spawn("redis-server", ["--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"], {
    stdio: "ignore",
  });
  const probe = new Redis(port, "127.0.0.1", { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
  probe.on("error", () => {});
  try {
    for (let i = 0; i < 100; i++) {
      try {
        if (probe.status !== "ready") await probe.connect();
        if ((await probe.ping()) === "PONG") return proc;
      } catch {
        probe.disconnect();
        await new Promise((r) => setTimeout(r, 50));
      }
    }
  } finally {
    probe.disconnect();
  }
  proc.kill("SIGKILL");
  throw new Error(`redis-server on port ${port} did not start`);
}

export type AccountCheck = {
  userId: string;
  creditTypeId: string;
  balance: number;
  credits: number;
  debits: number;
  minBalanceAfter: number | null;
  ledgerRows: number;
};

/** Balance, ledger sums and the lowest recorded balance_after, per account of the given users. */
export async function accountChecks(db: Db, userIds: string[]): Promise<AccountCheck[]> {
  const rows = await db.$queryRaw<
    { user_id: string; credit_type_id: string; balance: bigint; credits: bigint; debits: bigint; min_after: bigint | null; n: bigint }[]
  >`
    SELECT a.user_id, a.credit_type_id, a.balance,
      COALESCE(SUM(l.amount) FILTER (WHERE l.type = 'CREDIT'), 0)::bigint AS credits,
      COALESCE(SUM(l.amount) FILTER (WHERE l.type = 'DEBIT'), 0)::bigint AS debits,
      MIN(l.balance_after) AS min_after,
      COUNT(l.id) AS n
    FROM accounts a LEFT JOIN ledger_entries l ON l.account_id = a.id
    WHERE a.user_id = ANY(${userIds})
    GROUP BY a.id, a.user_id ORDER BY a.user_id, a.credit_type_id`;
  return rows.map((r) => ({
    userId: r.user_id,
    creditTypeId: r.credit_type_id,
    balance: Number(r.balance),
    credits: Number(r.credits),
    debits: Number(r.debits),
    minBalanceAfter: r.min_after === null ? null : Number(r.min_after),
    ledgerRows: Number(r.n),
  }));
}

/**
 * Deletes every key under `prefix` (SCAN + UNLINK on every master): never
 * FLUSHALL a shared Redis. `clusterNodes` (the env's REDIS_CLUSTER_NODES):
 * the keys live on that cluster, not at `redisUrl`.
 */
export async function deletePrefix(redisUrl: string, prefix: string, clusterNodes?: readonly string[]): Promise<number> {
  const redis = createRedis({ url: redisUrl, clusterNodes, keyPrefix: "", commandTimeoutMs: 2000, name: "flashpoints-test-cleanup" });
  try {
    if (!(await waitForRedis(redis, 3000))) throw new Error(`Redis did not answer to delete ${prefix}*`);
    return await deleteByPrefix(redis, prefix);
  } finally {
    redis.disconnect();
  }
}

/**
 * Env overrides for tests that call credit.deduct many times per account: the
 * per-user token bucket (5/s by default) is not what they test.
 */
export const NO_RATE_LIMIT = { RATE_LIMIT_PER_SECOND: "1000000", RATE_LIMIT_BURST: "1000000" } as const;
