import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { createTestDeps, closeDeps } from "~/test/deps";
import type { Deps } from "~/server/infra/deps";
import { createRedis, waitForRedis } from "./redis";
import { readTraffic, TrafficStats, WINDOW_MS } from "./traffic-stats";

/** The overview's figures are the sum over every instance: two "instances" (two Redis clients) count into the same windows. */
describe("traffic stats", () => {
  let deps: Deps;
  let other: Deps["redis"];

  beforeAll(async () => {
    deps = await createTestDeps();
    other = createRedis({ url: deps.env.REDIS_URL, clusterNodes: deps.env.REDIS_CLUSTER_NODES, keyPrefix: deps.env.REDIS_KEY_PREFIX, commandTimeoutMs: 1000 });
    await waitForRedis(other, 3000);
  });

  afterAll(async () => {
    other.disconnect();
    await closeDeps(deps);
  });

  it("sums two instances' windows: calls, errors, refusals per second, p99 from the merged latencies", async () => {
    vi.useFakeTimers({ toFake: ["Date"] });
    try {
      const start = Math.floor(Date.now() / WINDOW_MS) * WINDOW_MS - 3 * WINDOW_MS;
      vi.setSystemTime(start + 1);
      const a = new TrafficStats(deps);
      const b = new TrafficStats({ redis: other, log: deps.log });
      for (let i = 0; i < 90; i++) a.record("credit.deduct", "ok", 3);
      for (let i = 0; i < 9; i++) b.record("credit.deduct", i < 4 ? "UNAVAILABLE" : "RATE_LIMITED", 40);
      b.record("credit.deduct", "INSUFFICIENT_BALANCE", 700);
      a.flush();
      b.flush();
      await new Promise((r) => setTimeout(r, 100));
      vi.setSystemTime(start + 3 * WINDOW_MS + 1);
      const { points, procedures } = await readTraffic(deps, 1);
      const point = points.find((p) => p.at === new Date(start).toISOString());
      expect(point).toEqual({ at: new Date(start).toISOString(), callsPerSec: 10, errorsPerSec: 0.4, limitedPerSec: 0.5, p99Ms: 50 });
      expect(procedures).toContainEqual({ procedure: "credit.deduct", calls: 100, errors: 4, limited: 5, p99Ms: 50 });
      // Windows nobody wrote are zero, not missing.
      expect(points).toHaveLength(6);
      expect(points.filter((p) => p.callsPerSec === 0)).toHaveLength(5);
    } finally {
      vi.useRealTimers();
    }
  });
});
