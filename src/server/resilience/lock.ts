import Redlock, { ExecutionError, ResourceLockedError, type Lock } from "redlock";
import type { Deps } from "~/server/infra/deps";
import type { Redis } from "~/server/infra/redis";
import { AppError } from "~/server/infra/app-error";
import { idKey } from "~/server/infra/redis-keys";

/**
 * The account lock. It only reduces contention on a hot account (waiters queue
 * here instead of in Postgres); correctness never depends on it: it can expire
 * mid-operation, and after a Redis restart a second holder can get it at once.
 * The versioned update and the unique keys are the real fence.
 */
export type AccountLock =
  /** Held: release it when done (a failed release is harmless, the lock expires). */
  | { kind: "held"; release: () => Promise<void> }
  /** Redis could not be asked: continue on the Postgres path alone. */
  | { kind: "degraded"; release: () => Promise<void> };

/** The lock of one account; ids are length-prefixed, so no two accounts share it. */
export function accountLockKey(userId: string, creditTypeId: string): string {
  return idKey("lock:acct", userId, creditTypeId);
}


/**
 * Pauses between tries while another holder has the lock: short at first (a
 * deduction holds it for milliseconds), then longer, so hundreds of waiters on
 * one account do not flood Redis.
 */
const RETRY_FIRST_MS = 10;
const RETRY_MAX_MS = 160;

// One Redlock per Redis client (it caches script hashes and holds listeners).
const instances = new WeakMap<Redis, Redlock>();

function redlockFor(redis: Redis): Redlock {
  let r = instances.get(redis);
  if (!r) {
    // Retries are ours (see acquireLock): redlock's own loop cannot tell a held
    // lock from an unreachable Redis and would spend the whole wait on the latter.
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

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/**
 * In-process FIFO queue per lock key, in front of Redis: requests of one
 * process for one account wait here, so only the head of the queue asks Redis
 * (hundreds of waiters polling Redis would starve the holder's own work), and
 * they get their turn in arrival order. A slot frees itself after the lock TTL,
 * like the Redis lock, so a stalled holder does not block the process's queue.
 */
class LocalQueue {
  private readonly queues = new Map<string, { held: boolean; waiters: (() => void)[] }>();
  /** Moving average of how long a slot is held (ms): sizes the retry hint. */
  private holdMs = 20;

  /** How long a newcomer would likely wait for `key` now. */
  expectedWaitMs(key: string): number {
    return ((this.queues.get(key)?.waiters.length ?? 0) + 1) * this.holdMs;
  }

  /** A release function once it is our turn, or null if that did not come within `waitMs`. */
  acquire(key: string, waitMs: number, ttlMs: number): Promise<(() => void) | null> {
    let q = this.queues.get(key);
    if (!q) {
      q = { held: false, waiters: [] };
      this.queues.set(key, q);
    }
    const queue = q;
    const next = () => {
      const waiter = queue.waiters.shift();
      if (waiter) waiter();
      else {
        queue.held = false;
        if (this.queues.get(key) === queue) this.queues.delete(key);
      }
    };
    const grant = (): (() => void) => {
      queue.held = true;
      let done = false;
      const grantedAt = Date.now();
      const release = () => {
        if (done) return;
        done = true;
        clearTimeout(expiry);
        this.holdMs = 0.9 * this.holdMs + 0.1 * Math.max(1, Date.now() - grantedAt);
        next();
      };
      const expiry = setTimeout(release, ttlMs);
      expiry.unref();
      return release;
    };
    if (!queue.held) return Promise.resolve(grant());
    return new Promise((resolve) => {
      const waiter = () => {
        clearTimeout(timer);
        resolve(grant());
      };
      const timer = setTimeout(() => {
        const i = queue.waiters.indexOf(waiter);
        if (i >= 0) queue.waiters.splice(i, 1);
        resolve(null);
      }, waitMs);
      queue.waiters.push(waiter);
    });
  }
}

const localQueue = new LocalQueue();

let lastDegradedLog = 0;

/** The hint grows with the queue in front of the account, so a crowd of retries spreads out. */
function locked(expectedWaitMs: number): AppError {
  const base = Math.min(5000, Math.max(RETRY_MAX_MS, expectedWaitMs));
  return new AppError("OPERATION_LOCKED", "the account is busy with another operation; retry shortly", {
    retryAfterMs: Math.round(base * (0.5 + Math.random())),
  });
}

/**
 * Acquires `key` for `ttlMs`, waiting at most `waitMs` while another holder has
 * it (then OPERATION_LOCKED with a retry hint). If Redis is unreachable the
 * result is `degraded`: counted, logged (at most once a second), and the caller
 * goes on with only the in-process queue.
 */
export async function acquireLock(
  deps: Pick<Deps, "redis" | "log" | "metrics">,
  key: string,
  opts: { ttlMs: number; waitMs: number },
): Promise<AccountLock> {
  const deadline = Date.now() + opts.waitMs;
  // Keyed by prefix too: tests run several deployments (prefixes) in one process.
  const localKey = `${deps.redis.options.keyPrefix ?? ""}${key}`;
  const releaseLocal = await localQueue.acquire(localKey, opts.waitMs, opts.ttlMs);
  if (!releaseLocal) throw locked(localQueue.expectedWaitMs(localKey));

  const degraded = (cause: unknown): AccountLock => {
    deps.metrics.degraded.inc({ component: "lock", reason: "redis_unavailable" });
    const now = Date.now();
    if (now - lastDegradedLog > 1000) {
      lastDegradedLog = now;
      deps.log.warn({ err: cause, key }, "lock unavailable (Redis not answering); continuing on the Postgres path alone");
    }
    return { kind: "degraded", release: async () => releaseLocal() };
  };
  if (deps.redis.status !== "ready") return degraded(new Error(`redis status ${deps.redis.status}`));

  const redlock = redlockFor(deps.redis);
  for (let tries = 0; ; tries++) {
    let lock: Lock;
    try {
      lock = await redlock.acquire([key], opts.ttlMs);
    } catch (e) {
      if ((await classify(e)) === "unavailable") return degraded(e);
      // Held by another process.
      const left = deadline - Date.now();
      if (left <= 0) {
        releaseLocal();
        throw locked(RETRY_MAX_MS);
      }
      const step = Math.min(RETRY_MAX_MS, RETRY_FIRST_MS * 2 ** tries);
      await sleep(Math.min(Math.round(step * (0.5 + Math.random())), left));
      continue;
    }
    return {
      kind: "held",
      release: async () => {
        // The lock may have expired (slow operation) or Redis may be gone: the
        // work is already committed or rolled back either way.
        await lock.release().catch(() => undefined);
        releaseLocal();
      },
    };
  }
}
