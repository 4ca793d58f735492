import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Deps } from "~/server/infra/deps";
import type { RunningServer } from "~/server/http/server";
import { takeTokens } from "~/server/resilience/token-bucket";
import { closeDeps, createTestDeps, uid } from "~/test/deps";
import { postJson, startApi, TEST_PASSWORD } from "~/test/api";
import { hashPassword } from "./passwords";
import { LOGIN_LIMIT, loginBucketKeys } from "./login";

type ErrorBody = { error: { data: { appCode: string; retryAfterMs?: number } } };

let deps: Deps;
let api: RunningServer;
let passwordHash: string;

beforeAll(async () => {
  deps = await createTestDeps();
  api = await startApi(deps);
  passwordHash = await hashPassword(TEST_PASSWORD);
});

afterAll(async () => {
  await api?.close();
  await closeDeps(deps);
});

async function operator(): Promise<string> {
  const email = `${uid("op")}@example.com`;
  await deps.db.adminUser.create({ data: { email, passwordHash, role: "viewer" } });
  return email;
}

const login = (email: string, password: string) => postJson(api.url, "auth.login", { email, password });

/** Passwords checked so far (the login counter's failed + succeeded). */
async function passwordsChecked(): Promise<number> {
  const metric = await deps.metrics.registry.getSingleMetric("fp_login_attempts_total")?.get();
  return (metric?.values ?? []).filter((v) => v.labels.outcome === "failed" || v.labels.outcome === "succeeded").reduce((n, v) => n + v.value, 0);
}

describe("sign-in under abuse", () => {
  it("a batch of logins checks no password: 400, and nothing runs", async () => {
    const email = await operator();
    const before = await passwordsChecked();
    for (const n of [30, 2]) {
      const names = Array.from({ length: n }, () => "auth.login").join(",");
      const input = Object.fromEntries(Array.from({ length: n }, (_, i) => [i, { email, password: `guess-${i}` }]));
      const res = await fetch(`${api.url}/api/trpc/${names}?batch=1`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify(input),
      });
      expect(res.status, `batch of ${n}`).toBe(400);
      expect(((await res.json()) as ErrorBody).error.data.appCode).toBe("VALIDATION");
    }
    expect(await passwordsChecked()).toBe(before);
    // The account's budget is untouched: the right password still works.
    expect((await login(email, TEST_PASSWORD)).status).toBe(200);
  });

  it("40 concurrent wrong passwords for one account: at most 10 checked, the rest 429; meanwhile another account signs in", async () => {
    const victim = await operator();
    const other = await operator();
    const before = await passwordsChecked();
    const flood = Promise.all(Array.from({ length: 40 }, (_, i) => login(victim, `wrong password ${i}`)));
    const meanwhile = login(other, TEST_PASSWORD);
    const [results, otherResult] = await Promise.all([flood, meanwhile]);
    const statuses = results.map((r) => r.status);
    const checked = statuses.filter((s) => s === 401).length;
    expect(checked).toBeGreaterThan(0);
    expect(checked).toBeLessThanOrEqual(LOGIN_LIMIT.account.burst);
    // The rest are refused: 429 by the account's budget, or — on a machine busy enough that the bounded
    // hashing queue fills first — 503 with a retry hint; none is checked.
    const busy = statuses.filter((s) => s === 503).length;
    expect(statuses.filter((s) => s === 429)).toHaveLength(40 - checked - busy);
    expect(busy).toBeLessThanOrEqual(40 - LOGIN_LIMIT.account.burst);
    for (const r of results.filter((r) => r.status === 429)) {
      expect((r.json as ErrorBody).error.data).toMatchObject({ appCode: "RATE_LIMITED", retryAfterMs: expect.any(Number) });
    }
    expect(otherResult.status).toBe(200);
    // The other sign-in is the only success; no more than 10 wrong passwords were hashed.
    expect((await passwordsChecked()) - before).toBeLessThanOrEqual(LOGIN_LIMIT.account.burst + 1);
    // The victim's budget is spent, for the right password too.
    expect((await login(victim, TEST_PASSWORD)).status).toBe(429);
  });

  it("a spray that empties an address's budget does not lock out an operator who signed in from there before", async () => {
    const known = await operator();
    expect((await login(known, TEST_PASSWORD)).status).toBe(200);
    const stranger = await operator();
    // Spend the address's whole budget, as a spray across many accounts would.
    const addresses = ["127.0.0.1", "::ffff:127.0.0.1", "::1"].map((ip) => loginBucketKeys(ip, stranger).address);
    for (const address of addresses) {
      while ((await takeTokens(deps.redis, address, LOGIN_LIMIT.address, 1)).allowed);
    }
    try {
      const refused = await login(stranger, TEST_PASSWORD);
      expect(refused.status).toBe(429);
      expect((await login(known, TEST_PASSWORD)).status).toBe(200);
    } finally {
      // One key per DEL: on a Redis Cluster one command may not span slots.
      await Promise.all(addresses.map((k) => deps.redis.del(k)));
    }
  });

  it("bounds concurrent password hashing: past the queue, 503 UNAVAILABLE with a retry hint, and no attempt is charged", async () => {
    const emails = await Promise.all(Array.from({ length: 40 }, () => operator()));
    const results = await Promise.all(emails.map((e) => login(e, TEST_PASSWORD)));
    const statuses = results.map((r) => r.status);
    expect(statuses.every((s) => s === 200 || s === 503)).toBe(true);
    const busy = results.filter((r) => r.status === 503);
    expect(busy.length).toBeGreaterThan(0);
    for (const r of busy) {
      expect((r.json as ErrorBody).error.data).toMatchObject({ appCode: "UNAVAILABLE", retryAfterMs: expect.any(Number) });
      expect(Number(r.headers.get("retry-after"))).toBeGreaterThanOrEqual(1);
    }
    // A refused one had nothing taken from its budget: ten wrong guesses still get checked.
    const refusedEmail = emails[statuses.indexOf(503)]!;
    const again: number[] = [];
    for (let i = 0; i < 10; i++) again.push((await login(refusedEmail, `nope ${i}`)).status);
    expect(again.every((s) => s === 401)).toBe(true);
  }, 120_000);
});
