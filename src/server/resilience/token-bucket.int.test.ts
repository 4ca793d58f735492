import { spawn } from "node:child_process";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Deps } from "~/server/infra/deps";
import { AppError } from "~/server/infra/app-error";
import { closeDeps, createTestDeps, uid } from "~/test/deps";
import { testDatabaseUrl } from "~/test/env";
import { createAdminUser } from "~/server/identity/admin-users";
import { login } from "~/server/identity/login";
import { startOwnRedis, type OwnRedis } from "~/server/credit/testing";
import { takeTokens } from "./token-bucket";
import { checkRateLimit, setRateLimits, userBucketKey } from "./rate-limit";
import { setSwitch } from "./switches";
import { resilienceMetrics } from "./resilience-metrics";
import { clearSettings } from "./testing";
import { guardedCaller } from "~/test/guarded-router";

let deps: Deps;
const admin = { actor: { email: "admin@test.local", role: "admin" } };

beforeAll(async () => {
  deps = await createTestDeps();
  await clearSettings(deps.db);
});

afterAll(async () => {
  await clearSettings(deps.db);
  await closeDeps(deps);
});

type Outcome = { ok: true } | { ok: false; code: string; retryAfterMs: number | undefined };

async function settle(calls: Promise<unknown>[]): Promise<Outcome[]> {
  return Promise.all(
    calls.map((p) =>
      p.then(
        (): Outcome => ({ ok: true }),
        (e: { cause?: unknown }): Outcome => {
          const app = e.cause instanceof AppError ? e.cause : e instanceof AppError ? e : null;
          return { ok: false, code: app?.code ?? String(e), retryAfterMs: app?.retryAfterMs };
        },
      ),
    ),
  );
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe("token bucket (default 5/s, burst 10, per user and credit type)", () => {
  it("lets at most 10 (+1 refill) of 40 immediate calls through, the rest 429 with the time to the next token; ~5 more after 1 s", async () => {
    const caller = await guardedCaller(deps);
    const userId = uid("u");
    const startedAt = Date.now();
    const first = await settle(Array.from({ length: 40 }, () => caller.guarded({ userId, creditTypeId: "points" })));
    const passed = first.filter((o) => o.ok).length;
    expect(passed).toBeGreaterThanOrEqual(10);
    expect(passed).toBeLessThanOrEqual(11);
    const refused = first.filter((o): o is Extract<Outcome, { ok: false }> => !o.ok);
    expect(refused).toHaveLength(40 - passed);
    for (const r of refused) {
      expect(r.code).toBe("RATE_LIMITED");
      // At 5 tokens/s the next token is at most 200 ms away.
      expect(r.retryAfterMs).toBeGreaterThan(0);
      expect(r.retryAfterMs).toBeLessThanOrEqual(200);
    }
    // The bucket key expires about when it would be full again (10 / 5 per s = 2 s, + 1 s margin).
    const ttl = await deps.redis.pttl(userBucketKey(userId, "points"));
    expect(ttl).toBeGreaterThan(1_000);
    expect(ttl).toBeLessThanOrEqual(3_000);

    await sleep(1_000);
    const second = await settle(Array.from({ length: 20 }, () => caller.guarded({ userId, creditTypeId: "points" })));
    const again = second.filter((o) => o.ok).length;
    // 5 per second refilled since the bucket emptied (at most since the first call, on a slow machine a bit more than 1 s).
    expect(again).toBeGreaterThanOrEqual(4);
    expect(again).toBeLessThanOrEqual(Math.floor((5 * (Date.now() - startedAt)) / 1_000) + 1);
    expect(second.filter((o) => !o.ok).every((o) => !o.ok && o.code === "RATE_LIMITED")).toBe(true);

    // Other users and other credit types have buckets of their own.
    const others = await settle([
      caller.guarded({ userId, creditTypeId: "other-points" }),
      caller.guarded({ userId: uid("u"), creditTypeId: "points" }),
    ]);
    expect(others.every((o) => o.ok)).toBe(true);

    const text = await deps.metrics.registry.metrics();
    expect(text).toMatch(/fp_rate_limit_decisions_total\{procedure="guarded",decision="limited"\} \d+/);
    expect(text).toMatch(/fp_rate_limit_decisions_total\{procedure="guarded",decision="allowed"\} \d+/);
  });

  it("is one bucket for two OS processes", async () => {
    const userId = uid("shared");
    const fixture = path.resolve("src/server/resilience/token-bucket.fixture.ts");
    const tsx = path.resolve("node_modules/.bin/tsx");
    const env: NodeJS.ProcessEnv = {
      ...process.env,
      NODE_ENV: "test",
      LOG_LEVEL: "silent",
      DATABASE_URL: testDatabaseUrl(),
      REDIS_URL: deps.env.REDIS_URL,
      REDIS_KEY_PREFIX: deps.env.REDIS_KEY_PREFIX,
    };
    const procs = [0, 1].map(() => {
      const child = spawn(tsx, [fixture, userId, "points", "20"], { env, stdio: ["ignore", "pipe", "pipe"] });
      let out = "";
      let err = "";
      child.stdout.on("data", (c: Buffer) => (out += c.toString()));
      child.stderr.on("data", (c: Buffer) => (err += c.toString()));
      const exited = new Promise<number | null>((r) => child.once("exit", (code) => r(code)));
      return { child, out: () => out, err: () => err, exited };
    });
    try {
      for (let i = 0; i < 1_500 && !procs.every((p) => p.out().includes("ready")); i++) await sleep(10);
      expect(procs.every((p) => p.out().includes("ready"))).toBe(true);
      await deps.redis.set(`go:${userId}`, "1", "EX", 60);
      const codes = await Promise.all(procs.map((p) => p.exited));
      expect(codes, procs.map((p) => p.err()).join("\n")).toEqual([0, 0]);
      const results = procs.map((p) => JSON.parse(p.out().split("\n").find((l) => l.startsWith("{"))!) as { pid: number; allowed: number });
      expect(new Set(results.map((r) => r.pid)).size).toBe(2);
      const total = results[0]!.allowed + results[1]!.allowed;
      // 40 calls from two processes at once: the burst of one bucket, not of two.
      expect(total).toBeGreaterThanOrEqual(10);
      expect(total).toBeLessThanOrEqual(11);
    } finally {
      for (const p of procs) if (p.child.exitCode === null) p.child.kill("SIGKILL");
    }
  });

  it("applies limits changed by an admin, capping a bucket that was full under a larger burst", async () => {
    const userId = uid("u");
    const key = userBucketKey(userId, "points");
    expect(await takeTokens(deps.redis, key, { perSecond: 100, burst: 100 })).toMatchObject({ allowed: true, remaining: 99 });
    await setRateLimits(deps, { perSecond: 1, burst: 3, reason: "test a lower burst" }, admin);
    const outcomes = await settle(Array.from({ length: 6 }, () => checkRateLimit(deps, { procedure: "t", userId, creditTypeId: "points" })));
    expect(outcomes.filter((o) => o.ok)).toHaveLength(3);
    const limited = outcomes.find((o) => !o.ok) as Extract<Outcome, { ok: false }>;
    expect(limited.retryAfterMs).toBeGreaterThan(500);
    expect(limited.retryAfterMs).toBeLessThanOrEqual(1_000);
    await clearSettings(deps.db);
  });

  it("a peek (n = 0) takes nothing and refuses only an empty bucket", async () => {
    const key = `rate:test:${uid()}`;
    const limits = { perSecond: 0.01, burst: 2 };
    expect(await takeTokens(deps.redis, key, limits, 0)).toMatchObject({ allowed: true, remaining: 2 });
    expect(await deps.redis.exists(key)).toBe(0);
    await takeTokens(deps.redis, key, limits, 2);
    const peek = await takeTokens(deps.redis, key, limits, 0);
    expect(peek.allowed).toBe(false);
    expect(peek.msUntilNextToken).toBeGreaterThan(90_000);
  });
});

describe("when Redis is down", () => {
  let own: OwnRedis;
  let down: Deps;

  beforeAll(async () => {
    own = await startOwnRedis();
    down = await createTestDeps({ REDIS_URL: own.url });
  });

  afterAll(async () => {
    await own?.kill();
    if (down) await closeDeps(down);
  });

  it("fails open quickly by default (counted), refuses with rateLimitFailClosed on, and sign-in still works", async () => {
    const userId = uid("u");
    expect(await checkRateLimit(down, { procedure: "t", userId, creditTypeId: "points" })).toMatchObject({ remaining: 9 });
    const email = `${uid("op")}@example.com`;
    await createAdminUser(down.db, { email, password: "a long enough password", role: "viewer" });
    await own.kill("SIGKILL");

    const m = resilienceMetrics(down.metrics);
    const failOpen = async () =>
      (await m.rateLimitDecisions.get()).values.find((v) => v.labels.procedure === "t" && v.labels.decision === "fail_open")?.value ?? 0;
    const before = await failOpen();
    for (let i = 0; i < 20; i++) {
      const started = Date.now();
      expect(await checkRateLimit(down, { procedure: "t", userId, creditTypeId: "points" })).toBeNull();
      // commandTimeout (500 ms) at worst, at once once the client knows the connection is gone.
      expect(Date.now() - started).toBeLessThan(700);
    }
    expect(await failOpen()).toBe(before + 20);

    const session = await login(down, { email, password: "a long enough password", ip: "10.0.0.1", userAgent: null });
    expect(session.user.email).toBe(email);

    await setSwitch(down, { name: "rateLimitFailClosed", on: true, reason: "prefer refusing to overload" }, admin);
    await expect(checkRateLimit(down, { procedure: "t", userId, creditTypeId: "points" })).rejects.toMatchObject({
      code: "UNAVAILABLE",
      retryAfterMs: 1_000,
    });
    await clearSettings(down.db);
  });
});
