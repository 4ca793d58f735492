import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createTestDeps, closeDeps, uid } from "~/test/deps";
import type { Deps } from "~/server/infra/deps";
import { sparePort, startOwnRedis, type OwnRedis } from "~/server/credit/testing";
import { accountLockKey, acquireLocks } from "./lock";

describe("account locks", () => {
  let deps: Deps;

  beforeAll(async () => {
    deps = await createTestDeps();
  });

  afterAll(async () => {
    await closeDeps(deps);
  });

  // How many of `ks` exist, one key per command (on a Redis Cluster one command may not span slots).
  const existing = async (...ks: string[]) => (await Promise.all(ks.map((k) => deps.redis.exists(k)))).reduce((a, b) => a + b, 0);

  const keys = (n: number) => Array.from({ length: n }, () => accountLockKey(uid("u"), "points"));

  it("takes every key of a batch in one call, exclusively, with the TTL asked for", async () => {
    const [a, b, c] = keys(3) as [string, string, string];
    expect(a).toMatch(/^lock:acct:\{14:u-[0-9a-f]{12}:6:points\}$/);
    const first = await acquireLocks(deps, [a, b, c], 5000);
    expect(first).toMatchObject({ degraded: false });
    expect([...first.held].sort()).toEqual([a, b, c].sort());
    expect(await deps.redis.pttl(a)).toBeGreaterThan(4000);

    // Another holder gets none of them while they are held, and does not wait.
    const started = Date.now();
    const second = await acquireLocks(deps, [b], 5000);
    expect(second.held.size).toBe(0);
    expect(Date.now() - started).toBeLessThan(200);

    await first.release();
    expect(await existing(a, b, c)).toBe(0);
    const third = await acquireLocks(deps, [b], 5000);
    expect([...third.held]).toEqual([b]);
    await third.release();
    // Releasing twice (or after expiry) is harmless.
    await third.release();
  });

  it("when another holder has some keys, the free ones are still taken", async () => {
    const [a, b, c, d] = keys(4) as [string, string, string, string];
    const other = await acquireLocks(deps, [b, d], 5000);
    const mine = await acquireLocks(deps, [a, b, c, d], 5000);
    expect(mine.degraded).toBe(false);
    expect([...mine.held].sort()).toEqual([a, c].sort());
    await mine.release();
    // Releasing mine left the other holder's keys alone.
    expect(await existing(b, d)).toBe(2);
    expect(await existing(a, c)).toBe(0);
    await other.release();
  });

  it("expires after its TTL, so a stalled holder cannot block the account", async () => {
    const [key] = keys(1) as [string];
    const stalled = await acquireLocks(deps, [key], 150);
    await new Promise((r) => setTimeout(r, 250));
    const next = await acquireLocks(deps, [key], 5000);
    expect([...next.held]).toEqual([key]);
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
      const ks = keys(2);
      const locks = await acquireLocks(noRedis, ks, 5000);
      expect(locks.degraded).toBe(true);
      expect([...locks.held].sort()).toEqual([...ks].sort());
      expect(Date.now() - started).toBeLessThan(200);
      await locks.release();
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
      const locks = await acquireLocks(d, keys(2), 5000);
      expect(locks.degraded).toBe(false);
      await own.kill();
      const started = Date.now();
      await expect(locks.release()).resolves.toBeUndefined();
      expect(Date.now() - started).toBeLessThan(1000);
      const after = await acquireLocks(d, keys(1), 5000);
      expect(after.degraded).toBe(true);
    } finally {
      if (d) await closeDeps(d);
      await own?.kill();
    }
  });
});
