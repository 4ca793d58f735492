import { spawnSync } from "node:child_process";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createTestDeps, closeDeps } from "./deps";
import { createOwnDatabase } from "./own-database";
import { postJson, startApi } from "./api";
import type { Deps } from "~/server/infra/deps";
import type { RunningServer } from "~/server/http/server";

/** `npm run db:seed` on a fresh database: the demo is usable at once, as the README shows it. */
describe("the demo seed", () => {
  let own: Awaited<ReturnType<typeof createOwnDatabase>>;
  let deps: Deps;
  let api: RunningServer;

  beforeAll(async () => {
    own = await createOwnDatabase();
    deps = await createTestDeps({ DATABASE_URL: own.databaseUrl, REDIS_KEY_PREFIX: own.redisPrefix });
    api = await startApi(deps);
  }, 60_000);

  afterAll(async () => {
    await api?.close();
    if (deps) await closeDeps(deps);
    await own?.dispose();
  });

  function seed(): string {
    const run = spawnSync(process.execPath, ["--import", "tsx", "prisma/seed.ts"], {
      env: { ...process.env, NODE_ENV: "test", DATABASE_URL: own.databaseUrl, REDIS_URL: deps.env.REDIS_URL, REDIS_KEY_PREFIX: own.redisPrefix },
      encoding: "utf8",
      timeout: 60_000,
    });
    expect(run.status, `${run.stdout}${run.stderr}`).toBe(0);
    return run.stdout;
  }

  it("prints a key and a login, and the demo sale sells right away (the README's curl); a second run changes nothing it should not", async () => {
    const out = seed();
    const key = /API key\s+(fpk_\S+)/.exec(out)?.[1];
    expect(key).toBeDefined();
    expect(out).toMatch(/admin login\s+admin@flashpoints\.local \/ \S+/);
    const bought = await postJson(api.url, "flashSale.purchase", { userId: "alice", activityId: "demo-sale", itemId: "demo-coffee" }, { authorization: `Bearer ${key!}` });
    expect(bought).toMatchObject({ status: 200, json: { result: { data: { pointsPaid: 100, idempotent: false } } } });
    const balance = await postJson(api.url, "credit.grant", { userId: "alice", creditTypeId: "points", amount: 1, businessCode: "seed-test", businessId: "1" }, { authorization: `Bearer ${key!}` });
    expect(balance).toMatchObject({ status: 200, json: { result: { data: { balanceAfter: 4901 } } } });

    seed();
    expect(await deps.db.flashSaleActivity.count()).toBe(2);
    expect(await deps.db.flashSaleOrder.count()).toBe(1);
    expect(await deps.db.account.findFirstOrThrow({ where: { userId: "alice" } })).toMatchObject({ balance: 4901n });
  }, 120_000);
});
