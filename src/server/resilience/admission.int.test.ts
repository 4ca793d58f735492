import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Deps } from "~/server/infra/deps";
import type { RunningServer } from "~/server/http/server";
import { closeDeps, createTestDeps, uid } from "~/test/deps";
import { ensureCreditType, makeApiKey, postJson, serviceCaller, startApi } from "~/test/api";
import { resetCircuit } from "./circuit-control";
import { setSwitch } from "./switches";
import { clearSettings } from "./testing";

// Admission control on the real API, over HTTP, as a client sees it.
type ErrorBody = { error: { data: { appCode: string; httpStatus: number; retryAfterMs?: number } } };

let deps: Deps;
let api: RunningServer;
let key: string;
let creditTypeId: string;
const operator = { actor: { email: "ops@test.local", role: "operator" } };

beforeAll(async () => {
  deps = await createTestDeps();
  await clearSettings(deps.db);
  creditTypeId = await ensureCreditType(deps, "admission-points");
  api = await startApi(deps);
  key = await makeApiKey(deps);
});

afterAll(async () => {
  deps.failpoints.set(undefined);
  await clearSettings(deps.db);
  await api?.close();
  await closeDeps(deps);
});

async function funded(amount = 1_000): Promise<string> {
  const userId = uid("u");
  const caller = await serviceCaller(deps);
  await caller.credit.grant({ userId, creditTypeId, amount, businessCode: "test.grant", businessId: uid("g") });
  return userId;
}

function deduct(userId: string, headers: Record<string, string> = {}, amount = 1, businessId = uid("o")) {
  return postJson(
    api.url,
    "credit.deduct",
    { userId, creditTypeId, amount, businessCode: "order.pay", businessId },
    { authorization: `Bearer ${key}`, ...headers },
  );
}

describe("credit.deduct behind admission control", () => {
  it("answers 429 RATE_LIMITED with retryAfterMs and Retry-After once a user's bucket is empty; replays cost no token", async () => {
    const userId = await funded();
    const businessId = uid("o");
    const first = await deduct(userId, { "x-request-id": `req-${userId}` }, 1, businessId);
    expect(first.status).toBe(200);
    const started = Date.now();
    const burst = await Promise.all(Array.from({ length: 14 }, () => deduct(userId)));
    const elapsedS = (Date.now() - started) / 1000;
    const statuses = burst.map((r) => r.status);
    // 9 tokens left after the first call, plus what refills (5/s) while the
    // calls arrive — on a loaded machine that takes a while.
    const ok = statuses.filter((s) => s === 200).length;
    expect(ok).toBeGreaterThanOrEqual(9);
    expect(ok).toBeLessThanOrEqual(9 + Math.ceil(elapsedS * 5));
    expect(ok).toBeLessThan(14);
    const limited = burst.find((r) => r.status === 429)!;
    expect(limited).toBeDefined();
    const data = (limited.json as ErrorBody).error.data;
    expect(data).toMatchObject({ appCode: "RATE_LIMITED", httpStatus: 429 });
    expect(data.retryAfterMs).toBeGreaterThan(0);
    expect(data.retryAfterMs).toBeLessThanOrEqual(200);
    expect(limited.headers.get("retry-after")).toBe("1");

    // The same request id again: the recorded result, not a 429 (replay runs before admission).
    const replay = await deduct(userId, { "x-request-id": `req-${userId}` }, 1, businessId);
    expect(replay.status).toBe(200);
    expect(replay.json).toEqual(first.json);
  });

  it("opens the breaker after 10 infrastructure failures (credit.beforeCommit=error): 503 CIRCUIT_OPEN with Retry-After", async () => {
    const users = await Promise.all(Array.from({ length: 11 }, () => funded()));
    deps.failpoints.set("credit.beforeCommit=error");
    for (const userId of users.slice(0, 10)) {
      const res = await deduct(userId);
      expect(res.status).toBe(500);
    }
    deps.failpoints.set(undefined);
    const refused = await deduct(users[10]!);
    expect(refused.status).toBe(503);
    const data = (refused.json as ErrorBody).error.data;
    expect(data.appCode).toBe("CIRCUIT_OPEN");
    expect(data.retryAfterMs).toBeGreaterThan(25_000);
    expect(data.retryAfterMs).toBeLessThanOrEqual(30_000);
    expect(Number(refused.headers.get("retry-after"))).toBeGreaterThanOrEqual(26);
    // Refused before any work: the account is untouched.
    expect((await (await serviceCaller(deps)).credit.account({ userId: users[10]!, creditTypeId })).balance).toBe(1_000);

    const metrics = await fetch(`${api.url}/api/metrics`).then((r) => r.text());
    expect(metrics).toContain('fp_circuit_state{name="credit.deduct"} 2');
    expect(metrics).toMatch(/fp_circuit_transitions_total\{name="credit.deduct",from="CLOSED",to="OPEN"\} 1/);
    expect(metrics).toMatch(/fp_circuit_decisions_total\{name="credit.deduct",decision="rejected"\} \d+/);
    expect(metrics).toMatch(/fp_rate_limit_decisions_total\{procedure="credit.deduct",decision="allowed"\} \d+/);

    await resetCircuit(deps, { name: "credit.deduct", reason: "test over" }, operator);
    expect((await deduct(users[10]!)).status).toBe(200);
  });

  it("business refusals (INSUFFICIENT_BALANCE) never open it", async () => {
    for (let i = 0; i < 12; i++) {
      const userId = await funded(1);
      const res = await deduct(userId, {}, 5);
      expect((res.json as ErrorBody).error.data.appCode).toBe("INSUFFICIENT_BALANCE");
    }
    expect((await deduct(await funded())).status).toBe(200);
  });
});

describe("credit.ledger behind the ledgerReads switch", () => {
  it("answers 503 DEGRADED while the switch is off, and reads again once it is on", async () => {
    const userId = await funded();
    const read = () =>
      fetch(`${api.url}/api/trpc/credit.ledger?input=${encodeURIComponent(JSON.stringify({ userId, creditTypeId }))}`, {
        headers: { authorization: `Bearer ${key}` },
      });
    expect((await read()).status).toBe(200);
    const admin = { actor: { email: "admin@test.local", role: "admin" } };
    await setSwitch(deps, { name: "ledgerReads", on: false, reason: "shed history reads during the sale" }, admin);
    const off = await read();
    expect(off.status).toBe(503);
    expect(((await off.json()) as ErrorBody).error.data.appCode).toBe("DEGRADED");
    // Balance changes are untouched by it.
    expect((await deduct(userId)).status).toBe(200);
    await setSwitch(deps, { name: "ledgerReads", on: true, reason: "sale over" }, admin);
    expect((await read()).status).toBe(200);
  });
});
