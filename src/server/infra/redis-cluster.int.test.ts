import calculateSlot from "cluster-key-slot";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createTestDeps, closeDeps, uid } from "~/test/deps";
import { clusterNodes, startRedisCluster, type RedisCluster } from "~/test/redis-cluster";
import type { Deps } from "./deps";
import { AppError } from "./app-error";
import { deleteByPrefix, isCluster, isRedisUnavailable, masters, pingRedis, type Cluster } from "./redis";
import { itemKeys, reserveUnit, warmItem } from "~/server/flash-sale/inventory";
import { accountLockKey, acquireLocks } from "~/server/resilience/lock";
import { admitCall, circuitKeys, getCircuit } from "~/server/resilience/circuit-breaker";
import { takeTokens } from "~/server/resilience/token-bucket";
import { userBucketKey } from "~/server/resilience/rate-limit";

/**
 * The service's client against a Redis Cluster of the file's own (three
 * masters, no replicas; not the run's Redis, because a master is killed):
 * scripts and locks across slots, visiting every master, and the fail-fast
 * rules when a master dies.
 */
describe("Redis Cluster", () => {
  let cluster: RedisCluster;
  let deps: Deps;

  beforeAll(async () => {
    // Without full coverage the surviving masters keep serving their slots,
    // so the test can tell "its slots fail" from "everything fails".
    cluster = await startRedisCluster({ requireFullCoverage: false, nodeTimeoutMs: 1000 });
    deps = await createTestDeps({ REDIS_CLUSTER_NODES: cluster.nodes.join(","), REDIS_COMMAND_TIMEOUT_MS: "300" });
  });

  afterAll(async () => {
    if (deps) await closeDeps(deps);
    await cluster?.stop();
  });

  const client = () => deps.redis as Cluster;

  /** The index (in cluster.members) of the master serving `key` (the client's prefix added). */
  async function ownerOf(key: string): Promise<number> {
    const slot = calculateSlot(deps.env.REDIS_KEY_PREFIX + key);
    const ranges = await client().cluster("SLOTS");
    const range = ranges.find(([from, to]) => slot >= from && slot <= to);
    if (!range?.[2]) throw new Error(`slot ${slot} is not served`);
    const port = Number(range[2][1]);
    return cluster.members.findIndex((m) => m.port === port);
  }

  /** Ids whose keys (built by `key`) land on each master, one per master. */
  async function idsPerMaster(key: (id: string) => string): Promise<string[]> {
    const found: (string | undefined)[] = cluster.members.map(() => undefined);
    for (let i = 0; i < 500 && found.some((f) => f === undefined); i++) {
      const id = uid("spread");
      const owner = await ownerOf(key(id));
      found[owner] ??= id;
    }
    if (found.some((f) => f === undefined)) throw new Error("could not find an id for every master");
    return found as string[];
  }

  const sale = (itemId: string) => ({
    itemId,
    activityId: "act",
    startsAt: new Date(Date.now() - 60_000),
    endsAt: new Date(Date.now() + 3_600_000),
    paused: false,
    pointsPrice: 10n,
    creditTypeId: "points",
    left: 5,
  });

  it("is a cluster, and runs every script on whichever master holds its keys", async () => {
    expect(isCluster(deps.redis)).toBe(true);
    expect(String(await client().cluster("INFO"))).toMatch(/cluster_state:ok/);
    expect(masters(deps.redis)).toHaveLength(3);
    await pingRedis(deps.redis);

    for (const itemId of await idsPerMaster((id) => itemKeys(id).stock)) {
      expect(await warmItem(deps.redis, sale(itemId))).toBe(true);
      expect(await reserveUnit(deps.redis, itemId, "buyer-1", 10_000)).toEqual({ kind: "reserved", left: 4 });
      expect(await reserveUnit(deps.redis, itemId, "buyer-1", 10_000)).toMatchObject({ kind: "held" });
    }
    for (const userId of await idsPerMaster((id) => userBucketKey(id, "points"))) {
      expect(await takeTokens(deps.redis, userBucketKey(userId, "points"), { perSecond: 1, burst: 2 })).toMatchObject({ allowed: true, remaining: 1 });
    }
    expect((await getCircuit(deps, "credit.deduct")).state).toBe("CLOSED");
  });

  it("locks the accounts of a batch across slots, one key at a time (no CROSSSLOT)", async () => {
    const keys = (await idsPerMaster((id) => accountLockKey(id, "points"))).map((id) => accountLockKey(id, "points"));
    const locks = await acquireLocks(deps, keys, 5_000);
    expect(locks.degraded).toBe(false);
    expect([...locks.held].sort()).toEqual([...keys].sort());
    const other = await acquireLocks(deps, [keys[1]!], 5_000);
    expect(other).toMatchObject({ degraded: false });
    expect(other.held.size).toBe(0);
    await locks.release();
    expect(await Promise.all(keys.map((k) => deps.redis.exists(k)))).toEqual([0, 0, 0]);
  });

  it("deletes a prefix's keys on every master", async () => {
    const raw = client().duplicate([], { keyPrefix: "" });
    raw.on("error", () => {});
    try {
      const prefix = `${deps.env.REDIS_KEY_PREFIX}wipe:`;
      const ids = await idsPerMaster((id) => `wipe:{${id}}`);
      for (const id of ids) await deps.redis.set(`wipe:{${id}}`, "1");
      expect(await deleteByPrefix(raw, prefix)).toBe(3);
      expect(await Promise.all(ids.map((id) => deps.redis.exists(`wipe:{${id}}`)))).toEqual([0, 0, 0]);
    } finally {
      raw.disconnect();
    }
  });

  it("a killed master: commands for its slots fail fast with errors mapped to UNAVAILABLE; the other masters go on", async () => {
    // Kill the master that holds the deduct breaker, so the typed mapping of a domain call shows too.
    const victim = await ownerOf(circuitKeys("credit.deduct")[0]);
    const items = await idsPerMaster((id) => itemKeys(id).stock);
    const lockIds = await idsPerMaster((id) => accountLockKey(id, "points"));
    const deadItem = items[victim]!;
    const liveItem = items.find((_, i) => i !== victim)!;
    for (const itemId of items) await warmItem(deps.redis, sale(itemId));
    await cluster.kill(victim);

    // Right after the kill (the others do not know yet), and once the
    // cluster has marked the node failed (node timeout 1 s): fast and typed.
    for (const phase of ["at once", "after the node timeout"]) {
      if (phase !== "at once") await new Promise((r) => setTimeout(r, 2_500));

      let started = Date.now();
      const err = await reserveUnit(deps.redis, deadItem, uid("b"), 10_000).then(
        () => null,
        (e: unknown) => e,
      );
      expect(Date.now() - started, phase).toBeLessThan(1_500);
      expect(err, phase).toBeInstanceOf(Error);
      expect(isRedisUnavailable(err), `${phase}: ${String(err)}`).toBe(true);

      started = Date.now();
      const circuit = await getCircuit(deps, "credit.deduct").catch((e: unknown) => e);
      expect(Date.now() - started, phase).toBeLessThan(1_500);
      expect(circuit, phase).toBeInstanceOf(AppError);
      expect((circuit as AppError).code).toBe("UNAVAILABLE");
      // The admission path fails open, at once.
      started = Date.now();
      await expect(admitCall(deps, "credit.deduct")).resolves.toMatchObject({ tracked: false });
      expect(Date.now() - started, phase).toBeLessThan(1_500);

      // A lock on the dead master: the batch goes on degraded, without waiting.
      started = Date.now();
      const locks = await acquireLocks(deps, [accountLockKey(lockIds[victim]!, "points")], 5_000);
      expect(locks.degraded, phase).toBe(true);
      expect(Date.now() - started, phase).toBeLessThan(1_500);

      // Health says so.
      await expect(pingRedis(deps.redis)).rejects.toThrow();

      // The surviving masters still serve their slots.
      expect(await reserveUnit(deps.redis, liveItem, uid("b"), 10_000), phase).toMatchObject({ kind: "reserved" });
    }
  });
});

/**
 * A Redis Cluster with a replica per master, as production runs it: a killed
 * master's replica takes over its slots, and the same client (no restart)
 * finds it and carries on with the replicated state.
 */
describe("Redis Cluster with a replica per master", () => {
  let cluster: RedisCluster;
  let deps: Deps;

  beforeAll(async () => {
    cluster = await startRedisCluster({ replicasPerMaster: 1, nodeTimeoutMs: 1000 });
    deps = await createTestDeps({ REDIS_CLUSTER_NODES: cluster.nodes.join(","), REDIS_COMMAND_TIMEOUT_MS: "300" });
  });

  afterAll(async () => {
    if (deps) await closeDeps(deps);
    await cluster?.stop();
  });

  it("a killed master: its replica takes over, the client finds it, and the replicated state carries on", async () => {
    const itemId = uid("item");
    const stockKey = deps.env.REDIS_KEY_PREFIX + itemKeys(itemId).stock;
    const warm = { itemId, activityId: "act", startsAt: new Date(Date.now() - 60_000), endsAt: new Date(Date.now() + 3_600_000) };
    expect(await warmItem(deps.redis, { ...warm, paused: false, pointsPrice: 10n, creditTypeId: "points", left: 10 })).toBe(true);
    for (const buyer of ["b1", "b2", "b3"]) expect(await reserveUnit(deps.redis, itemId, buyer, 60_000)).toMatchObject({ kind: "reserved" });

    const nodes = await clusterNodes(cluster.members.map((m) => m.port));
    const slot = calculateSlot(stockKey);
    const ranges = await (deps.redis as Cluster).cluster("SLOTS");
    const masterPort = Number(ranges.find(([from, to]) => slot >= from && slot <= to)?.[2]?.[1]);
    const master = nodes.find((n) => n.port === masterPort)!;
    const replica = nodes.find((n) => n.replicaOf === master.id)!;
    expect(replica, "the master has a replica").toBeDefined();

    // The replica has the three reservations before the master dies (replication is asynchronous).
    const { Redis } = await import("ioredis");
    const direct = new Redis(replica.port, "127.0.0.1", { maxRetriesPerRequest: 1 });
    try {
      await direct.call("READONLY");
      const deadline = Date.now() + 5_000;
      while ((await direct.get(stockKey)) !== "7" && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
      expect(await direct.get(stockKey)).toBe("7");
    } finally {
      direct.disconnect();
    }

    await cluster.kill(cluster.members.findIndex((m) => m.port === master.port));
    const killed = Date.now();
    // Until the replica is promoted, calls on those slots fail fast and typed; then they work again.
    let answer: Awaited<ReturnType<typeof reserveUnit>> | null = null;
    while (!answer && Date.now() - killed < 20_000) {
      answer = await reserveUnit(deps.redis, itemId, "b4", 60_000).catch((e: unknown) => {
        expect(isRedisUnavailable(e), String(e)).toBe(true);
        return null;
      });
      if (!answer) await new Promise((r) => setTimeout(r, 100));
    }
    const tookOver = Date.now() - killed;
    expect(answer, `no answer ${tookOver} ms after the kill`).toEqual({ kind: "reserved", left: 6 });
    expect(tookOver).toBeLessThan(15_000);
    expect(await reserveUnit(deps.redis, itemId, "b1", 60_000)).toMatchObject({ kind: "held" });
    expect((await clusterNodes([replica.port])).find((n) => n.port === replica.port)?.role).toBe("master");

    // Health and locks are whole again.
    await pingRedis(deps.redis);
    const locks = await acquireLocks(deps, [accountLockKey(uid("u"), "points")], 5_000);
    expect(locks.degraded).toBe(false);
    await locks.release();
  });
});
