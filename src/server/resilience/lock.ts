import Redlock, { ExecutionError, ResourceLockedError, type Lock } from "redlock";
import type { Deps } from "~/server/infra/deps";
import type { Redis } from "~/server/infra/redis";
import { taggedKey } from "~/server/infra/redis-keys";

/**
 * The account locks of a batch. They only reduce contention on hot accounts
 * (instances take turns instead of racing in Postgres); correctness never
 * depends on them: a lock can expire mid-batch, and after a Redis restart a
 * second holder can get it at once. The versioned update and the unique keys
 * are the real fence.
 */
export type LockSet = {
  /** The keys this holder may work on now (all of them when `degraded`). */
  held: ReadonlySet<string>;
  /** Redis could not be asked: go on without locks, on the Postgres fence alone. */
  degraded: boolean;
  /** Releases what is held; harmless after expiry or with Redis gone. */
  release: () => Promise<void>;
};

/** The lock of one account; ids are length-prefixed, so no two accounts share it. */
export function accountLockKey(userId: string, creditTypeId: string): string {
  return taggedKey("lock:acct", [userId, creditTypeId]);
}


// One Redlock per Redis client (it caches script hashes and holds listeners).
const instances = new WeakMap<Redis, Redlock>();

function redlockFor(redis: Redis): Redlock {
  let r = instances.get(redis);
  if (!r) {
    // No retries inside redlock: a key held elsewhere is the engine's to
    // schedule (it tries again later), and an unreachable Redis must not
    // cost a wait.
    r = new Redlock([redis], { retryCount: 0, driftFactor: 0.01, automaticExtensionThreshold: 0 });
    // Redlock emits every failed vote; without a listener EventEmitter throws.
    r.on("error", () => {});
    instances.set(redis, r);
  }
  return r;
}

/** Why one try failed: the lock is someone else's, or Redis did not answer. */
async function classify(e: unknown): Promise<"held" | "unavailable"> {
  if (!(e instanceof ExecutionError)) return "unavailable";
  for (const attempt of e.attempts) {
    const stats = await attempt;
    for (const err of stats.votesAgainst.values()) {
      if (!(err instanceof ResourceLockedError)) return "unavailable";
    }
  }
  return e.attempts.length > 0 ? "held" : "unavailable";
}

let lastDegradedLog = 0;

/**
 * One try for all of `keys` in one call (redlock sets them together or not
 * at all); if another holder has some of them, one try for each key on its
 * own, so the free ones go ahead and only the held ones wait. Never waits:
 * the caller schedules what it did not get. When Redis does not answer the
 * result is `degraded` (counted, logged at most once a second).
 */
export async function acquireLocks(
  deps: Pick<Deps, "redis" | "log" | "metrics">,
  keys: readonly string[],
  ttlMs: number,
): Promise<LockSet> {
  const degraded = (cause: unknown): LockSet => {
    deps.metrics.degraded.inc({ component: "lock", reason: "redis_unavailable" });
    const now = Date.now();
    if (now - lastDegradedLog > 1000) {
      lastDegradedLog = now;
      deps.log.warn({ err: cause, keys: keys.length }, "locks unavailable (Redis not answering); continuing on the Postgres fence alone");
    }
    return { held: new Set(keys), degraded: true, release: async () => {} };
  };
  if (keys.length === 0) return { held: new Set(), degraded: false, release: async () => {} };
  if (deps.redis.status !== "ready") return degraded(new Error(`redis status ${deps.redis.status}`));

  const redlock = redlockFor(deps.redis);
  const releaseAll = (locks: Lock[]) => async () => {
    // A lock may have expired (slow batch) or Redis may be gone: the work is
    // committed or rolled back either way.
    await Promise.all(locks.map((l) => l.release().catch(() => undefined)));
  };
  try {
    const lock = await redlock.acquire([...keys], ttlMs);
    return { held: new Set(keys), degraded: false, release: releaseAll([lock]) };
  } catch (e) {
    if ((await classify(e)) === "unavailable") return degraded(e);
  }
  if (keys.length === 1) return { held: new Set(), degraded: false, release: async () => {} };
  const tries = await Promise.all(
    keys.map(async (key) => {
      try {
        return { key, lock: await redlock.acquire([key], ttlMs) };
      } catch (e) {
        return { key, lock: null, unavailable: (await classify(e)) === "unavailable" };
      }
    }),
  );
  const locks = tries.flatMap((t) => (t.lock ? [t.lock] : []));
  if (tries.some((t) => !t.lock && t.unavailable)) {
    await releaseAll(locks)();
    return degraded(new Error("redis failed during the lock"));
  }
  return { held: new Set(tries.flatMap((t) => (t.lock ? [t.key] : []))), degraded: false, release: releaseAll(locks) };
}
