import Redlock, { ExecutionError, ResourceLockedError, type Lock } from "redlock";
import type { Deps } from "~/server/infra/deps";
import { isCluster, waitForRedis, type RedisClient } from "~/server/infra/redis";
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


type LockDeps = Pick<Deps, "redis" | "log" | "metrics"> & Partial<Pick<Deps, "lockNodes">>;

/**
 * Where the locks live: the independent servers of REDLOCK_NODES (Redlock:
 * granted by a majority, so one server lost costs nothing), else the main
 * Redis or Redis Cluster.
 */
function lockClients(deps: LockDeps): readonly RedisClient[] {
  return deps.lockNodes && deps.lockNodes.length > 0 ? deps.lockNodes : [deps.redis];
}

// One Redlock per set of clients (it caches script hashes and holds listeners).
const instances = new WeakMap<object, Redlock>();

function redlockFor(clients: readonly RedisClient[]): Redlock {
  // The lockNodes array lives as long as its Deps; a lone client is its own key.
  const id: object = clients.length === 1 ? clients[0]! : clients;
  let r = instances.get(id);
  if (!r) {
    // No retries inside redlock: a key held elsewhere is the engine's to
    // schedule (it tries again later), and an unreachable Redis must not
    // cost a wait.
    r = new Redlock(clients, { retryCount: 0, driftFactor: 0.01, automaticExtensionThreshold: 0 });
    // Redlock emits every failed vote; without a listener EventEmitter throws.
    r.on("error", () => {});
    instances.set(id, r);
  }
  return r;
}

const quorumOf = (n: number) => Math.floor(n / 2) + 1;

/**
 * At start: gives the REDLOCK_NODES servers a moment to connect, so the first
 * batches do not run degraded; warns when fewer than a majority answer.
 */
export async function waitForLockNodes(deps: Pick<Deps, "lockNodes" | "log">, timeoutMs = 3000): Promise<void> {
  if (deps.lockNodes.length === 0) return;
  const ready = (await Promise.all(deps.lockNodes.map((n) => waitForRedis(n, timeoutMs)))).filter(Boolean).length;
  if (ready < quorumOf(deps.lockNodes.length)) {
    deps.log.warn({ ready, servers: deps.lockNodes.length }, "fewer than a majority of REDLOCK_NODES answer; account locks are skipped until they do");
  }
}

/**
 * Why one try failed: the lock is someone else's, or too few servers
 * answered. Redlock settles a try as soon as a majority voted against, so the
 * votes seen may be partial: the try counts as "unavailable" when the servers
 * that failed (errors other than "locked") leave too few to ever make a
 * majority. With one server that is any error, as it always was.
 */
async function classify(e: unknown, servers: number): Promise<"held" | "unavailable"> {
  if (!(e instanceof ExecutionError)) return "unavailable";
  for (const attempt of e.attempts) {
    const stats = await attempt;
    let failed = 0;
    for (const err of stats.votesAgainst.values()) if (!(err instanceof ResourceLockedError)) failed++;
    if (servers - failed < quorumOf(servers)) return "unavailable";
  }
  return e.attempts.length > 0 ? "held" : "unavailable";
}

let lastDegradedLog = 0;

/**
 * One try for all of `keys` in one call (redlock sets them together or not
 * at all); if another holder has some of them — or the locks live on a Redis
 * Cluster — one try for each key on its own, so the free ones go ahead and
 * only the held ones wait. Never waits:
 * the caller schedules what it did not get. When Redis does not answer the
 * result is `degraded` (counted, logged at most once a second).
 */
export async function acquireLocks(
  deps: LockDeps,
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
  const clients = lockClients(deps);
  const ready = clients.filter((c) => c.status === "ready").length;
  if (ready < quorumOf(clients.length)) {
    return degraded(new Error(`redis status ${clients.map((c) => c.status).join(",")}`));
  }

  const redlock = redlockFor(clients);
  const releaseAll = (locks: Lock[]) => async () => {
    // A lock may have expired (slow batch) or Redis may be gone: the work is
    // committed or rolled back either way.
    await Promise.all(locks.map((l) => l.release().catch(() => undefined)));
  };
  // On a Redis Cluster the keys of a batch (one per account) sit in different
  // slots, and one script may not span slots (CROSSSLOT): every key is tried
  // on its own there. A shared hash tag would make the one call work but put
  // every account lock of the deployment on one node.
  const oneCall = !clients.some(isCluster);
  if (oneCall) {
    try {
      const lock = await redlock.acquire([...keys], ttlMs);
      return { held: new Set(keys), degraded: false, release: releaseAll([lock]) };
    } catch (e) {
      if ((await classify(e, clients.length)) === "unavailable") return degraded(e);
    }
    if (keys.length === 1) return { held: new Set(), degraded: false, release: async () => {} };
  }
  const tries = await Promise.all(
    keys.map(async (key) => {
      try {
        return { key, lock: await redlock.acquire([key], ttlMs) };
      } catch (e) {
        return { key, lock: null, unavailable: (await classify(e, clients.length)) === "unavailable" };
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
