import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Deps } from "~/server/infra/deps";
import { closeDeps, createTestDeps, uid } from "~/test/deps";
import { adminCaller, startApi } from "~/test/api";
import type { RunningServer } from "~/server/http/server";
import { settingsChannel, startSettingsSync, type SettingsSync } from "~/server/infra/settings-sync";
import { checkRateLimit, getRateLimits, rateLimitSetting } from "./rate-limit";
import { isSwitchOn } from "./switches";
import { clearSettings, waitFor } from "./testing";

// Instance A takes the admin's change; instance B has its own Redis
// connection, settings cache and subscriber, and must follow within 1 s.
let a: Deps;
let b: Deps;
let syncB: SettingsSync;
let apiB: RunningServer;

beforeAll(async () => {
  a = await createTestDeps();
  b = await createTestDeps({ REDIS_KEY_PREFIX: a.env.REDIS_KEY_PREFIX });
  await clearSettings(a.db);
  // A long fallback reload: what B sees within a second came over pub/sub.
  syncB = startSettingsSync(b, { reloadIntervalMs: 60_000 });
  await syncB.ready;
  apiB = await startApi(b);
});

afterAll(async () => {
  await apiB?.close();
  await syncB?.stop();
  await clearSettings(a.db);
  await closeDeps(a);
  await closeDeps(b);
});

describe("live settings", () => {
  it("a limit change by an admin reaches a second instance within 1 s, and is audited with actor and reason", async () => {
    expect(await getRateLimits(b)).toMatchObject({ perSecond: 5, burst: 10, source: "env" });
    const admin = await adminCaller(a, "admin", { requestId: "limits-req-1" });
    const started = Date.now();
    const result = await admin.caller.rateLimit.set({ perSecond: 50, burst: 120, reason: "flash sale at noon" });
    expect(result).toMatchObject({ perSecond: 50, burst: 120, source: "settings", updatedBy: admin.email });
    const elapsed = await waitFor(async () => (await getRateLimits(b)).burst === 120, 1_000, 5);
    expect(elapsed).toBeGreaterThanOrEqual(0);
    expect(Date.now() - started).toBeLessThan(1_000);
    expect(await getRateLimits(b)).toMatchObject({ perSecond: 50, burst: 120, source: "settings", updatedBy: admin.email });

    const [entry] = await a.db.auditLog.findMany({ where: { actor: admin.email, action: "rateLimit.set" } });
    expect(entry).toMatchObject({
      actor: admin.email,
      role: "admin",
      target: "rateLimit",
      reason: "flash sale at noon",
      requestId: "limits-req-1",
      before: { perSecond: 5, burst: 10 },
      after: { perSecond: 50, burst: 120 },
    });
    const row = await a.db.setting.findUniqueOrThrow({ where: { key: "rateLimit" } });
    expect(row).toMatchObject({ value: { perSecond: 50, burst: 120 }, updatedBy: admin.email });

    // Instance B's buckets now hold 120.
    const userId = uid("u");
    const taken = await Promise.all(
      Array.from({ length: 30 }, () => checkRateLimit(b, { procedure: "t", userId, creditTypeId: "points" })),
    );
    expect(taken.every((t) => t !== null && t.remaining >= 90)).toBe(true);
  });

  it("roles and validation: viewers read, only admins change, a reason is required", async () => {
    const viewer = await adminCaller(a, "viewer");
    const operator = await adminCaller(a, "operator");
    const admin = await adminCaller(a, "admin");
    expect(await viewer.caller.rateLimit.get({})).toMatchObject({ perSecond: expect.any(Number), burst: expect.any(Number) });
    await expect(operator.caller.rateLimit.set({ perSecond: 1, burst: 1, reason: "not mine to change" })).rejects.toMatchObject({
      code: "FORBIDDEN",
    });
    await expect(admin.caller.rateLimit.set({ perSecond: 1, burst: 0, reason: "zero burst" })).rejects.toMatchObject({
      code: "BAD_REQUEST",
    });
    await expect(
      admin.caller.rateLimit.set({ perSecond: 1, burst: 1 } as { perSecond: number; burst: number; reason: string }),
    ).rejects.toMatchObject({ code: "BAD_REQUEST" });
    await expect(viewer.caller.switch.set({ name: "ledgerReads", on: false, reason: "viewers may not" })).rejects.toMatchObject({
      code: "FORBIDDEN",
    });
  });

  it("switches: listed for viewers, set by admins (audited), followed by every instance and shown in metrics", async () => {
    const viewer = await adminCaller(a, "viewer");
    const admin = await adminCaller(a, "admin");
    const list = await viewer.caller.switch.list({});
    expect(list.map((s) => s.name)).toEqual(
      expect.arrayContaining(["ledgerReads", "outboxRelay", "flashSaleCacheOnly", "flashSalePurchases", "rateLimitFailClosed"]),
    );
    expect(list.find((s) => s.name === "outboxRelay")).toMatchObject({ on: true, default: true });

    const off = await admin.caller.switch.set({ name: "outboxRelay", on: false, reason: "postgres overloaded" });
    expect(off).toMatchObject({ name: "outboxRelay", on: false });
    expect(await waitFor(async () => !(await isSwitchOn(b, "outboxRelay")), 1_000, 5)).toBeGreaterThanOrEqual(0);
    const metrics = await fetch(`${apiB.url}/api/metrics`).then((r) => r.text());
    expect(metrics).toContain('fp_switch_state{name="outboxRelay"} 0');
    expect(metrics).toContain('fp_switch_state{name="ledgerReads"} 1');
    // A syncing instance shows every breaker, even before serving a protected call.
    expect(metrics).toContain('fp_circuit_state{name="flashSale.purchase"} 0');

    await admin.caller.switch.set({ name: "outboxRelay", on: true, reason: "load is back to normal" });
    expect(await waitFor(async () => isSwitchOn(b, "outboxRelay"), 1_000, 5)).toBeGreaterThanOrEqual(0);
    const audit = await a.db.auditLog.findMany({ where: { actor: admin.email }, orderBy: { id: "asc" } });
    expect(audit.map((r) => [r.action, r.target, r.reason, r.before, r.after])).toEqual([
      ["switch.set", "switch:outboxRelay", "postgres overloaded", { outboxRelay: true }, { outboxRelay: false }],
      ["switch.set", "switch:outboxRelay", "load is back to normal", { outboxRelay: false }, { outboxRelay: true }],
    ]);
  });

  it("a change whose message was lost still arrives with the periodic reload", async () => {
    const c = await createTestDeps({ REDIS_KEY_PREFIX: a.env.REDIS_KEY_PREFIX });
    const sync = startSettingsSync(c, { reloadIntervalMs: 200 });
    try {
      await sync.ready;
      const before = (await c.settings.ready()).get(rateLimitSetting);
      // Written behind the instances' backs: no publish.
      await a.db.setting.update({
        where: { key: "rateLimit" },
        data: { value: { perSecond: 7, burst: 70 }, version: { increment: 1 }, updatedBy: "dba@test.local" },
      });
      expect(await waitFor(async () => (await getRateLimits(c)).burst === 70, 1_000, 10)).toBeGreaterThanOrEqual(0);
      expect((await c.settings.ready()).get(rateLimitSetting).version).toBe(before.version + 1);
      // An older version pushed late is ignored.
      await a.redis.publish(
        settingsChannel(a.env),
        JSON.stringify({ key: "rateLimit", value: { perSecond: 1, burst: 1 }, version: before.version, updatedBy: "late", updatedAt: null }),
      );
      await new Promise((r) => setTimeout(r, 100));
      expect((await getRateLimits(c)).burst).toBe(70);
    } finally {
      await sync.stop();
      await closeDeps(c);
    }
  });
});
