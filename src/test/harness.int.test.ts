import { readdirSync } from "node:fs";
import { Redis } from "ioredis";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { testDatabaseUrl, testRedisPrefix } from "./env";

// Proves the integration harness: a fresh, fully migrated database (with the
// hand-written CHECKs) and a Redis prefix of this run only.
describe("integration test harness", () => {
  let db: pg.Client;
  let redis: Redis;

  beforeAll(async () => {
    db = new pg.Client({ connectionString: testDatabaseUrl() });
    await db.connect();
    redis = new Redis(process.env.REDIS_URL ?? "redis://127.0.0.1:6379", { maxRetriesPerRequest: 1 });
  });

  afterAll(async () => {
    await db?.end();
    redis?.disconnect();
  });

  it("uses a throw-away database, also as the app's DATABASE_URL", async () => {
    const { rows } = await db.query<{ name: string }>("SELECT current_database() AS name");
    expect(rows[0]?.name).toMatch(/^fp_test_[0-9a-f]{12}$/);
    expect(process.env.DATABASE_URL).toBe(testDatabaseUrl());
    expect(process.env.REDIS_KEY_PREFIX).toBe(testRedisPrefix());
  });

  it("has every migration applied", async () => {
    const onDisk = readdirSync("prisma/migrations", { withFileTypes: true }).filter((e) => e.isDirectory());
    const { rows } = await db.query<{ n: number }>(
      "SELECT count(*)::int AS n FROM _prisma_migrations WHERE finished_at IS NOT NULL AND rolled_back_at IS NULL",
    );
    expect(onDisk.length).toBeGreaterThan(0);
    expect(rows[0]?.n).toBe(onDisk.length);
  });

  it("rejects a negative balance with the CHECK constraint", async () => {
    await db.query("INSERT INTO credit_types (id, name) VALUES ('harness', 'Harness points')");
    await expect(
      db.query("INSERT INTO accounts (user_id, credit_type_id, balance) VALUES ('u1', 'harness', -1)"),
    ).rejects.toMatchObject({ code: "23514", constraint: "accounts_balance_non_negative" });
    const ok = await db.query(
      "INSERT INTO accounts (user_id, credit_type_id, balance) VALUES ('u1', 'harness', 0) RETURNING balance",
    );
    expect(ok.rows[0]).toEqual({ balance: "0" });
  });

  it("has a Redis key prefix of its own, named after its database", async () => {
    const prefix = testRedisPrefix();
    const { rows } = await db.query<{ name: string }>("SELECT current_database() AS name");
    expect(prefix).toBe(`fp:test:${rows[0]?.name.slice("fp_test_".length)}:`);
    // Left behind on purpose: global teardown must delete it (other files of the
    // run write under the same prefix, so nothing here says it starts empty).
    await redis.set(`${prefix}harness`, "1", "EX", 600);
    expect(await redis.get(`${prefix}harness`)).toBe("1");
  });
});
