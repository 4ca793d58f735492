import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Deps } from "~/server/infra/deps";
import { closeDeps, createTestDeps, uid } from "~/test/deps";
import { ensureCreditType, makeApiKey } from "~/test/api";
import { postOnOwnConnection, startServerProcess } from "~/test/server-process";
import { grantCredits } from "~/server/credit/grant";

// The real server process, stopped with SIGTERM while 200 deductions are in
// flight: every one must be answered, none cut.

let deps: Deps;
let creditTypeId: string;

beforeAll(async () => {
  deps = await createTestDeps();
  creditTypeId = await ensureCreditType(deps, "shutdown-points");
});

afterAll(async () => {
  await closeDeps(deps);
});

describe("graceful shutdown", () => {
  it("SIGTERM during 200 in-flight deductions: every one answered, none cut; health and readiness say draining; the process exits 0", async () => {
    const users = Array.from({ length: 200 }, () => uid("u"));
    for (let i = 0; i < users.length; i += 50) {
      await Promise.all(
        users.slice(i, i + 50).map((userId) =>
          grantCredits(deps, { userId, creditTypeId, amount: 10, businessCode: "test.grant", businessId: uid("g") }, { principal: null, requestId: null }),
        ),
      );
    }
    const key = await makeApiKey(deps);
    const server = await startServerProcess(deps, {
      LOG_LEVEL: "info",
      RATE_LIMIT_PER_SECOND: "1000000",
      RATE_LIMIT_BURST: "1000000",
      DB_POOL_MAX: "20",
      DB_POOL_WAIT_MS: "10000",
      // Each deduction holds its transaction a while: they are all in flight when the signal comes.
      FAILPOINTS: "credit.beforeCommit=delay:300",
    });
    const { port, url: base } = server;
    try {
      // One connection per request, each sent at once: all 200 are in flight before the signal.
      const calls = users.map((userId) =>
        postOnOwnConnection(
          port,
          "/api/trpc/credit.deduct",
          { userId, creditTypeId, amount: 1, businessCode: "order.pay", businessId: uid("o") },
          { authorization: `Bearer ${key}` },
        ),
      );
      await new Promise((r) => setTimeout(r, 250));
      server.child.kill("SIGTERM");
      // Within the drain's grace second a balancer asking gets 503.
      let health: { status: number; body: unknown } | null = null;
      for (let i = 0; i < 15 && health?.status !== 503; i++) {
        await new Promise((r) => setTimeout(r, 50));
        health = await fetch(`${base}/api/health`).then(
          async (r) => ({ status: r.status, body: (await r.json()) as unknown }),
          () => null,
        );
      }
      const ready = await fetch(`${base}/api/ready`).then(
        async (r) => ({ status: r.status, body: (await r.json()) as unknown }),
        () => null,
      );
      const results = await Promise.all(calls);
      const cut = results.filter((r) => r.status === 0);
      expect(cut.length, `${JSON.stringify(cut.slice(0, 2))}\n${server.log().slice(-3000)}`).toBe(0);
      expect(results.filter((r) => r.status !== 200).map((r) => r.body)).toEqual([]);
      expect(health).toEqual({ status: 503, body: { status: "draining" } });
      expect(ready).toEqual({ status: 503, body: { status: "draining" } });
      expect((await server.exited).code).toBe(0);
      expect(server.log()).toMatch(/draining/);
      expect(await deps.db.ledgerEntry.count({ where: { userId: { in: users }, type: "DEBIT" } })).toBe(200);
    } finally {
      server.stop();
    }
  }, 90_000);
});
