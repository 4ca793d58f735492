import { describe, expect, it } from "vitest";
import { InvalidEnvError, loadEnv } from "./env";

const base = { DATABASE_URL: "postgresql://postgres@127.0.0.1:5432/x" };

describe("configuration", () => {
  it("fills the documented defaults", () => {
    const env = loadEnv(base);
    expect(env).toMatchObject({
      PORT: 3000,
      API_ONLY: false,
      REDIS_KEY_PREFIX: "fp:",
      RATE_LIMIT_PER_SECOND: 5,
      RATE_LIMIT_BURST: 10,
      LOCK_TTL_MS: 10_000,
      REQUEST_ID_TTL_S: 86_400,
      REFUND_MAX_ATTEMPTS: 3,
      REFUND_BACKOFF_BASE_MS: 1_000,
      REFUND_BACKOFF_MAX_MS: 60_000,
    });
    expect(env.ALERT_WEBHOOK_URL).toBeUndefined();
    expect(env.REDIS_CLUSTER_NODES).toBeUndefined();
    expect(env.REDLOCK_NODES).toBeUndefined();
  });

  it("reads the Redis Cluster seeds and the Redlock servers as lists", () => {
    const env = loadEnv({
      ...base,
      REDIS_CLUSTER_NODES: "10.0.0.5:7000, redis-b.internal:7001,[::1]:7002,",
      REDLOCK_NODES: "redis://10.0.1.1:6379,redis://10.0.1.2:6379 , rediss://10.0.1.3:6380",
    });
    expect(env.REDIS_CLUSTER_NODES).toEqual(["10.0.0.5:7000", "redis-b.internal:7001", "[::1]:7002"]);
    expect(env.REDLOCK_NODES).toEqual(["redis://10.0.1.1:6379", "redis://10.0.1.2:6379", "rediss://10.0.1.3:6380"]);
    expect(loadEnv({ ...base, REDIS_CLUSTER_NODES: " , " }).REDIS_CLUSTER_NODES).toBeUndefined();
  });

  it("reads API_ONLY=1 as true and numbers as numbers", () => {
    const env = loadEnv({ ...base, API_ONLY: "1", PORT: "4100", RATE_LIMIT_PER_SECOND: "2.5" });
    expect(env.API_ONLY).toBe(true);
    expect(env.PORT).toBe(4100);
    expect(env.RATE_LIMIT_PER_SECOND).toBe(2.5);
  });

  it.each([
    ["DATABASE_URL", { DATABASE_URL: undefined }],
    ["DATABASE_URL", { DATABASE_URL: "mysql://x" }],
    ["PORT", { PORT: "70000" }],
    ["PORT", { PORT: "abc" }],
    ["RATE_LIMIT_BURST", { RATE_LIMIT_BURST: "0" }],
    ["REQUEST_ID_TTL_S", { REQUEST_ID_TTL_S: "60" }],
    ["REDIS_URL", { REDIS_URL: "http://x" }],
    ["API_ONLY", { API_ONLY: "yes" }],
    ["REDIS_KEY_PREFIX", { REDIS_KEY_PREFIX: "has space" }],
    ["REDIS_CLUSTER_NODES", { REDIS_CLUSTER_NODES: "10.0.0.5" }],
    ["REDIS_CLUSTER_NODES", { REDIS_CLUSTER_NODES: "redis://10.0.0.5:7000" }],
    ["REDLOCK_NODES", { REDLOCK_NODES: "10.0.1.1:6379" }],
  ])("stops on a bad %s, naming it", (name, patch) => {
    let error: unknown;
    try {
      loadEnv({ ...base, ...patch });
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(InvalidEnvError);
    expect((error as Error).message).toContain(`${name}:`);
  });
});
