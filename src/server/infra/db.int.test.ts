import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Deps } from "./deps";
import { AppError } from "./app-error";
import { isCheckViolation, isUniqueViolation, mapDbError } from "./db";
import { closeDeps, createTestDeps, uid } from "~/test/deps";

let deps: Deps;

beforeAll(async () => {
  deps = await createTestDeps({ DB_STATEMENT_TIMEOUT_MS: "200" });
  await deps.db.creditType.upsert({ where: { id: "points" }, create: { id: "points", name: "points" }, update: {} });
});

afterAll(async () => {
  await closeDeps(deps);
});

async function errorOf(p: Promise<unknown>): Promise<unknown> {
  try {
    await p;
  } catch (e) {
    return e;
  }
  throw new Error("expected a failure");
}

describe("database errors are recognised however they are raised", () => {
  it("a unique violation, from the query builder and from a raw query", async () => {
    const user = uid("u");
    await deps.db.account.create({ data: { userId: user, creditTypeId: "points" } });
    const viaModel = await errorOf(deps.db.account.create({ data: { userId: user, creditTypeId: "points" } }));
    const viaRaw = await errorOf(
      deps.db.$executeRaw`INSERT INTO accounts (user_id, credit_type_id) VALUES (${user}, 'points')`,
    );
    expect(isUniqueViolation(viaModel)).toBe(true);
    expect(isUniqueViolation(viaRaw)).toBe(true);
    expect(isUniqueViolation(new Error("something else"))).toBe(false);
  });

  it("a CHECK violation from a raw query", async () => {
    const user = uid("u");
    const e = await errorOf(
      deps.db.$executeRaw`INSERT INTO accounts (user_id, credit_type_id, balance) VALUES (${user}, 'points', -1)`,
    );
    expect(isCheckViolation(e)).toBe(true);
    expect(isUniqueViolation(e)).toBe(false);
  });

  it("a statement timeout becomes a retryable UNAVAILABLE", async () => {
    const e = mapDbError(await errorOf(deps.db.$queryRaw`SELECT pg_sleep(1)`));
    expect(e).toBeInstanceOf(AppError);
    expect(e).toMatchObject({ code: "UNAVAILABLE" });
    expect((e as AppError).retryAfterMs).toBeGreaterThan(0);
  });

  it("backends killed mid-transaction become UNAVAILABLE, and never cost the pool a slot", async () => {
    // Two slots, four cuts: a leaked connection per cut would starve the pool.
    const small = await createTestDeps({ DB_POOL_MAX: "2", DB_POOL_WAIT_MS: "1000" });
    try {
      for (let i = 0; i < 4; i++) {
        const e = await errorOf(
          small.db.$transaction(async (tx) => {
            const [row] = await tx.$queryRaw<{ pid: number }[]>`SELECT pg_backend_pid() AS pid`;
            await deps.db.$queryRaw`SELECT pg_terminate_backend(${row!.pid}::int)`;
            await tx.$queryRaw`SELECT 1`;
          }),
        );
        expect(mapDbError(e)).toMatchObject({ code: "UNAVAILABLE" });
      }
      const both = await Promise.all([
        small.db.$transaction((tx) => tx.$queryRaw<{ one: number }[]>`SELECT 1 AS one`),
        small.db.$transaction((tx) => tx.$queryRaw<{ one: number }[]>`SELECT 1 AS one`),
      ]);
      expect(both).toEqual([[{ one: 1 }], [{ one: 1 }]]);
    } finally {
      await closeDeps(small);
    }
  });

  it("leaves business failures alone", () => {
    const e = new Error("plain bug");
    expect(mapDbError(e)).toBe(e);
  });
});
