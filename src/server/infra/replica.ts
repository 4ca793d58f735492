import type pg from "pg";
import { counterOf, gaugeOf, getMetrics } from "./metrics";
import { AppError } from "./app-error";
import { mapDbError, poolOf, type Db } from "./db";

/**
 * Where reads that tolerate lag go. Everything that decides (balance checks,
 * idempotency, the status of an operation right after it ran) reads the
 * primary through `deps.db`; only reads handed to `run` may be served by the
 * replica, and only while it is known to be at most `maxLagMs` behind.
 */
export type ReadRouter = {
  /** Runs `read` on the replica when it is fresh enough, else on the primary; a replica that fails mid-read is left for the primary. */
  run<T>(read: (db: Db) => Promise<T>): Promise<T>;
  /** What the last probe found. */
  state(): ReplicaState;
  /** Measures now, then reports (health checks: at most once a second). */
  check(): Promise<ReplicaState>;
  close(): Promise<void>;
};

export type ReplicaState =
  | { configured: false }
  | { configured: true; serving: boolean; lagMs: number | null; lastError: string | null };

/** No replica: every read is the primary's. */
export function primaryOnly(primary: Db): ReadRouter {
  const state = (): ReplicaState => ({ configured: false });
  return { run: (read) => read(primary), state, check: async () => state(), close: async () => {} };
}

export type ReplicaOptions = {
  primary: Db;
  replica: Db;
  maxLagMs: number;
  /** How often the lag is measured while reads come in (a probe is two short queries). */
  probeEveryMs?: number;
  now?: () => number;
};

/** One sample of the primary's WAL position and when it was read. */
type Mark = { at: number; lsn: bigint };

/**
 * How far behind is the replica, measured without trusting its own clock or
 * its receiver: each probe reads the primary's current WAL position (noting
 * when), then the replica's replayed position. The replica has replayed
 * everything the primary had written at the newest mark it has passed, so its
 * lag is at most the time since that mark. A replica whose receiver stopped
 * (primary unreachable from it, replication broken) passes no new mark and its
 * measured lag grows — it is never mistaken for caught up.
 */
export function replicaRouter(opts: ReplicaOptions): ReadRouter {
  const now = opts.now ?? (() => performance.now());
  const probeEveryMs = opts.probeEveryMs ?? Math.min(250, Math.max(20, Math.floor(opts.maxLagMs / 4)));
  const primaryPool = poolOf(opts.primary);
  const replicaPool = poolOf(opts.replica);
  const marks: Mark[] = [];
  let caughtUpAt: number | null = null; // when the newest mark the replica has replayed was read
  let lastProbe = -Infinity;
  let probing: Promise<void> | null = null;
  let lastError: string | null = null;
  let failedAt = -Infinity;
  let closed = false;

  const registry = getMetrics().registry;
  const served = counterOf(registry, "fp_replica_reads_total", "lag-tolerant reads, by where they ran (replica, primary) and why", ["target", "reason"]);
  const lagGauge = gaugeOf(registry, "fp_replica_lag_ms", "upper bound on the replica's lag at the last probe (-1: unknown or unreachable)", []);

  const lsnOf = async (pool: pg.Pool, sql: string): Promise<bigint | null> => {
    const { rows } = await pool.query<{ lsn: string | null }>(sql);
    const text = rows[0]?.lsn;
    return text ? BigInt(text) : null;
  };

  async function probe(): Promise<void> {
    try {
      // pg_lsn - '0/0' is the position as a number of bytes.
      const at = now();
      const primaryLsn = await lsnOf(primaryPool, "SELECT (pg_current_wal_lsn() - '0/0'::pg_lsn)::text AS lsn");
      if (primaryLsn !== null) {
        marks.push({ at, lsn: primaryLsn });
        if (marks.length > 64) marks.shift();
      }
      const replayed = await lsnOf(replicaPool, "SELECT (pg_last_wal_replay_lsn() - '0/0'::pg_lsn)::text AS lsn");
      if (replayed === null) throw new Error("the replica database is not in recovery (not a streaming replica)");
      // The newest mark at or below what the replica replayed; older marks are no longer needed.
      let passed = -1;
      for (let i = 0; i < marks.length; i++) if (marks[i]!.lsn <= replayed) passed = i;
      if (passed >= 0) {
        caughtUpAt = Math.max(caughtUpAt ?? -Infinity, marks[passed]!.at);
        marks.splice(0, passed);
      }
      lastError = null;
    } catch (e) {
      lastError = e instanceof Error ? e.message : String(e);
      failedAt = now();
    } finally {
      lastProbe = now();
      const lag = lagMs();
      lagGauge.set(lag ?? -1);
    }
  }

  function lagMs(): number | null {
    if (lastError !== null || caughtUpAt === null) return null;
    return Math.max(0, now() - caughtUpAt);
  }

  function snapshot(): ReplicaState {
    return { configured: true, serving: fresh() === "ok", lagMs: lagMs(), lastError };
  }

  function maybeProbe(): void {
    if (closed || probing || now() - lastProbe < probeEveryMs) return;
    probing = probe().finally(() => (probing = null));
  }

  /** Serve from the replica? Only with a fresh, passing measurement. */
  function fresh(): "ok" | "lagging" | "down" {
    if (lastError !== null || now() - failedAt < 1_000) return "down";
    const lag = lagMs();
    if (lag === null) return "down";
    return lag <= opts.maxLagMs ? "ok" : "lagging";
  }

  return {
    async run<T>(read: (db: Db) => Promise<T>): Promise<T> {
      maybeProbe();
      const verdict = fresh();
      if (verdict !== "ok") {
        served.inc({ target: "primary", reason: verdict });
        return read(opts.primary);
      }
      try {
        const result = await read(opts.replica);
        served.inc({ target: "replica", reason: "fresh" });
        return result;
      } catch (e) {
        // A replica that went away (stopped, cut, too slow) must cost no
        // request: the read runs again on the primary, and the replica is
        // left out until a probe finds it again.
        if (!isInfrastructureFailure(e)) throw e;
        lastError = e instanceof Error ? e.message : String(e);
        failedAt = now();
        served.inc({ target: "primary", reason: "replica_failed" });
        return read(opts.primary);
      }
    },
    state: snapshot,
    async check() {
      // Bounded: a replica that hangs must not slow the health check down
      // (a slow health check takes the instance out of the balancer).
      probing ??= probe().finally(() => (probing = null));
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([probing, new Promise((r) => (timer = setTimeout(r, 500)))]);
      clearTimeout(timer);
      return snapshot();
    },
    async close() {
      closed = true;
      await probing;
      await opts.replica.$disconnect();
    },
  };
}

/** The database failed (connection refused or cut, shutting down, timed out), as opposed to an answer of the read itself. */
function isInfrastructureFailure(e: unknown): boolean {
  if (e instanceof AppError) return e.code === "UNAVAILABLE";
  const mapped = mapDbError(e);
  return mapped instanceof AppError && mapped.code === "UNAVAILABLE";
}
