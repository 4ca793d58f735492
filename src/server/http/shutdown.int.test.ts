import { spawn, type ChildProcess } from "node:child_process";
import { request } from "node:http";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Deps } from "~/server/infra/deps";
import { closeDeps, createTestDeps, uid } from "~/test/deps";
import { ensureCreditType, makeApiKey } from "~/test/api";
import { testDatabaseUrl } from "~/test/env";
import { sparePort } from "~/server/credit/testing";
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

async function startServerProcess(port: number): Promise<{ child: ChildProcess; log: () => string; exited: Promise<number | null> }> {
  // `node --import tsx`, not the tsx wrapper: the signal must reach the server's own process.
  const child = spawn(process.execPath, ["--import", "tsx", "src/server/http/server.ts"], {
    env: {
      ...process.env,
      NODE_ENV: "test",
      LOG_LEVEL: "info",
      API_ONLY: "1",
      HOST: "127.0.0.1",
      PORT: String(port),
      DATABASE_URL: testDatabaseUrl(),
      REDIS_URL: deps.env.REDIS_URL,
      REDIS_KEY_PREFIX: deps.env.REDIS_KEY_PREFIX,
      RATE_LIMIT_PER_SECOND: "1000000",
      RATE_LIMIT_BURST: "1000000",
      DB_POOL_MAX: "20",
      DB_POOL_WAIT_MS: "10000",
      // Each deduction holds its transaction a while: they are all in flight when the signal comes.
      FAILPOINTS: "credit.beforeCommit=delay:300",
    },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let log = "";
  child.stdout!.on("data", (c: Buffer) => (log += c.toString()));
  child.stderr!.on("data", (c: Buffer) => (log += c.toString()));
  const exited = new Promise<number | null>((r) => child.once("exit", (code) => r(code)));
  const url = `http://127.0.0.1:${port}/api/health`;
  for (let i = 0; i < 300; i++) {
    if (child.exitCode !== null) throw new Error(`server exited early:\n${log}`);
    const ok = await fetch(url)
      .then((r) => r.ok)
      .catch(() => false);
    if (ok) return { child, log: () => log, exited };
    await new Promise((r) => setTimeout(r, 100));
  }
  child.kill("SIGKILL");
  throw new Error(`server did not come up:\n${log}`);
}

/** A POST on a connection of its own (no pooling): the answer, or status 0 with the error if the connection was cut. */
function post(port: number, path: string, key: string, body: unknown): Promise<{ status: number; body: unknown }> {
  const data = JSON.stringify(body);
  return new Promise((resolve) => {
    const req = request(
      {
        host: "127.0.0.1",
        port,
        path,
        method: "POST",
        agent: false,
        headers: { "content-type": "application/json", "content-length": Buffer.byteLength(data), authorization: `Bearer ${key}` },
      },
      (res) => {
        let text = "";
        res.on("data", (c: Buffer) => (text += c.toString()));
        res.on("end", () => resolve({ status: res.statusCode ?? 0, body: JSON.parse(text) as unknown }));
        res.on("error", (err) => resolve({ status: 0, body: String(err) }));
      },
    );
    req.on("error", (err) => resolve({ status: 0, body: String(err) }));
    req.end(data);
  });
}

describe("graceful shutdown", () => {
  it("SIGTERM during 200 in-flight deductions: every one answered, none cut; health says draining; the process exits 0", async () => {
    const users = Array.from({ length: 200 }, () => uid("u"));
    for (let i = 0; i < users.length; i += 50) {
      await Promise.all(
        users.slice(i, i + 50).map((userId) =>
          grantCredits(deps, { userId, creditTypeId, amount: 10, businessCode: "test.grant", businessId: uid("g") }, { principal: null, requestId: null }),
        ),
      );
    }
    const key = await makeApiKey(deps);
    const port = await sparePort();
    const server = await startServerProcess(port);
    try {
      const base = `http://127.0.0.1:${port}`;
      // One connection per request, each sent at once: all 200 are in flight before the signal.
      const calls = users.map((userId) =>
        post(port, "/api/trpc/credit.deduct", key, { userId, creditTypeId, amount: 1, businessCode: "order.pay", businessId: uid("o") }),
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
      const results = await Promise.all(calls);
      const cut = results.filter((r) => r.status === 0);
      expect(cut.length, `${JSON.stringify(cut.slice(0, 2))}\n${server.log().slice(-3000)}`).toBe(0);
      expect(results.filter((r) => r.status !== 200).map((r) => r.body)).toEqual([]);
      expect(health).toEqual({ status: 503, body: { status: "draining" } });
      expect(await server.exited).toBe(0);
      expect(server.log()).toMatch(/draining/);
      expect(await deps.db.ledgerEntry.count({ where: { userId: { in: users }, type: "DEBIT" } })).toBe(200);
    } finally {
      if (server.child.exitCode === null) server.child.kill("SIGKILL");
    }
  }, 90_000);
});
