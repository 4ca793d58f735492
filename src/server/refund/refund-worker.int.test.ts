import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createTestDeps, closeDeps } from "~/test/deps";
import { ensureCreditType } from "~/test/api";
import { createOwnDatabase } from "~/test/own-database";
import { startWorkerProcess, type WorkerProcess } from "~/test/server-process";
import type { Deps } from "~/server/infra/deps";
import { accountChecks } from "~/server/credit/testing";
import { debitedUsers, queueRefunds, refundChecks, statusCounts, type Debited } from "./testing";

/**
 * The real worker process (`src/server/worker.ts`) on the refund queue of a
 * database of its own: killed mid-batch and restarted, two at once, stopped
 * gracefully. After each, every refund is SUCCEEDED with exactly one credit.
 */
describe("refund worker processes", () => {
  let own: Awaited<ReturnType<typeof createOwnDatabase>>;
  let deps: Deps;
  const creditTypeId = "points";
  const workers: WorkerProcess[] = [];

  beforeAll(async () => {
    own = await createOwnDatabase();
    deps = await createTestDeps({ DATABASE_URL: own.databaseUrl, REDIS_KEY_PREFIX: own.redisPrefix });
    await ensureCreditType(deps, creditTypeId);
  }, 60_000);

  afterAll(async () => {
    for (const w of workers) w.stop();
    if (deps) await closeDeps(deps);
    await own?.dispose();
  });

  async function worker(env: Record<string, string> = {}): Promise<WorkerProcess> {
    const w = await startWorkerProcess({
      DATABASE_URL: own.databaseUrl,
      REDIS_URL: deps.env.REDIS_URL,
      REDIS_KEY_PREFIX: own.redisPrefix,
      REFUND_LEASE_MS: "2000",
      ...env,
    });
    workers.push(w);
    return w;
  }

  async function until(what: string, check: () => Promise<boolean>, ms = 30_000): Promise<void> {
    const deadline = Date.now() + ms;
    while (!(await check())) {
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  /** Every refund SUCCEEDED with one credit of its amount; every account back where it started. */
  async function expectSettledOnce(ids: string[], debits: Debited[], amount: number, grant: number): Promise<void> {
    const checks = await refundChecks(deps, ids);
    expect(checks).toHaveLength(ids.length);
    expect(checks.filter((c) => c.status !== "SUCCEEDED" || c.credits !== 1 || c.credited !== amount)).toEqual([]);
    const books = await accountChecks(deps.db, debits.map((d) => d.userId));
    expect(books.filter((b) => b.balance !== grant || b.balance !== b.credits - b.debits)).toEqual([]);
  }

  it("SIGKILLed mid-batch and restarted: every refund ends SUCCEEDED exactly once; none stays taken", async () => {
    const debits = await debitedUsers(deps, 500, { creditTypeId, grant: 20, debit: 12 });
    const ids = await queueRefunds(deps, debits);
    // Each attempt waits before its credit, so the kill finds a round taken and under way.
    const first = await worker({ FAILPOINTS: "refund.apply=delay:300" });
    await until("the first refunds", async () => ((await statusCounts(deps, ids)).SUCCEEDED ?? 0) > 0);
    first.child.kill("SIGKILL");
    expect(await first.exited).toMatchObject({ signal: "SIGKILL" });
    const atKill = await statusCounts(deps, ids);
    expect(atKill.SUCCEEDED ?? 0).toBeLessThan(ids.length);

    // The refunds the dead worker held come back when their lease runs out.
    const second = await worker();
    await until("every refund", async () => (await statusCounts(deps, ids)).SUCCEEDED === ids.length);
    await expectSettledOnce(ids, debits, 12, 20);
    second.child.kill("SIGTERM");
    expect(await second.exited).toMatchObject({ code: 0 });
  }, 90_000);

  it("two workers at once never apply a refund twice", async () => {
    const debits = await debitedUsers(deps, 600, { creditTypeId, grant: 9, debit: 9 });
    const [a, b] = await Promise.all([worker({ FAILPOINTS: "refund.apply=delay:50" }), worker({ FAILPOINTS: "refund.apply=delay:50" })]);
    const ids = await queueRefunds(deps, debits);
    await until("every refund", async () => (await statusCounts(deps, ids)).SUCCEEDED === ids.length);
    await expectSettledOnce(ids, debits, 9, 9);
    // One attempt per refund: a row one worker held was skipped by the other, never taken twice.
    const attempts = await deps.db.operation.groupBy({ by: ["status"], where: { type: "refund.apply", userId: { in: debits.map((d) => d.userId) } }, _count: true });
    expect(attempts).toEqual([expect.objectContaining({ status: "completed", _count: ids.length })]);
    a!.child.kill("SIGTERM");
    b!.child.kill("SIGTERM");
    expect(await Promise.all([a!.exited, b!.exited])).toEqual([expect.objectContaining({ code: 0 }), expect.objectContaining({ code: 0 })]);
  }, 90_000);

  it("SIGTERM: the worker finishes the refunds it holds, then exits 0", async () => {
    const debits = await debitedUsers(deps, 150, { creditTypeId, grant: 5, debit: 5 });
    const w = await worker({ FAILPOINTS: "refund.apply=delay:1500" });
    const ids = await queueRefunds(deps, debits);
    // Taken (attempt counted) and waiting on the delay when the signal comes.
    await until("the refunds to be taken", async () => (await refundChecks(deps, ids)).every((c) => c.attempts === 1));
    w.child.kill("SIGTERM");
    expect(await w.exited).toMatchObject({ code: 0 });
    expect(w.log()).toContain("worker stopped");
    await expectSettledOnce(ids, debits, 5, 5);
  }, 60_000);
});
