import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createTestDeps, closeDeps } from "~/test/deps";
import { adminCaller, ensureCreditType } from "~/test/api";
import { createOwnDatabase } from "~/test/own-database";
import type { Deps } from "~/server/infra/deps";
import { alertsSettled } from "~/server/infra/alerts";
import { sqlOf } from "~/server/infra/sql";
import { accountChecks } from "~/server/credit/testing";
import { refundDebit } from "~/server/credit/refund";
import { enqueueRefund } from "./refund-queue";
import { processDueRefunds } from "./refund-worker";
import { refreshRefundGauges } from "./refund-metrics";
import { debitedUsers, queueRefunds, refundChecks } from "./testing";

/**
 * The refund queue in one process, in a database of its own (the worker
 * takes every due refund it finds): queueing, attempts with back-off, FAILED
 * with one alert, operators' retries, draining.
 */
describe("refund queue", () => {
  let own: Awaited<ReturnType<typeof createOwnDatabase>>;
  let deps: Deps;
  let hook: Server;
  const alerts: { kind: string; dedupKey?: string; details: Record<string, unknown> }[] = [];
  const creditTypeId = "points";
  const BASE_MS = 300;

  beforeAll(async () => {
    hook = createServer((req, res) => {
      let text = "";
      req.on("data", (c: Buffer) => (text += c.toString()));
      req.on("end", () => {
        alerts.push(JSON.parse(text) as (typeof alerts)[number]);
        res.writeHead(204).end();
      });
    });
    await new Promise<void>((r) => hook.listen(0, "127.0.0.1", r));
    own = await createOwnDatabase();
    deps = await createTestDeps({
      DATABASE_URL: own.databaseUrl,
      REDIS_KEY_PREFIX: own.redisPrefix,
      REFUND_MAX_ATTEMPTS: "3",
      REFUND_BACKOFF_BASE_MS: String(BASE_MS),
      REFUND_BACKOFF_MAX_MS: "60000",
      ALERT_WEBHOOK_URL: `http://127.0.0.1:${(hook.address() as AddressInfo).port}/alerts`,
    });
    await ensureCreditType(deps, creditTypeId);
  }, 60_000);

  afterAll(async () => {
    if (deps) await closeDeps(deps);
    await own?.dispose();
    hook.closeAllConnections();
    await new Promise((r) => hook.close(r));
  });

  /** Runs worker rounds until `done` holds (or fails after `ms`). */
  async function workUntil(done: () => Promise<boolean>, opts: { random?: () => number; ms?: number } = {}): Promise<void> {
    const deadline = Date.now() + (opts.ms ?? 15_000);
    while (!(await done())) {
      if (Date.now() > deadline) throw new Error("the refunds did not settle in time");
      const { taken } = await processDueRefunds(deps, opts.random ? { random: opts.random } : {});
      if (taken === 0) await new Promise((r) => setTimeout(r, 20));
    }
  }

  it("a queued refund counts against its debit in the deciding transaction; never past the debit; rolled back with it", async () => {
    const [d] = await debitedUsers(deps, 1, { creditTypeId, grant: 100, debit: 60 });
    const now = deps.clock.now();
    // The deciding transaction fails after queueing: no refund, nothing counted.
    await expect(
      sqlOf(deps.db).transaction(async (q) => {
        await enqueueRefund(q, { debitId: d!.debitId, userId: d!.userId, reason: "purchase failed" }, now);
        throw new Error("the order could not be written");
      }),
    ).rejects.toThrow("the order could not be written");
    expect(await deps.db.refund.count({ where: { originalTransactionId: d!.debitId } })).toBe(0);

    const [id] = await queueRefunds(deps, [d!], 40n);
    expect(await deps.db.ledgerEntry.findFirstOrThrow({ where: { id: d!.debitId } })).toMatchObject({ refundedAmount: 40n });
    // What is queued is spoken for: a refund of more than the rest is refused, queued or immediate.
    await expect(queueRefunds(deps, [d!], 21n)).rejects.toMatchObject({ code: "REFUND_EXCEEDS_DEBIT" });
    await expect(
      refundDebit(deps, { transactionId: d!.debitId, amount: 21, businessCode: "order.cancel", businessId: `c-${id}` }, { principal: null, requestId: null }),
    ).rejects.toMatchObject({ code: "REFUND_EXCEEDS_DEBIT" });
    const grant = await deps.db.ledgerEntry.findFirstOrThrow({ where: { userId: d!.userId, type: "CREDIT" } });
    for (const debitId of ["00000000-0000-4000-8000-000000000000", grant.id]) {
      await expect(queueRefunds(deps, [{ ...d!, debitId }])).rejects.toMatchObject({ code: "TRANSACTION_NOT_FOUND" });
    }
    expect(await deps.db.refund.findFirstOrThrow({ where: { id: id! } })).toMatchObject({ status: "PENDING", attempts: 0, amount: 40n });

    // The queue's gauges see it due.
    await refreshRefundGauges(deps);
    const text = await deps.metrics.registry.metrics();
    expect(text).toMatch(/fp_refund_queue_depth\{status="PENDING"\} [1-9]/);
    expect(text).toMatch(/fp_refund_oldest_due_seconds \d/);

    await workUntil(async () => (await refundChecks(deps, [id!]))[0]?.status === "SUCCEEDED");
    expect(await refundChecks(deps, [id!])).toEqual([expect.objectContaining({ status: "SUCCEEDED", attempts: 1, credits: 1, credited: 40 })]);
    expect((await accountChecks(deps.db, [d!.userId]))[0]).toMatchObject({ balance: 80, credits: 140, debits: 60 });
  });

  it("a refund whose credit keeps failing goes PENDING → RETRYING → FAILED with growing waits, raises one alert and is listed", async () => {
    const [d] = await debitedUsers(deps, 1, { creditTypeId, grant: 50, debit: 30 });
    const [id] = await queueRefunds(deps, [d!]);
    deps.failpoints.set("refund.apply=error");
    const seen: { status: string; attempts: number; waitMs: number }[] = [];
    try {
      // The jitter's top (random ≈ 1) makes each wait its bound: BASE, 2 × BASE, …
      await workUntil(
        async () => {
          const row = await deps.db.refund.findFirstOrThrow({ where: { id: id! } });
          const last = seen.at(-1);
          if (row.attempts > 0 && (!last || last.attempts !== row.attempts) && row.status !== "PENDING") {
            seen.push({ status: row.status, attempts: row.attempts, waitMs: row.nextAttemptAt.getTime() - row.updatedAt.getTime() });
          }
          return row.status === "FAILED";
        },
        { random: () => 0.9999 },
      );
    } finally {
      deps.failpoints.set(undefined);
    }
    expect(seen.map((s) => [s.status, s.attempts])).toEqual([
      ["RETRYING", 1],
      ["RETRYING", 2],
      ["FAILED", 3],
    ]);
    expect(seen[0]!.waitMs).toBeGreaterThanOrEqual(BASE_MS - 2);
    expect(seen[0]!.waitMs).toBeLessThan(BASE_MS);
    expect(seen[1]!.waitMs).toBeGreaterThanOrEqual(2 * BASE_MS - 2);
    expect(seen[1]!.waitMs).toBeLessThan(2 * BASE_MS);

    // Exactly one alert, with what a person needs.
    await alertsSettled();
    await new Promise((r) => setTimeout(r, 300));
    const mine = alerts.filter((a) => a.details.refundId === id);
    expect(mine).toEqual([
      expect.objectContaining({
        kind: "refund.failed",
        dedupKey: `refund.failed:${id}`,
        details: expect.objectContaining({ userId: d!.userId, amount: 30, attempts: 3, originalTransactionId: d!.debitId }),
      }),
    ]);
    const { caller: viewer } = await adminCaller(deps, "viewer");
    const listed = await viewer.refund.list({ status: "FAILED" });
    expect(listed.items.find((r) => r.id === id)).toMatchObject({ status: "FAILED", attempts: 3, lastError: expect.stringContaining("refund.apply") });
    expect((await accountChecks(deps.db, [d!.userId]))[0]).toMatchObject({ balance: 20 });
    expect(await deps.metrics.registry.getSingleMetricAsString("fp_refunds_failed_total")).toMatch(/fp_refunds_failed_total [1-9]/);
  });

  it("refund.retry: a viewer is refused; a retry that fails stays FAILED without a second alert; after the fault, 10 retries at once credit once, audited", async () => {
    const [d] = await debitedUsers(deps, 1, { creditTypeId, grant: 50, debit: 30 });
    const [id] = await queueRefunds(deps, [d!]);
    deps.failpoints.set("refund.apply=error");
    try {
      await workUntil(async () => (await refundChecks(deps, [id!]))[0]?.status === "FAILED", { random: () => 0 });
      const { caller: viewer } = await adminCaller(deps, "viewer");
      await expect(viewer.refund.retry({ refundId: id!, reason: "customer called" })).rejects.toMatchObject({ code: "FORBIDDEN" });
      const { caller: operator } = await adminCaller(deps, "operator");
      // Still failing: FAILED again, one attempt more, no new alert.
      expect(await operator.refund.retry({ refundId: id!, reason: "try once more" })).toMatchObject({ status: "FAILED", attempts: 4 });
    } finally {
      deps.failpoints.set(undefined);
    }
    const { caller: operator, email } = await adminCaller(deps, "operator");
    const results = await Promise.all(
      Array.from({ length: 10 }, (_, i) => operator.refund.retry({ refundId: id!, reason: `ticket 4711, click ${i}` })),
    );
    for (const r of results) expect(r).toMatchObject({ id, status: "SUCCEEDED" });
    expect(await refundChecks(deps, [id!])).toEqual([expect.objectContaining({ status: "SUCCEEDED", credits: 1, credited: 30 })]);
    expect((await accountChecks(deps.db, [d!.userId]))[0]).toMatchObject({ balance: 50, credits: 80, debits: 30 });

    const audit = await deps.db.auditLog.findMany({ where: { target: `refund:${id}`, actor: email }, orderBy: { createdAt: "asc" } });
    expect(audit.length).toBeGreaterThanOrEqual(1);
    expect(audit.length).toBeLessThanOrEqual(10);
    // The first retry found it FAILED; each retry that took it is on record, with who, why, before and after.
    expect(audit).toContainEqual(
      expect.objectContaining({
        action: "refund.retry",
        role: "operator",
        reason: expect.stringContaining("ticket 4711"),
        before: { status: "FAILED", attempts: 4 },
        after: { status: "RETRYING", attempts: 5 },
      }),
    );
    await alertsSettled();
    expect(alerts.filter((a) => a.details.refundId === id)).toHaveLength(1);

    // A resolved refund cannot be retried; an unknown one is 404.
    const [d2] = await debitedUsers(deps, 1, { creditTypeId, grant: 10, debit: 10 });
    const [resolved] = await queueRefunds(deps, [d2!]);
    await deps.db.refund.updateMany({ where: { id: resolved! }, data: { status: "RESOLVED" } });
    await expect(operator.refund.retry({ refundId: resolved!, reason: "again" })).rejects.toMatchObject({ code: "CONFLICT", cause: { code: "INVALID_STATE" } });
    await expect(operator.refund.retry({ refundId: "00000000-0000-4000-8000-000000000000", reason: "again" })).rejects.toMatchObject({
      code: "NOT_FOUND",
    });
    expect((await accountChecks(deps.db, [d2!.userId]))[0]).toMatchObject({ balance: 0 });
  });

  it("a refund settled by hand meanwhile is not credited by an attempt that was already under way", async () => {
    const [d] = await debitedUsers(deps, 1, { creditTypeId, grant: 20, debit: 20 });
    const [id] = await queueRefunds(deps, [d!]);
    deps.failpoints.set("refund.apply=delay:400");
    try {
      const round = processDueRefunds(deps);
      await new Promise((r) => setTimeout(r, 150));
      // The attempt is past its claim; the refund is settled elsewhere (as resolve would, on a FAILED one).
      await deps.db.refund.updateMany({ where: { id: id! }, data: { status: "RESOLVED" } });
      const { outcomes } = await round;
      expect(outcomes.map((o) => o.kind)).toContain("superseded");
    } finally {
      deps.failpoints.set(undefined);
    }
    expect(await refundChecks(deps, [id!])).toEqual([expect.objectContaining({ status: "RESOLVED", credits: 0 })]);
    expect((await accountChecks(deps.db, [d!.userId]))[0]).toMatchObject({ balance: 0 });
  });

  it("1,000 due refunds drain in under 10 s, each credited exactly once", async () => {
    const debits = await debitedUsers(deps, 1_000, { creditTypeId, grant: 10, debit: 7 });
    const ids = await queueRefunds(deps, debits);
    const started = performance.now();
    await workUntil(async () => (await deps.db.refund.count({ where: { id: { in: ids }, status: "SUCCEEDED" } })) === ids.length, { ms: 30_000 });
    const seconds = (performance.now() - started) / 1000;
    console.log(`refund queue: 1,000 refunds drained in ${seconds.toFixed(2)} s (${Math.round(1000 / seconds)}/s)`);
    expect(seconds).toBeLessThan(10);
    const checks = await refundChecks(deps, ids);
    expect(checks.filter((c) => c.credits !== 1 || c.credited !== 7)).toEqual([]);
    const books = await accountChecks(deps.db, debits.map((d) => d.userId));
    expect(books.filter((b) => b.balance !== 10 || b.credits - b.debits !== 10)).toEqual([]);
  }, 60_000);
});
