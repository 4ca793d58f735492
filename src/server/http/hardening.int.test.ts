import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Deps } from "~/server/infra/deps";
import type { RunningServer } from "./server";
import { closeDeps, createTestDeps, uid } from "~/test/deps";
import { adminCaller, ensureCreditType, makeApiKey, postJson, startApi, TEST_PASSWORD } from "~/test/api";
import { NO_RATE_LIMIT } from "~/server/credit/testing";
import { getCircuit } from "~/server/resilience/circuit-breaker";
import { resetCircuit } from "~/server/resilience/circuit-control";
import { checkRateLimit, setRateLimits } from "~/server/resilience/rate-limit";
import { setSwitch } from "~/server/resilience/switches";
import { clearSettings } from "~/server/resilience/testing";
import { hashPassword } from "~/server/identity/passwords";

type ErrorBody = { error: { data: { appCode: string; httpStatus: number; retryAfterMs?: number } } };
const appCode = (json: unknown) => (json as ErrorBody).error.data.appCode;
const operator = { actor: { email: "ops@test.local", role: "admin" } };

let deps: Deps;
let api: RunningServer;
let key: string;
let creditTypeId: string;

beforeAll(async () => {
  deps = await createTestDeps({ ...NO_RATE_LIMIT });
  await clearSettings(deps.db);
  creditTypeId = await ensureCreditType(deps, "hardening-points");
  api = await startApi(deps);
  key = await makeApiKey(deps);
});

afterAll(async () => {
  deps.failpoints.set(undefined);
  await clearSettings(deps.db);
  await api?.close();
  await closeDeps(deps);
});

const auth = (k = key) => ({ authorization: `Bearer ${k}` });

async function funded(amount = 1_000, userId = uid("u")): Promise<string> {
  const res = await postJson(api.url, "credit.grant", { userId, creditTypeId, amount, businessCode: "test.grant", businessId: uid("g") }, auth());
  expect(res.status).toBe(200);
  return userId;
}

function batchUrl(base: string, procedure: string, inputs: unknown[]): string {
  const names = inputs.map(() => procedure).join(",");
  const input = Object.fromEntries(inputs.map((v, i) => [i, v]));
  return `${base}/api/trpc/${names}?batch=1&input=${encodeURIComponent(JSON.stringify(input))}`;
}

describe("tRPC batches", () => {
  it("hold at most BATCH_MAX calls: a larger one is 400 and nothing runs", async () => {
    const userId = await funded();
    const ref = { userId, creditTypeId };
    const ok = await fetch(batchUrl(api.url, "credit.account", Array.from({ length: 20 }, () => ref)), { headers: auth() });
    expect(ok.status).toBe(200);
    expect(((await ok.json()) as unknown[]).length).toBe(20);

    const tooMany = await fetch(batchUrl(api.url, "credit.account", Array.from({ length: 21 }, () => ref)), { headers: auth() });
    expect(tooMany.status).toBe(400);
    expect(appCode(await tooMany.json())).toBe("VALIDATION");

    const deductions = Array.from({ length: 21 }, () => ({ userId, creditTypeId, amount: 1, businessCode: "order.pay", businessId: uid("o") }));
    const res = await fetch(`${api.url}/api/trpc/${deductions.map(() => "credit.deduct").join(",")}?batch=1`, {
      method: "POST",
      headers: { "content-type": "application/json", ...auth() },
      body: JSON.stringify(Object.fromEntries(deductions.map((d, i) => [i, d]))),
    });
    expect(res.status).toBe(400);
    expect(await deps.db.ledgerEntry.count({ where: { userId, type: "DEBIT" } })).toBe(0);
  });

  it("every call in a batch passes the same admission as alone (the per-user bucket)", async () => {
    const limited = await createTestDeps({ REDIS_KEY_PREFIX: deps.env.REDIS_KEY_PREFIX, RATE_LIMIT_PER_SECOND: "1", RATE_LIMIT_BURST: "5" });
    const server = await startApi(limited);
    try {
      const userId = await funded();
      const deductions = Array.from({ length: 12 }, () => ({ userId, creditTypeId, amount: 1, businessCode: "order.pay", businessId: uid("o") }));
      const res = await fetch(`${server.url}/api/trpc/${deductions.map(() => "credit.deduct").join(",")}?batch=1`, {
        method: "POST",
        headers: { "content-type": "application/json", ...auth() },
        body: JSON.stringify(Object.fromEntries(deductions.map((d, i) => [i, d]))),
      });
      const items = (await res.json()) as ({ result: unknown } | ErrorBody)[];
      const codes = items.map((i) => ("error" in i ? i.error.data.appCode : "ok"));
      expect(codes.filter((c) => c === "ok").length).toBeLessThanOrEqual(6);
      expect(codes.filter((c) => c === "RATE_LIMITED").length).toBeGreaterThanOrEqual(6);
      expect(await deps.db.ledgerEntry.count({ where: { userId, type: "DEBIT" } })).toBe(codes.filter((c) => c === "ok").length);
    } finally {
      await server.close();
      await closeDeps(limited);
    }
  });
});

describe("one key's flood", () => {
  it("is held to that key's budget, so another key's deductions work and the breaker stays closed", async () => {
    await setRateLimits(deps, { perSecond: 100, burst: 100, reason: "keep the flood small", scope: "apiKey" }, operator);
    try {
      const flooder = await makeApiKey(deps);
      const honest = await makeApiKey(deps);
      const target = await funded();
      const reads = Array.from({ length: 20 }, () => ({ userId: target, creditTypeId }));
      const stop = Date.now() + 2_000;
      let floodCalls = 0;
      let floodLimited = 0;
      const flood = Promise.all(
        Array.from({ length: 16 }, async () => {
          while (Date.now() < stop) {
            const res = await fetch(batchUrl(api.url, "credit.ledger", reads), { headers: auth(flooder) });
            const items = (await res.json()) as ({ result: unknown } | ErrorBody)[];
            floodCalls += items.length;
            floodLimited += items.filter((i) => "error" in i && i.error.data.appCode === "RATE_LIMITED").length;
          }
        }),
      );
      const users = await Promise.all(Array.from({ length: 10 }, () => funded(100)));
      const statuses: number[] = [];
      await Promise.all(
        users.map(async (userId) => {
          for (let i = 0; i < 4; i++) {
            const res = await postJson(
              api.url,
              "credit.deduct",
              { userId, creditTypeId, amount: 1, businessCode: "order.pay", businessId: uid("o") },
              auth(honest),
            );
            statuses.push(res.status);
          }
        }),
      );
      await flood;
      expect(statuses).toEqual(Array.from({ length: 40 }, () => 200));
      expect(floodCalls).toBeGreaterThan(500);
      expect(floodLimited / floodCalls).toBeGreaterThan(0.5);
      expect(await getCircuit(deps, "credit.deduct")).toMatchObject({ state: "CLOSED", errorCount: 0 });
    } finally {
      await clearSettings(deps.db);
      await deps.settings.reload();
    }
  });

  it("a process past MAX_IN_FLIGHT answers 503 UNAVAILABLE at once, and the breaker does not count it", async () => {
    const small = await createTestDeps({ ...NO_RATE_LIMIT, REDIS_KEY_PREFIX: deps.env.REDIS_KEY_PREFIX, MAX_IN_FLIGHT: "4" });
    const server = await startApi(small);
    small.failpoints.set("credit.beforeCommit=delay:400");
    try {
      await resetCircuit(deps, { name: "credit.deduct", reason: "clean slate" }, operator);
      const users = await Promise.all(Array.from({ length: 20 }, () => funded(10)));
      const started = Date.now();
      const results = await Promise.all(
        users.map(async (userId) => {
          const t0 = Date.now();
          const res = await postJson(
            server.url,
            "credit.deduct",
            { userId, creditTypeId, amount: 1, businessCode: "order.pay", businessId: uid("o") },
            auth(),
          );
          return { res, ms: Date.now() - t0 };
        }),
      );
      const shed = results.filter((r) => r.res.status === 503);
      expect(results.filter((r) => r.res.status === 200).length).toBeGreaterThanOrEqual(4);
      expect(shed.length).toBeGreaterThanOrEqual(10);
      for (const r of shed) {
        expect(appCode(r.res.json)).toBe("UNAVAILABLE");
        expect(r.res.headers.get("retry-after")).toBe("1");
        expect(r.ms).toBeLessThan(300);
      }
      expect(Date.now() - started).toBeLessThan(5_000);
      expect((await getCircuit(deps, "credit.deduct")).errorCount).toBe(0);
    } finally {
      small.failpoints.set(undefined);
      await server.close();
      await closeDeps(small);
    }
  });
});

describe("proxies, cookies and headers", () => {
  let passwordHash: string;
  beforeAll(async () => {
    passwordHash = await hashPassword(TEST_PASSWORD);
  });

  async function signIn(url: string, headers: Record<string, string>) {
    const email = `${uid("op")}@example.com`;
    await deps.db.adminUser.create({ data: { email, passwordHash, role: "viewer" } });
    return postJson(url, "auth.login", { email, password: TEST_PASSWORD }, headers);
  }

  it("without TRUST_PROXY, X-Forwarded-* is ignored: no Secure cookie, no HSTS, and a forwarded host is not our origin", async () => {
    const forwarded = { "x-forwarded-proto": "https", "x-forwarded-host": "points.example", "x-forwarded-for": "203.0.113.9" };
    const res = await signIn(api.url, forwarded);
    expect(res.status).toBe(200);
    const cookie = res.headers.get("set-cookie") ?? "";
    expect(cookie).toMatch(/^fp_session=/);
    expect(cookie).not.toContain("Secure");
    expect(res.headers.get("strict-transport-security")).toBeNull();
    const session = await deps.db.adminSession.findFirst({ orderBy: { createdAt: "desc" }, select: { ip: true } });
    expect(session?.ip).not.toBe("203.0.113.9");
    const foreign = await postJson(api.url, "system.ping", {}, { ...auth(), origin: "https://points.example", ...forwarded });
    expect(foreign.status).toBe(403);
  });

  it("with TRUST_PROXY=1, the proxy's headers are believed: __Host- Secure cookie, HSTS, client address from X-Forwarded-For", async () => {
    const trusting = await createTestDeps({ REDIS_KEY_PREFIX: deps.env.REDIS_KEY_PREFIX, TRUST_PROXY: "1" });
    const server = await startApi(trusting);
    try {
      const forwarded = { "x-forwarded-proto": "https", "x-forwarded-host": "points.example", "x-forwarded-for": "198.51.100.1, 203.0.113.9" };
      const res = await signIn(server.url, forwarded);
      expect(res.status).toBe(200);
      const cookie = res.headers.get("set-cookie") ?? "";
      expect(cookie).toMatch(/^__Host-fp_session=[A-Za-z0-9_-]+; Path=\/; HttpOnly; SameSite=Lax; Max-Age=\d+; Secure$/);
      expect(res.headers.get("strict-transport-security")).toMatch(/max-age=\d+/);
      const session = await trusting.db.adminSession.findFirst({ orderBy: { createdAt: "desc" }, select: { ip: true } });
      expect(session?.ip).toBe("203.0.113.9");
      // The cookie works under its prefixed name over HTTPS, and the bare name does not.
      const token = cookie.split(";")[0]!.split("=")[1]!;
      const me = (c: string) =>
        fetch(`${server.url}/api/trpc/auth.me`, { headers: { cookie: c, "x-forwarded-proto": "https" } }).then((r) => r.json());
      expect(await me(`__Host-fp_session=${token}`)).toMatchObject({ result: { data: { role: "viewer" } } });
      expect(await me(`fp_session=${token}`)).toEqual({ result: { data: null } });
      const sameOrigin = await postJson(server.url, "system.ping", {}, { ...auth(), origin: "https://points.example", ...forwarded });
      expect(sameOrigin.status).toBe(200);
    } finally {
      await server.close();
      await closeDeps(trusting);
    }
  });

  it("API responses forbid framing, sniffing and referrers", async () => {
    for (const res of [await fetch(`${api.url}/api/health`), await fetch(`${api.url}/api/trpc/system.ping`, { method: "POST", headers: { "content-type": "application/json", ...auth() }, body: "{}" })]) {
      expect(res.headers.get("x-frame-options")).toBe("DENY");
      expect(res.headers.get("x-content-type-options")).toBe("nosniff");
      expect(res.headers.get("referrer-policy")).toBe("no-referrer");
      expect(res.headers.get("content-security-policy")).toContain("frame-ancestors 'none'");
    }
  });
});

describe("edges", () => {
  it("a malformed session cookie is no session: 401, not 500", async () => {
    const res = await fetch(`${api.url}/api/trpc/audit.list`, { headers: { cookie: "fp_session=%E0%A4%A" } });
    expect(res.status).toBe(401);
    expect(appCode(await res.json())).toBe("UNAUTHENTICATED");
  });

  it("an audit cursor past the bigint range is 400", async () => {
    const { caller } = await adminCaller(deps, "viewer");
    await expect(caller.audit.list({ limit: 5, cursor: "9999999999999999999" })).rejects.toMatchObject({ code: "BAD_REQUEST" });
    await expect(caller.audit.list({ limit: 5, cursor: "9223372036854775807" })).resolves.toMatchObject({ items: expect.any(Array) });
  });

  it("every 503 carries Retry-After, DEGRADED included", async () => {
    await setSwitch(deps, { name: "ledgerReads", on: false, reason: "shed reads" }, operator);
    try {
      const userId = await funded();
      const res = await fetch(`${api.url}/api/trpc/credit.ledger?input=${encodeURIComponent(JSON.stringify({ userId, creditTypeId }))}`, {
        headers: auth(),
      });
      expect(res.status).toBe(503);
      expect((await res.json()) as ErrorBody).toMatchObject({ error: { data: { appCode: "DEGRADED", retryAfterMs: expect.any(Number) } } });
      expect(Number(res.headers.get("retry-after"))).toBeGreaterThanOrEqual(1);
    } finally {
      await setSwitch(deps, { name: "ledgerReads", on: true, reason: "back to normal" }, operator);
    }
  });

  it("the same X-Request-Id sent with another input while the first runs is 422 IDEMPOTENCY_KEY_REUSED, not 409", async () => {
    const userId = await funded();
    const requestId = uid("req");
    const body = { userId, creditTypeId, amount: 1, businessCode: "order.pay", businessId: uid("o") };
    deps.failpoints.set("credit.beforeCommit=delay:500");
    try {
      const first = postJson(api.url, "credit.deduct", body, { ...auth(), "x-request-id": requestId });
      await new Promise((r) => setTimeout(r, 100));
      const other = await postJson(api.url, "credit.deduct", { ...body, amount: 2 }, { ...auth(), "x-request-id": requestId });
      expect(other.status).toBe(422);
      expect(appCode(other.json)).toBe("IDEMPOTENCY_KEY_REUSED");
      const same = await postJson(api.url, "credit.deduct", body, { ...auth(), "x-request-id": requestId });
      expect(same.status).toBe(409);
      expect(appCode(same.json)).toBe("DUPLICATE_REQUEST_IN_FLIGHT");
      expect((await first).status).toBe(200);
    } finally {
      deps.failpoints.set(undefined);
    }
  });

  it("X-Request-Id replays operator mutations too: the same change sent twice is made once", async () => {
    const admin = await adminCaller(deps, "admin", { requestId: uid("req") });
    const first = await admin.caller.switch.set({ name: "outboxRelay", on: true, reason: "replayed change" });
    const again = await admin.caller.switch.set({ name: "outboxRelay", on: true, reason: "replayed change" });
    expect(again).toEqual(first);
    expect(await deps.db.auditLog.count({ where: { actor: admin.email, action: "switch.set" } })).toBe(1);
  });

  it("balances stay exact: a grant past 2^53 − 1 is 422 BALANCE_LIMIT_EXCEEDED and changes nothing", async () => {
    const userId = await funded(1);
    await deps.db.account.update({
      where: { userId_creditTypeId: { userId, creditTypeId } },
      data: { balance: BigInt(Number.MAX_SAFE_INTEGER) - 10n },
    });
    const res = await postJson(api.url, "credit.grant", { userId, creditTypeId, amount: 11, businessCode: "test.grant", businessId: uid("g") }, auth());
    expect(res.status).toBe(422);
    expect(appCode(res.json)).toBe("BALANCE_LIMIT_EXCEEDED");
    const fits = await postJson(api.url, "credit.grant", { userId, creditTypeId, amount: 10, businessCode: "test.grant", businessId: uid("g") }, auth());
    expect(fits.json).toMatchObject({ result: { data: { balanceAfter: Number.MAX_SAFE_INTEGER } } });
  });

  it("ids holding ':' never share a bucket: (a:creditType:b, c) and (a, b:creditType:c) are different accounts", async () => {
    const limited = await createTestDeps({ RATE_LIMIT_PER_SECOND: "0.001", RATE_LIMIT_BURST: "1" });
    try {
      const one = { procedure: "t", userId: "a:creditType:b", creditTypeId: "c" };
      const two = { procedure: "t", userId: "a", creditTypeId: "b:creditType:c" };
      expect(await checkRateLimit(limited, one)).not.toBeNull();
      await expect(checkRateLimit(limited, one)).rejects.toMatchObject({ code: "RATE_LIMITED" });
      expect(await checkRateLimit(limited, two)).not.toBeNull();
    } finally {
      await closeDeps(limited);
    }
  });
});

describe("exposure", () => {
  it("with METRICS_TOKEN set, /api/metrics wants it", async () => {
    const token = "a-metrics-token-of-some-length";
    const guarded = await createTestDeps({ REDIS_KEY_PREFIX: deps.env.REDIS_KEY_PREFIX, METRICS_TOKEN: token });
    const server = await startApi(guarded);
    try {
      expect((await fetch(`${server.url}/api/metrics`)).status).toBe(401);
      expect((await fetch(`${server.url}/api/metrics`, { headers: { authorization: "Bearer wrong-token-of-some-length" } })).status).toBe(401);
      const ok = await fetch(`${server.url}/api/metrics`, { headers: { authorization: `Bearer ${token}` } });
      expect(ok.status).toBe(200);
      expect(await ok.text()).toContain("fp_api_requests_total");
    } finally {
      await server.close();
      await closeDeps(guarded);
    }
  });
});
