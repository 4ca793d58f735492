import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Deps } from "~/server/infra/deps";
import type { RunningServer } from "./server";
import { closeDeps, createTestDeps, uid } from "~/test/deps";
import { ensureCreditType, makeApiKey, postJson, startApi } from "~/test/api";
import { createApiKey, revokeApiKey } from "~/server/identity/api-keys";
import { startOwnRedis } from "~/server/credit/testing";

type ErrorBody = { error: { message: string; data: { appCode: string; httpStatus: number; zodError?: unknown[] } } };

let deps: Deps;
let api: RunningServer;
let key: string;

beforeAll(async () => {
  deps = await createTestDeps();
  await ensureCreditType(deps);
  api = await startApi(deps);
  key = await makeApiKey(deps);
});

afterAll(async () => {
  await api.close();
  await closeDeps(deps);
});

function grantBody(userId: string, businessId = uid("biz")) {
  return { userId, creditTypeId: "points", amount: 100, businessCode: "contract", businessId };
}

async function ledgerRows(userId: string): Promise<number> {
  return deps.db.ledgerEntry.count({ where: { userId } });
}

describe("the API over HTTP, as curl calls it", () => {
  it("grants with a key, echoing the client's X-Request-Id", async () => {
    const user = uid("u");
    const res = await postJson(api.url, "credit.grant", grantBody(user), {
      authorization: `Bearer ${key}`,
      "x-request-id": "contract-req-1",
    });
    expect(res.status).toBe(200);
    expect(res.headers.get("x-request-id")).toBe("contract-req-1");
    const data = (res.json as { result: { data: { balanceAfter: number; idempotent: boolean; transactionId: string } } })
      .result.data;
    expect(data).toMatchObject({ balanceAfter: 100, idempotent: false });
    expect(data.transactionId).toMatch(/^[0-9a-f-]{36}$/);

    const account = await fetch(
      `${api.url}/api/trpc/credit.account?input=${encodeURIComponent(JSON.stringify({ userId: user, creditTypeId: "points" }))}`,
      { headers: { authorization: `Bearer ${key}` } },
    );
    expect(account.status).toBe(200);
    expect(((await account.json()) as { result: { data: { balance: number } } }).result.data.balance).toBe(100);
  });

  it("assigns a request id when the client sends none", async () => {
    const res = await fetch(`${api.url}/api/health`);
    expect(res.headers.get("x-request-id")).toMatch(/^[0-9a-f-]{36}$/);
    expect(await res.json()).toEqual({ status: "ok", postgres: "up", redis: "up" });
  });

  it("readiness is for balancers: /api/ready stays 200 while Redis is down and /api/health says 503 redis down", async () => {
    expect(await fetch(`${api.url}/api/ready`).then(async (r) => [r.status, await r.json()])).toEqual([200, { status: "ready" }]);
    const redis = await startOwnRedis();
    const own = await createTestDeps({ REDIS_URL: redis.url });
    const server = await startApi(own);
    try {
      await redis.kill();
      const health = await fetch(`${server.url}/api/health`);
      expect(health.status).toBe(503);
      expect(health.headers.get("retry-after")).toBe("1");
      expect(await health.json()).toMatchObject({ status: "degraded", postgres: "up", redis: "down" });
      // Every instance shares that Redis: no reason to send the traffic elsewhere.
      const ready = await fetch(`${server.url}/api/ready`);
      expect([ready.status, await ready.json()]).toEqual([200, { status: "ready" }]);
      expect(ready.headers.get("cache-control")).toBe("no-store");
    } finally {
      await server.close();
      await closeDeps(own);
      await redis.kill();
    }
  });

  it("refuses a call without a key, or with a wrong or revoked key: 401 UNAUTHENTICATED, nothing written", async () => {
    const user = uid("u");
    const revoked = await createApiKey(deps.db, { name: "revoked", scopes: [] });
    // Used once so the key sits in the lookup cache; revocation must still win.
    expect((await postJson(api.url, "credit.account", {}, { authorization: `Bearer ${revoked.key}` })).status).not.toBe(401);
    expect(await revokeApiKey(deps.db, revoked.id, deps.clock)).toBe(true);
    for (const headers of [
      {} as Record<string, string>,
      { authorization: "Bearer fpk_AAAAAAAA_notarealkeynotarealkey00" },
      { authorization: key },
      { authorization: `Bearer ${revoked.key}` },
    ]) {
      const res = await postJson(api.url, "credit.grant", grantBody(user), headers);
      expect(res.status).toBe(401);
      expect((res.json as ErrorBody).error.data.appCode).toBe("UNAUTHENTICATED");
    }
    expect(await ledgerRows(user)).toBe(0);
  });

  it.each([
    ["negative amount", { amount: -1 }],
    ["fractional amount", { amount: 1.5 }],
    ["amount over 10^12", { amount: 1_000_000_000_001 }],
    ["amount as a string", { amount: "100" }],
    ["empty userId", { userId: "" }],
    ["userId with a space", { userId: "a b" }],
    ["userId of 65 chars", { userId: "u".repeat(65) }],
    ["businessId of 129 chars", { businessId: "b".repeat(129) }],
    ["unknown field", { amout: 5 }],
  ])("rejects %s with 400 VALIDATION and writes nothing", async (_label, patch) => {
    const user = uid("u");
    const body = { ...grantBody(user), ...patch };
    const res = await postJson(api.url, "credit.grant", body, { authorization: `Bearer ${key}` });
    expect(res.status).toBe(400);
    const err = (res.json as ErrorBody).error;
    expect(err.data.appCode).toBe("VALIDATION");
    expect(Array.isArray(err.data.zodError)).toBe(true);
    expect(await ledgerRows(user)).toBe(0);
    expect(await deps.db.operation.count({ where: { userId: user } })).toBe(0);
  });

  it("refuses multipart, text/plain and urlencoded POSTs before anything runs", async () => {
    const user = uid("u");
    const json = JSON.stringify(grantBody(user));
    const form = new FormData();
    form.set("input", json);
    const bodies: [string, RequestInit][] = [
      ["multipart", { body: form }],
      ["text/plain", { body: json, headers: { "content-type": "text/plain" } }],
      ["urlencoded", { body: `input=${encodeURIComponent(json)}`, headers: { "content-type": "application/x-www-form-urlencoded" } }],
    ];
    for (const [label, init] of bodies) {
      const res = await fetch(`${api.url}/api/trpc/credit.grant`, {
        method: "POST",
        ...init,
        headers: { authorization: `Bearer ${key}`, ...(init.headers as Record<string, string> | undefined) },
      });
      expect(res.status, label).toBe(415);
      expect(((await res.json()) as ErrorBody).error.data.appCode).toBe("UNSUPPORTED_MEDIA_TYPE");
    }
    // An input-less mutation too (tRPC alone would run it for multipart).
    const logout = await fetch(`${api.url}/api/trpc/auth.logout`, { method: "POST", body: new FormData() });
    expect(logout.status).toBe(415);
    expect(await ledgerRows(user)).toBe(0);
  });

  it("refuses a foreign Origin or a cross-site fetch with 403, nothing written", async () => {
    const user = uid("u");
    const a = await postJson(api.url, "credit.grant", grantBody(user), {
      authorization: `Bearer ${key}`,
      origin: "https://evil.example",
    });
    expect(a.status).toBe(403);
    expect((a.json as ErrorBody).error.data.appCode).toBe("FORBIDDEN");
    const b = await postJson(api.url, "credit.grant", grantBody(user), {
      authorization: `Bearer ${key}`,
      "sec-fetch-site": "cross-site",
    });
    expect(b.status).toBe(403);
    expect(await ledgerRows(user)).toBe(0);

    const sameOrigin = await postJson(api.url, "credit.grant", grantBody(user), {
      authorization: `Bearer ${key}`,
      origin: api.url,
      "sec-fetch-site": "same-origin",
    });
    expect(sameOrigin.status).toBe(200);
    expect(await ledgerRows(user)).toBe(1);
  });

  it("refuses a body over the limit with 413", async () => {
    const res = await postJson(api.url, "credit.grant", { pad: "x".repeat(deps.env.BODY_LIMIT_BYTES + 10) }, {
      authorization: `Bearer ${key}`,
    });
    expect(res.status).toBe(413);
    expect((res.json as ErrorBody).error.data.appCode).toBe("PAYLOAD_TOO_LARGE");
  });

  it("will not run a mutation through GET", async () => {
    const user = uid("u");
    const res = await fetch(
      `${api.url}/api/trpc/credit.grant?input=${encodeURIComponent(JSON.stringify(grantBody(user)))}`,
      { headers: { authorization: `Bearer ${key}` } },
    );
    expect(res.status).toBe(405);
    expect(await ledgerRows(user)).toBe(0);
  });

  it("is idempotent by business key, and refuses the key for other values", async () => {
    const user = uid("u");
    const body = grantBody(user);
    const first = await postJson(api.url, "credit.grant", body, { authorization: `Bearer ${key}` });
    const again = await postJson(api.url, "credit.grant", body, { authorization: `Bearer ${key}` });
    type Ok = { result: { data: { transactionId: string; idempotent: boolean; balanceAfter: number } } };
    expect((again.json as Ok).result.data).toMatchObject({
      transactionId: (first.json as Ok).result.data.transactionId,
      idempotent: true,
      balanceAfter: 100,
    });
    const other = await postJson(api.url, "credit.grant", { ...body, amount: 101 }, { authorization: `Bearer ${key}` });
    expect(other.status).toBe(422);
    expect((other.json as ErrorBody).error.data.appCode).toBe("IDEMPOTENCY_KEY_REUSED");
    expect(await ledgerRows(user)).toBe(1);
  });

  it("names an unknown credit type with 404", async () => {
    const res = await postJson(api.url, "credit.grant", { ...grantBody(uid("u")), creditTypeId: "nope" }, {
      authorization: `Bearer ${key}`,
    });
    expect(res.status).toBe(404);
    expect((res.json as ErrorBody).error.data.appCode).toBe("CREDIT_TYPE_NOT_FOUND");
  });

  it("serves Prometheus metrics with procedure counts by outcome", async () => {
    const res = await fetch(`${api.url}/api/metrics`);
    const text = await res.text();
    expect(res.status).toBe(200);
    expect(text).toMatch(/fp_api_requests_total\{procedure="credit.grant",outcome="ok"\} \d+/);
    expect(text).toMatch(/fp_api_requests_total\{procedure="credit.grant",outcome="VALIDATION"\} \d+/);
    expect(text).toContain("fp_api_request_duration_seconds_bucket");
    expect(text).toMatch(/fp_request_guard_refusals_total\{reason="content-type"\} \d+/);
  });
});
