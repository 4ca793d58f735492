import calculateSlot from "cluster-key-slot";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createTestDeps, closeDeps } from "./deps";
import { testRedisClusterNodes } from "./env";
import type { Deps } from "~/server/infra/deps";
import { isCluster, masters } from "~/server/infra/redis";
import { itemKeys } from "~/server/flash-sale/inventory";

/**
 * The run really uses the Redis it says: in a cluster run (`npm run
 * test:int:cluster`) every test's client is a Redis Cluster client talking
 * to a healthy three-master cluster, and keys land where the cluster says;
 * otherwise one server.
 */
describe("the run's Redis", () => {
  let deps: Deps;

  beforeAll(async () => {
    deps = await createTestDeps();
  });

  afterAll(async () => {
    if (deps) await closeDeps(deps);
  });

  it("is a Redis Cluster in a cluster run, one server otherwise", async () => {
    const nodes = testRedisClusterNodes();
    if (!nodes) {
      expect(isCluster(deps.redis)).toBe(false);
      expect(deps.env.REDIS_CLUSTER_NODES).toBeUndefined();
      return;
    }
    expect(isCluster(deps.redis)).toBe(true);
    expect(deps.env.REDIS_CLUSTER_NODES).toEqual(nodes.split(","));
    const info = String(await (deps.redis as import("ioredis").Cluster).cluster("INFO"));
    expect(info).toMatch(/cluster_state:ok/);
    expect(info).toMatch(/cluster_known_nodes:3\b/);
    expect(masters(deps.redis)).toHaveLength(3);
    // A key the service writes sits in the slot the cluster computes for it.
    const key = itemKeys("mode-check").stock;
    await deps.redis.set(key, "1", "EX", 60);
    const [node] = masters(deps.redis).filter((m) => m.options.port !== undefined);
    expect(await node!.cluster("KEYSLOT", deps.env.REDIS_KEY_PREFIX + key)).toBe(calculateSlot(deps.env.REDIS_KEY_PREFIX + key));
    expect(await deps.redis.get(key)).toBe("1");
  });
});
