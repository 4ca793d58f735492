import { Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createTestDeps, closeDeps, uid } from "~/test/deps";
import type { Deps } from "~/server/infra/deps";
import { startOwnRedis, type OwnRedis } from "~/server/credit/testing";
import { accountLockKey, acquireLocks, waitForLockNodes } from "./lock";

/**
 * REDLOCK_NODES: account locks on three independent redis-servers of the
 * file's own, granted by a majority. One server lost: locks are still
 * granted (and still exclusive); two lost: the degraded path, at once, as
 * when the one Redis is down.
 */
describe("account locks on REDLOCK_NODES", () => {
  let servers: OwnRedis[] = [];
  let deps: Deps;
  let raw: Redis[] = [];

  beforeAll(async () => {
    servers = await Promise.all([startOwnRedis(), startOwnRedis(), startOwnRedis()]);
    deps = await createTestDeps({ REDLOCK_NODES: servers.map((s) => s.url).join(","), REDIS_COMMAND_TIMEOUT_MS: "200" });
    raw = servers.map((s) => new Redis(s.url, { keyPrefix: deps.env.REDIS_KEY_PREFIX, maxRetriesPerRequest: 0, retryStrategy: () => null }));
    for (const r of raw) r.on("error", () => {});
    await waitForLockNodes(deps);
    expect(deps.lockNodes.every((n) => n.status === "ready")).toBe(true);
  });

  afterAll(async () => {
    for (const r of raw) r.disconnect();
    if (deps) await closeDeps(deps);
    await Promise.all(servers.map((s) => s.kill()));
  });

  const keys = (n: number) => Array.from({ length: n }, () => accountLockKey(uid("u"), "points"));

  /**
   * How many of `ks` each server holds, once every server has answered: redlock
   * resolves as soon as a majority has voted, so the last server's SET or DEL
   * may still be on its way (bounded wait).
   */
  async function heldOnEach(ks: string[], expected: number): Promise<number[]> {
    const deadline = Date.now() + 2_000;
    for (;;) {
      const counts = await Promise.all(raw.map((r) => r.exists(...ks)));
      if (counts.every((c) => c === expected) || Date.now() > deadline) return counts;
      await new Promise((r) => setTimeout(r, 10));
    }
  }

  it("takes the locks on every server, not on the main Redis", async () => {
    expect(deps.lockNodes).toHaveLength(3);
    const ks = keys(3);
    const locks = await acquireLocks(deps, ks, 5_000);
    expect(locks.degraded).toBe(false);
    expect([...locks.held].sort()).toEqual([...ks].sort());
    expect(await heldOnEach(ks, 3)).toEqual([3, 3, 3]);
    expect(await deps.redis.exists(...ks)).toBe(0);

    const other = await acquireLocks(deps, [ks[0]!], 5_000);
    expect(other).toMatchObject({ degraded: false });
    expect(other.held.size).toBe(0);
    await locks.release();
    expect(await heldOnEach(ks, 0)).toEqual([0, 0, 0]);
  });

  it("one server killed: locks are still granted by the majority, and still exclusive", async () => {
    const [held] = keys(1) as [string];
    const before = await acquireLocks(deps, [held], 5_000);
    expect(before.held.has(held)).toBe(true);

    await servers[0]!.kill();
    const started = Date.now();
    const ks = keys(2);
    const locks = await acquireLocks(deps, ks, 5_000);
    expect(Date.now() - started).toBeLessThan(500);
    expect(locks.degraded).toBe(false);
    expect([...locks.held].sort()).toEqual([...ks].sort());
    for (const r of raw.slice(1)) expect(await r.exists(...ks)).toBe(2);

    // Held elsewhere, with a server gone: "held" (wait your turn), not "Redis is down".
    const contended = await acquireLocks(deps, [held], 5_000);
    expect(contended).toMatchObject({ degraded: false });
    expect(contended.held.size).toBe(0);

    await locks.release();
    await before.release();
    expect((await acquireLocks(deps, [held], 5_000)).held.has(held)).toBe(true);
  });

  it("two servers killed: no majority, so the degraded path at once (as with Redis down)", async () => {
    await servers[1]!.kill();
    const started = Date.now();
    const ks = keys(2);
    const locks = await acquireLocks(deps, ks, 5_000);
    expect(locks.degraded).toBe(true);
    expect([...locks.held].sort()).toEqual([...ks].sort());
    expect(Date.now() - started).toBeLessThan(500);
    await expect(locks.release()).resolves.toBeUndefined();
    expect(await deps.metrics.registry.getSingleMetricAsString("fp_degraded_total")).toMatch(/component="lock",reason="redis_unavailable"/);
  });
});
