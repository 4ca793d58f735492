import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createTestDeps, closeDeps, uid } from "~/test/deps";
import type { Deps } from "~/server/infra/deps";
import { isAppError } from "~/server/infra/app-error";
import { sparePort, startOwnRedis, type OwnRedis } from "~/server/credit/testing";
import { accountLockKey, acquireLock } from "./lock";

describe("account lock", () => {
  let deps: Deps;

  beforeAll(async () => {
    deps = await createTestDeps();
  });

  afterAll(async () => {
    await closeDeps(deps);
  });

  it("is exclusive, waits a bounded time, then answers OPERATION_LOCKED with a hint", async () => {
    const key = accountLockKey(uid("u"), "points");
    expect(key).toMatch(/^lock:acct:14:u-[0-9a-f]{12}:6:points$/);
    const first = await acquireLock(deps, key, { ttlMs: 5000, waitMs: 0 });
    expect(first.kind).toBe("held");
    // Stored under the service's prefix, with the TTL asked for.
    const pttl = await deps.redis.pttl(key);
    expect(pttl).toBeGreaterThan(4000);

    const started = Date.now();
    const second = await acquireLock(deps, key, { ttlMs: 5000, waitMs: 150 }).catch((e: unknown) => e);
    const waited = Date.now() - started;
    expect(isAppError(second, "OPERATION_LOCKED")).toBe(true);
    expect((second as { retryAfterMs?: number }).retryAfterMs).toBeGreaterThan(0);
    expect(waited).toBeGreaterThanOrEqual(140);
    expect(waited).toBeLessThan(1000);

    // A waiter gets it as soon as it is released.
    const waiting = acquireLock(deps, key, { ttlMs: 5000, waitMs: 2000 });
    await new Promise((r) => setTimeout(r, 50));
    const releasedAt = Date.now();
    await first.release();
    const third = await waiting;
    expect(third.kind).toBe("held");
    expect(Date.now() - releasedAt).toBeLessThan(500);
    await third.release();
    // Releasing twice (or after expiry) is harmless.
    await third.release();
  });

  it("expires after its TTL, so a stalled holder cannot block the account", async () => {
    const key = accountLockKey(uid("u"), "points");
    const stalled = await acquireLock(deps, key, { ttlMs: 150, waitMs: 0 });
    expect(stalled.kind).toBe("held");
    const next = await acquireLock(deps, key, { ttlMs: 5000, waitMs: 1000 });
    expect(next.kind).toBe("held");
    // The stalled holder's late release does not free the new holder's lock.
    await stalled.release();
    expect(await deps.redis.exists(key)).toBe(1);
    await next.release();
    expect(await deps.redis.exists(key)).toBe(0);
  });

  it("reports degraded at once when Redis does not answer, and counts it", async () => {
    const noRedis = await createTestDeps({ REDIS_URL: `redis://127.0.0.1:${await sparePort()}` });
    try {
      const started = Date.now();
      const lock = await acquireLock(noRedis, accountLockKey(uid("u"), "points"), { ttlMs: 5000, waitMs: 1000 });
      expect(lock.kind).toBe("degraded");
      expect(Date.now() - started).toBeLessThan(200);
      await lock.release();
      expect(await noRedis.metrics.registry.getSingleMetricAsString("fp_degraded_total")).toMatch(/component="lock",reason="redis_unavailable"/);
    } finally {
      await closeDeps(noRedis);
    }
  });

  it("a holder whose Redis dies can still release without an error", async () => {
    let own: OwnRedis | undefined;
    let d: Deps | undefined;
    try {
      own = await startOwnRedis();
      d = await createTestDeps({ REDIS_URL: own.url, REDIS_COMMAND_TIMEOUT_MS: "200" });
      const lock = await acquireLock(d, accountLockKey(uid("u"), "points"), { ttlMs: 5000, waitMs: 0 });
      expect(lock.kind).toBe("held");
      await own.kill();
      const started = Date.now();
      await expect(lock.release()).resolves.toBeUndefined();
      expect(Date.now() - started).toBeLessThan(1000);
      const after = await acquireLock(d, accountLockKey(uid("u"), "points"), { ttlMs: 5000, waitMs: 1000 });
      expect(after.kind).toBe("degraded");
    } finally {
      if (d) await closeDeps(d);
      await own?.kill();
    }
  });
});
