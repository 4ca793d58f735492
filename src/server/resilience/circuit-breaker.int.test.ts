import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import type { Deps } from "~/server/infra/deps";
import { ManualClock } from "~/server/infra/clock";
import { AppError } from "~/server/infra/app-error";
import { closeDeps, createTestDeps, uid } from "~/test/deps";
import { adminCaller } from "~/test/api";
import { createCaller } from "~/server/api/root";
import { createContextInner } from "~/server/api/context";
import { admitCall, circuitForcedSetting, circuitKeys, getCircuit, isInfrastructureFailure, recordOutcome, type CircuitName } from "./circuit-breaker";
import { forceCircuit, resetCircuit } from "./circuit-control";
import { startSettingsSync, type SettingsSync } from "~/server/infra/settings-sync";
import { resilienceMetrics } from "./resilience-metrics";
import { clearSettings, startWebhook, waitFor, type Webhook } from "./testing";
import { guardedCaller } from "~/test/guarded-router";

// Two app instances: separate Redis connections and settings caches, one key
// prefix, one database, and one manual clock so the test moves time.
let clock: ManualClock;
let a: Deps;
let b: Deps;
let syncB: SettingsSync;
let hook: Webhook;

const NAME = "credit.deduct" as const;
const operator = { actor: { email: "ops@test.local", role: "operator" } };

beforeAll(async () => {
  hook = await startWebhook();
  clock = new ManualClock(Date.UTC(2030, 0, 1));
  a = await createTestDeps({ ALERT_WEBHOOK_URL: hook.url }, { clock });
  b = await createTestDeps({ REDIS_KEY_PREFIX: a.env.REDIS_KEY_PREFIX }, { clock });
  await clearSettings(a.db);
  syncB = startSettingsSync(b);
  await syncB.ready;
});

afterEach(async () => {
  a.failpoints.set(undefined);
  // One DEL per breaker: on a Redis Cluster one command may not span slots.
  await a.redis.del(...circuitKeys(NAME));
  await a.redis.del(...circuitKeys("flashSale.purchase"));
});

afterAll(async () => {
  await syncB?.stop();
  await clearSettings(a.db);
  await closeDeps(a);
  await closeDeps(b);
  await hook.close();
});

/** Runs `fn` under the breaker `name`: admission, then its outcome recorded. */
async function withCircuit<T>(deps: Deps, name: CircuitName, fn: () => Promise<T>): Promise<T> {
  const ticket = await admitCall(deps, name);
  try {
    const result = await fn();
    await recordOutcome(deps, ticket, "success");
    return result;
  } catch (err) {
    await recordOutcome(deps, ticket, isInfrastructureFailure(err) ? "failure" : "success");
    throw err;
  }
}

async function fail(deps: Deps, times: number): Promise<void> {
  for (let i = 0; i < times; i++) {
    await expect(
      withCircuit(deps, NAME, async () => {
        throw new AppError("UNAVAILABLE", "database down");
      }),
    ).rejects.toMatchObject({ code: "UNAVAILABLE" });
  }
}

async function refusal(deps: Deps): Promise<AppError | null> {
  try {
    const ticket = await admitCall(deps, NAME);
    await recordOutcome(deps, ticket, "success");
    return null;
  } catch (e) {
    if (e instanceof AppError) return e;
    throw e;
  }
}

describe("circuit breaker shared in Redis", () => {
  it("opens on every instance after 10 infrastructure failures (failpoint) within 60 s, and half-opens 30 s later", async () => {
    const caller = await guardedCaller(a);
    a.failpoints.set("breaker.infraFailure=error");
    for (let i = 0; i < 9; i++) {
      await expect(caller.guarded({ userId: uid("u"), creditTypeId: "points" })).rejects.toMatchObject({
        code: "INTERNAL_SERVER_ERROR",
      });
      clock.advance(1_000);
    }
    expect((await getCircuit(b, NAME)).state).toBe("CLOSED");
    expect((await getCircuit(b, NAME)).errorCount).toBe(9);
    await expect(caller.guarded({ userId: uid("u"), creditTypeId: "points" })).rejects.toBeTruthy();
    a.failpoints.set(undefined);

    // Instance B (its own connection) refuses at once, with the time until half-open.
    const refused = await refusal(b);
    expect(refused).toMatchObject({ code: "CIRCUIT_OPEN", retryAfterMs: 30_000 });
    await expect(caller.guarded({ userId: uid("u"), creditTypeId: "points" })).rejects.toMatchObject({
      code: "SERVICE_UNAVAILABLE",
      cause: { code: "CIRCUIT_OPEN" },
    });
    const view = await getCircuit(b, NAME);
    expect(view).toMatchObject({ name: NAME, state: "OPEN", forcedBy: null, openedAt: new Date(clock.nowMs()).toISOString() });

    clock.advance(20_000);
    expect((await refusal(b))?.retryAfterMs).toBe(10_000);
    clock.advance(10_000);
    expect((await getCircuit(a, NAME)).state).toBe("HALF_OPEN");
  });

  it("counts only failures inside the sliding window", async () => {
    await fail(a, 9);
    clock.advance(61_000);
    await fail(b, 9);
    expect(await getCircuit(a, NAME)).toMatchObject({ state: "CLOSED", errorCount: 9 });
    await fail(b, 1);
    expect((await getCircuit(a, NAME)).state).toBe("OPEN");
  });

  it("never opens on business errors, however many", async () => {
    const caller = await guardedCaller(a);
    for (let i = 0; i < 25; i++) {
      await expect(caller.guarded({ userId: uid("u"), creditTypeId: "points", outcome: "business" })).rejects.toMatchObject({
        cause: { code: "INSUFFICIENT_BALANCE" },
      });
    }
    expect(await getCircuit(a, NAME)).toMatchObject({ state: "CLOSED", errorCount: 0 });
    // …whereas bugs and UNAVAILABLE count.
    await expect(caller.guarded({ userId: uid("u"), creditTypeId: "points", outcome: "raw" })).rejects.toBeTruthy();
    await expect(caller.guarded({ userId: uid("u"), creditTypeId: "points", outcome: "infra" })).rejects.toBeTruthy();
    expect((await getCircuit(a, NAME)).errorCount).toBe(2);
  });

  it("half-open admits 5–15 % of 1,000 calls as probes; a successful probe closes it", async () => {
    await fail(a, 10);
    clock.advance(30_000);
    const tickets = [];
    let refused = 0;
    for (let i = 0; i < 1_000; i++) {
      try {
        tickets.push(await admitCall(i % 2 ? a : b, NAME));
      } catch (e) {
        expect(e).toMatchObject({ code: "CIRCUIT_OPEN" });
        expect((e as AppError).retryAfterMs).toBeGreaterThan(0);
        refused++;
      }
    }
    expect(tickets.every((t) => t.probe)).toBe(true);
    expect(tickets.length).toBeGreaterThanOrEqual(50);
    expect(tickets.length).toBeLessThanOrEqual(150);
    expect(refused).toBe(1_000 - tickets.length);

    await recordOutcome(b, tickets[0]!, "success");
    expect(await getCircuit(a, NAME)).toMatchObject({ state: "CLOSED", errorCount: 0, openedAt: null, halfOpenAt: null });
    expect(await refusal(a)).toBeNull();
  });

  it("a failed probe re-opens it for another 30 s", async () => {
    await fail(a, 10);
    clock.advance(30_000);
    const probe = await admitCall(a, NAME);
    expect(probe.probe).toBe(true);
    await recordOutcome(a, probe, "failure");
    expect(await getCircuit(b, NAME)).toMatchObject({ state: "OPEN", openedAt: new Date(clock.nowMs()).toISOString() });
    expect((await refusal(b))?.retryAfterMs).toBe(30_000);
  });

  it("closes when half-open sees no verdict within 2 minutes", async () => {
    await fail(a, 10);
    clock.advance(30_000 + 119_000);
    expect((await getCircuit(a, NAME)).state).toBe("HALF_OPEN");
    clock.advance(1_000);
    expect((await getCircuit(a, NAME)).state).toBe("CLOSED");
  });

  it("logs transitions in metrics and posts an alert when it opens", async () => {
    const m = resilienceMetrics(a.metrics);
    const opened = async () =>
      (await m.circuitTransitions.get()).values.find((v) => v.labels.name === NAME && v.labels.from === "CLOSED" && v.labels.to === "OPEN")
        ?.value ?? 0;
    const before = await opened();
    const alertsBefore = hook.bodies.length;
    await fail(a, 10);
    expect(await opened()).toBe(before + 1);
    const gauge = (await m.circuitState.get()).values.find((v) => v.labels.name === NAME);
    expect(gauge?.value).toBe(2);
    expect(await waitFor(() => hook.bodies.length > alertsBefore, 2_000)).toBeGreaterThanOrEqual(0);
    expect(hook.bodies[alertsBefore]).toMatchObject({
      service: "flashpoints",
      kind: "circuit.open",
      severity: "critical",
      details: { circuit: NAME, from: "CLOSED", forced: false },
    });
    const text = await a.metrics.registry.metrics();
    expect(text).toMatch(/fp_circuit_transitions_total\{name="credit.deduct",from="CLOSED",to="OPEN"\} \d+/);
    expect(text).toContain('fp_circuit_state{name="credit.deduct"} 2');
  });

  it("lets calls through when Redis cannot be asked (fail open, counted)", async () => {
    // A client that is not connected refuses commands at once (no offline queue).
    const offline = await createTestDeps({ REDIS_URL: "redis://127.0.0.1:1" });
    try {
      const m = resilienceMetrics(offline.metrics);
      const count = async () =>
        (await m.circuitDecisions.get()).values.find((v) => v.labels.name === NAME && v.labels.decision === "fail_open")?.value ?? 0;
      const before = await count();
      const started = Date.now();
      const ticket = await admitCall(offline, NAME);
      expect(Date.now() - started).toBeLessThan(1_000);
      expect(ticket).toMatchObject({ tracked: false });
      await recordOutcome(offline, ticket, "failure");
      expect(await count()).toBe(before + 1);
    } finally {
      await closeDeps(offline);
    }
  });
});

describe("configuration", () => {
  it("thresholds changed by an admin apply at once (audited); viewers may read them, operators may not change them", async () => {
    const admin = await adminCaller(a, "admin");
    const op = await adminCaller(a, "operator");
    expect(await op.caller.circuit.config({})).toMatchObject({ errorThreshold: 10, windowMs: 60_000, openMs: 30_000 });
    await expect(op.caller.circuit.configure({ errorThreshold: 3, reason: "not mine" })).rejects.toMatchObject({ code: "FORBIDDEN" });
    await expect(admin.caller.circuit.configure({ probeRatio: 2, reason: "too many probes" })).rejects.toMatchObject({
      code: "BAD_REQUEST",
    });
    const cfg = await admin.caller.circuit.configure({ errorThreshold: 3, openMs: 5_000, reason: "fail faster during the sale" });
    expect(cfg).toMatchObject({ errorThreshold: 3, openMs: 5_000, windowMs: 60_000, halfOpenMs: 120_000, probeRatio: 0.1 });
    try {
      await fail(a, 3);
      expect(await refusal(a)).toMatchObject({ code: "CIRCUIT_OPEN", retryAfterMs: 5_000 });
      const [entry] = await a.db.auditLog.findMany({ where: { actor: admin.email, action: "circuit.configure" } });
      expect(entry).toMatchObject({ reason: "fail faster during the sale", before: { errorThreshold: 10 }, after: { errorThreshold: 3 } });
    } finally {
      await admin.caller.circuit.configure({ errorThreshold: 10, openMs: 30_000, reason: "back to the defaults" });
    }
  });
});

describe("forced states (operators)", () => {
  it("forced OPEN holds until reset — through time and successes, and across a Redis that lost the state", async () => {
    const view = await forceCircuit(a, { name: NAME, state: "OPEN", reason: "database failover drill" }, operator);
    expect(view).toMatchObject({ name: NAME, state: "OPEN", forced: true, forcedBy: "ops@test.local" });
    expect(await refusal(b)).toMatchObject({ code: "CIRCUIT_OPEN" });

    clock.advance(10 * 60_000);
    expect(await refusal(b)).toMatchObject({ code: "CIRCUIT_OPEN" });
    expect((await getCircuit(b, NAME)).state).toBe("OPEN");

    // Redis restarted empty: B re-applies the forced state from the settings it got pushed
    // (once the push has arrived: on a Redis Cluster it can trail the state write by a few ms).
    const pushed = async () => (await b.settings.ready()).get(circuitForcedSetting).value?.[NAME]?.state === "OPEN";
    expect(await waitFor(pushed, 2_000)).toBeGreaterThanOrEqual(0);
    await a.redis.del(...circuitKeys(NAME));
    expect(await refusal(b)).toMatchObject({ code: "CIRCUIT_OPEN" });
    expect(await getCircuit(a, NAME)).toMatchObject({ state: "OPEN", forced: true, forcedBy: "ops@test.local" });

    const reset = await resetCircuit(a, { name: NAME, reason: "drill over" }, operator);
    expect(reset).toMatchObject({ state: "CLOSED", forced: false, forcedBy: null, errorCount: 0 });
    // B's settings cache may still be catching up: its older version must not re-force the state.
    expect(await refusal(b)).toBeNull();
    expect((await getCircuit(b, NAME)).state).toBe("CLOSED");
  });

  it("forcing one breaker leaves another's forced state and times as they were", async () => {
    const first = await forceCircuit(a, { name: NAME, state: "OPEN", reason: "drill one" }, operator);
    clock.advance(5_000);
    await forceCircuit(a, { name: "flashSale.purchase", state: "HALF_OPEN", reason: "drill two" }, operator);
    clock.advance(5_000);
    expect(await refusal(b)).toMatchObject({ code: "CIRCUIT_OPEN" });
    expect(await getCircuit(b, NAME)).toMatchObject({ state: "OPEN", openedAt: first.openedAt, forced: true });
    await resetCircuit(a, { name: NAME, reason: "drill one over" }, operator);
    expect(await getCircuit(b, "flashSale.purchase")).toMatchObject({ state: "HALF_OPEN", forced: true });
    await resetCircuit(a, { name: "flashSale.purchase", reason: "drill two over" }, operator);
  });

  it("forced CLOSED admits everything despite failures; reset makes it automatic with counts cleared", async () => {
    await forceCircuit(a, { name: NAME, state: "CLOSED", reason: "the errors are a known false alarm" }, operator);
    await fail(a, 15);
    expect(await getCircuit(b, NAME)).toMatchObject({ state: "CLOSED", forced: true });
    await resetCircuit(a, { name: NAME, reason: "back to automatic" }, operator);
    expect(await getCircuit(b, NAME)).toMatchObject({ state: "CLOSED", forced: false, errorCount: 0 });
    await fail(a, 10);
    expect((await getCircuit(b, NAME)).state).toBe("OPEN");
  });

  it("procedures: viewers list, operators force and reset (audited), viewers may not force", async () => {
    const viewer = await adminCaller(a, "viewer");
    const op = await adminCaller(a, "operator", { requestId: "force-req-1" });
    const list = await viewer.caller.circuit.list({});
    expect(list.map((c) => c.name).sort()).toEqual(["credit.deduct", "flashSale.purchase"]);
    for (const c of list) {
      expect(c).toMatchObject({ state: "CLOSED", errorCount: 0, openedAt: null, halfOpenAt: null, forcedBy: null });
    }
    await expect(viewer.caller.circuit.force({ name: NAME, state: "OPEN", reason: "not allowed" })).rejects.toMatchObject({
      code: "FORBIDDEN",
    });
    await expect(op.caller.circuit.force({ name: NAME, state: "OPEN", reason: "" })).rejects.toMatchObject({ code: "BAD_REQUEST" });
    await expect(
      op.caller.circuit.force({ name: "nope" as typeof NAME, state: "OPEN", reason: "unknown circuit" }),
    ).rejects.toMatchObject({ code: "BAD_REQUEST" });

    const forced = await op.caller.circuit.force({ name: "flashSale.purchase", state: "HALF_OPEN", reason: "canary the new pool" });
    expect(forced).toMatchObject({ name: "flashSale.purchase", state: "HALF_OPEN", forcedBy: op.email });
    // Another request of the same operator: its own X-Request-Id.
    const again = createCaller(createContextInner({ deps: a, sessionToken: op.token, requestId: "reset-req-1" }));
    const reset = await again.circuit.reset({ name: "flashSale.purchase", reason: "canary fine" });
    expect(reset).toMatchObject({ state: "CLOSED", forcedBy: null });

    const audit = await a.db.auditLog.findMany({ where: { actor: op.email }, orderBy: { id: "asc" } });
    expect(audit.map((r) => [r.action, r.target, r.reason, r.role])).toEqual([
      ["circuit.force", "circuit:flashSale.purchase", "canary the new pool", "operator"],
      ["circuit.reset", "circuit:flashSale.purchase", "canary fine", "operator"],
    ]);
    expect(audit[0]).toMatchObject({
      requestId: "force-req-1",
      before: { state: "CLOSED", forced: false },
      after: { state: "HALF_OPEN", forced: true, forcedBy: op.email },
    });
  });
});
