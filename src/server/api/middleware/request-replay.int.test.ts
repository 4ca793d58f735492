import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createTestDeps, closeDeps, uid } from "~/test/deps";
import { ensureCreditType, makeApiKey, postJson, startApi } from "~/test/api";
import type { Deps } from "~/server/infra/deps";
import type { RunningServer } from "~/server/http/server";
import { accountChecks, deletePrefix, NO_RATE_LIMIT, sparePort } from "~/server/credit/testing";
import { canonicalJson, requestHash } from "~/server/resilience/request-hash";
import { deleteExpiredRequestRecords } from "~/server/resilience/request-record";

type ErrorBody = { error: { data: { appCode: string; retryAfterMs?: number; httpStatus: number } } };
const appCode = (json: unknown) => (json as ErrorBody).error.data.appCode;

describe("X-Request-Id replay", () => {
  let deps: Deps;
  let api: RunningServer;
  let key: string;
  let creditTypeId: string;

  beforeAll(async () => {
    deps = await createTestDeps({ ...NO_RATE_LIMIT });
    creditTypeId = await ensureCreditType(deps, "replay-points");
    api = await startApi(deps);
    key = await makeApiKey(deps);
  });

  afterAll(async () => {
    deps.failpoints.set(undefined);
    await api?.close();
    await closeDeps(deps);
  });

  const post = (procedure: string, body: unknown, requestId?: string, apiKey = key) =>
    postJson(api.url, procedure, body, {
      authorization: `Bearer ${apiKey}`,
      ...(requestId ? { "x-request-id": requestId } : {}),
    });

  async function account(balance: number): Promise<string> {
    const userId = uid("u");
    const res = await post("credit.grant", { userId, creditTypeId, amount: balance, businessCode: "test.grant", businessId: uid("g") });
    expect(res.status).toBe(200);
    return userId;
  }

  it("hashes procedure + input independently of key order", () => {
    expect(canonicalJson({ b: 1, a: { d: [1, { y: 2, x: 1 }], c: null } })).toBe('{"a":{"c":null,"d":[1,{"x":1,"y":2}]},"b":1}');
    expect(requestHash("credit.deduct", { a: 1, b: 2 })).toBe(requestHash("credit.deduct", { b: 2, a: 1 }));
    expect(requestHash("credit.deduct", { a: 1 })).not.toBe(requestHash("credit.grant", { a: 1 }));
  });

  it("the same id 20× at once runs once; after Redis loses everything the stored result is replayed", async () => {
    const userId = await account(100);
    const body = { userId, creditTypeId, amount: 10, businessCode: "order.pay", businessId: uid("o") };
    const requestId = uid("req");
    deps.failpoints.set("credit.beforeCommit=delay:300"); // keep the first in flight while the others arrive
    let answers;
    try {
      answers = await Promise.all(Array.from({ length: 20 }, () => post("credit.deduct", body, requestId)));
    } finally {
      deps.failpoints.set(undefined);
    }
    const ok = answers.filter((a) => a.status === 200);
    const inFlight = answers.filter((a) => a.status === 409);
    expect(ok.length + inFlight.length).toBe(20);
    expect(ok.length).toBeGreaterThanOrEqual(1);
    for (const a of inFlight) {
      expect(a.json).toMatchObject({ error: { data: { appCode: "DUPLICATE_REQUEST_IN_FLIGHT", retryAfterMs: expect.any(Number) } } });
    }
    const first = ok[0]!.json as { result: { data: { transactionId: string; balanceAfter: number } } };
    for (const a of ok) expect(a.json).toEqual(first);
    expect(first.result.data).toMatchObject({ balanceAfter: 90, idempotent: false });
    for (const a of answers) expect(a.headers.get("x-request-id")).toBe(requestId);

    // One execution: one ledger row, one debit, one completed operation. (If a
    // Redis command timed out on a loaded machine, a duplicate may have reached
    // Postgres, where the record's key rolled it back: a failed operation, no effect.)
    const ops = await deps.db.operation.findMany({ where: { requestId }, select: { status: true, errorCode: true } });
    expect(ops.filter((o) => o.status === "completed")).toHaveLength(1);
    for (const o of ops.filter((x) => x.status !== "completed")) {
      expect(o).toEqual({ status: "failed", errorCode: "DUPLICATE_REQUEST_IN_FLIGHT" });
    }
    expect(await deps.db.ledgerEntry.count({ where: { businessId: body.businessId } })).toBe(1);

    // Redis restarted empty (only this test's own prefix is removed).
    expect(await deletePrefix(deps.env.REDIS_URL, deps.env.REDIS_KEY_PREFIX, deps.env.REDIS_CLUSTER_NODES)).toBeGreaterThan(0);
    const replay = await post("credit.deduct", body, requestId);
    expect(replay.status).toBe(200);
    expect(replay.json).toEqual(first);
    // Served from the Postgres record: the attempt met the record's key inside
    // its transaction and rolled back, so nothing was applied twice.
    expect(await deps.db.ledgerEntry.count({ where: { businessId: body.businessId } })).toBe(1);
    expect(await deps.db.operation.count({ where: { requestId, status: "completed" } })).toBe(1);
    // Now cached again: served without touching the record.
    await deps.db.requestRecord.updateMany({ where: { requestId }, data: { response: { tampered: true } } });
    expect((await post("credit.deduct", body, requestId)).json).toEqual(first);

    // The same id with another input or another procedure: 422, nothing runs.
    const other = await post("credit.deduct", { ...body, amount: 11 }, requestId);
    expect(other.status).toBe(422);
    expect(appCode(other.json)).toBe("IDEMPOTENCY_KEY_REUSED");
    const otherProc = await post("credit.grant", body, requestId);
    expect(otherProc.status).toBe(422);
    expect(appCode(otherProc.json)).toBe("IDEMPOTENCY_KEY_REUSED");
    const [check] = await accountChecks(deps.db, [userId]);
    expect(check).toMatchObject({ balance: 90, debits: 10 });
  });

  it("keeps each caller's ids apart: another key with the same id executes its own request", async () => {
    const userId = await account(100);
    const requestId = uid("req");
    const otherKey = await makeApiKey(deps);
    const a = await post("credit.deduct", { userId, creditTypeId, amount: 1, businessCode: "order.pay", businessId: uid("o") }, requestId);
    const bBody = { userId, creditTypeId, amount: 2, businessCode: "order.pay", businessId: uid("o") };
    const b = await post("credit.deduct", bBody, requestId, otherKey);
    expect([a.status, b.status]).toEqual([200, 200]);
    expect(b.json).toMatchObject({ result: { data: { balanceAfter: 97 } } });
    // Status by request id, too, is the caller's own.
    const status = (apiKey: string) =>
      fetch(`${api.url}/api/trpc/operation.status?input=${encodeURIComponent(JSON.stringify({ requestId }))}`, {
        headers: { authorization: `Bearer ${apiKey}` },
      }).then((r) => r.json() as Promise<{ result: { data: { result: { balanceAfter: number } } } }>);
    expect((await status(otherKey)).result.data.result.balanceAfter).toBe(97);
    expect((await status(key)).result.data.result.balanceAfter).toBe(99);
  });

  it("replays a final business error, but not a retryable one", async () => {
    const userId = await account(5);
    const body = { userId, creditTypeId, amount: 8, businessCode: "order.pay", businessId: uid("o") };
    const requestId = uid("req");
    const first = await post("credit.deduct", body, requestId);
    expect([first.status, appCode(first.json)]).toEqual([422, "INSUFFICIENT_BALANCE"]);
    await post("credit.grant", { userId, creditTypeId, amount: 10, businessCode: "test.grant", businessId: uid("g") });
    // The recorded answer stands for this id, even from Postgres alone …
    await deletePrefix(deps.env.REDIS_URL, deps.env.REDIS_KEY_PREFIX);
    const again = await post("credit.deduct", body, requestId);
    expect([again.status, appCode(again.json)]).toEqual([422, "INSUFFICIENT_BALANCE"]);
    // … while a new id is a new request.
    expect((await post("credit.deduct", body, uid("req"))).status).toBe(200);

    // OPERATION_LOCKED is not recorded: the same id goes through once the account is free.
    const quick = await createTestDeps({ LOCK_WAIT_MS: "50", REDIS_KEY_PREFIX: deps.env.REDIS_KEY_PREFIX, ...NO_RATE_LIMIT });
    const quickApi = await startApi(quick);
    try {
      quick.failpoints.set("credit.beforeCommit=delay:400");
      const lockedId = uid("req");
      const busy = postJson(quickApi.url, "credit.deduct", { ...body, amount: 1, businessId: uid("o") }, { authorization: `Bearer ${key}` });
      await new Promise((r) => setTimeout(r, 100));
      const lockedBody = { ...body, amount: 1, businessId: uid("o") };
      const locked = await postJson(quickApi.url, "credit.deduct", lockedBody, { authorization: `Bearer ${key}`, "x-request-id": lockedId });
      expect([locked.status, appCode(locked.json)]).toEqual([409, "OPERATION_LOCKED"]);
      expect((await busy).status).toBe(200);
      quick.failpoints.set(undefined);
      const retried = await postJson(quickApi.url, "credit.deduct", lockedBody, { authorization: `Bearer ${key}`, "x-request-id": lockedId });
      expect(retried.status).toBe(200);
      expect(await quick.db.requestRecord.count({ where: { requestId: lockedId } })).toBe(1);
    } finally {
      quick.failpoints.set(undefined);
      await quickApi.close();
      await closeDeps(quick);
    }
  });

  it("only client-sent ids are recorded", async () => {
    const userId = await account(10);
    const res = await post("credit.deduct", { userId, creditTypeId, amount: 1, businessCode: "order.pay", businessId: uid("o") });
    expect(res.status).toBe(200);
    const generated = res.headers.get("x-request-id");
    expect(generated).toBeTruthy();
    expect(await deps.db.requestRecord.count({ where: { requestId: generated! } })).toBe(0);
  });

  it("without Redis, the Postgres key still lets only one of concurrent duplicates execute", async () => {
    const port = await sparePort(); // nothing listens there
    const noRedis = await createTestDeps({ REDIS_URL: `redis://127.0.0.1:${port}`, REDIS_COMMAND_TIMEOUT_MS: "100", ...NO_RATE_LIMIT });
    const noRedisApi = await startApi(noRedis);
    try {
      const userId = await account(100);
      const body = { userId, creditTypeId, amount: 10, businessCode: "order.pay", businessId: uid("o") };
      const requestId = uid("req");
      const started = Date.now();
      const answers = await Promise.all(
        Array.from({ length: 10 }, () =>
          postJson(noRedisApi.url, "credit.deduct", body, { authorization: `Bearer ${key}`, "x-request-id": requestId }),
        ),
      );
      expect(Date.now() - started).toBeLessThan(10_000);
      const ok = answers.filter((a) => a.status === 200);
      expect(ok.length).toBeGreaterThanOrEqual(1);
      for (const a of ok) expect(a.json).toEqual(ok[0]!.json);
      for (const a of answers.filter((x) => x.status !== 200)) {
        expect(["DUPLICATE_REQUEST_IN_FLIGHT", "VERSION_CONFLICT"]).toContain(appCode(a.json));
      }
      expect(ok[0]!.json).toMatchObject({ result: { data: { balanceAfter: 90, idempotent: false } } });
      expect(await deps.db.ledgerEntry.count({ where: { businessId: body.businessId } })).toBe(1);
      expect(await deps.db.requestRecord.count({ where: { requestId } })).toBe(1);
      expect(await deps.db.operation.count({ where: { requestId, status: "completed" } })).toBe(1);
      const [check] = await accountChecks(deps.db, [userId]);
      expect(check).toMatchObject({ balance: 90, debits: 10 });
      const replay = await postJson(noRedisApi.url, "credit.deduct", body, { authorization: `Bearer ${key}`, "x-request-id": requestId });
      expect(replay.json).toEqual(ok[0]!.json);
      const degraded = await noRedis.metrics.registry.getSingleMetricAsString("fp_degraded_total");
      expect(degraded).toMatch(/component="request-replay"/);
      expect(degraded).toMatch(/component="lock"/);
    } finally {
      await noRedisApi.close();
      await closeDeps(noRedis);
    }
  });

  it("records grants too, and a worker task deletes expired records", async () => {
    const userId = uid("u");
    const body = { userId, creditTypeId, amount: 5, businessCode: "test.grant", businessId: uid("g") };
    const requestId = uid("req");
    const first = await post("credit.grant", body, requestId);
    await deletePrefix(deps.env.REDIS_URL, deps.env.REDIS_KEY_PREFIX);
    const again = await post("credit.grant", body, requestId);
    expect(again.json).toEqual(first.json);
    expect(await deps.db.ledgerEntry.count({ where: { businessId: body.businessId } })).toBe(1);
    expect(await deps.db.operation.count({ where: { requestId, status: "completed" } })).toBe(1);

    const record = await deps.db.requestRecord.findFirstOrThrow({ where: { requestId } });
    expect(record.expiresAt.getTime() - record.createdAt.getTime()).toBe(deps.env.REQUEST_ID_TTL_S * 1000);
    await deps.db.requestRecord.update({
      where: { principal_requestId: { principal: record.principal, requestId } },
      data: { expiresAt: new Date(Date.now() - 1000) },
    });
    const deleted = await deleteExpiredRequestRecords(deps.db, new Date());
    expect(deleted).toBeGreaterThanOrEqual(1);
    expect(await deps.db.requestRecord.count({ where: { requestId } })).toBe(0);
  });
});
