import { appendFileSync, mkdirSync, rmSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { beforeAll, describe, expect, it } from "vitest";
import { sqlOf } from "~/server/infra/sql";
import { admitCall, recordOutcome } from "~/server/resilience/circuit-breaker";
import { closeDeps, createTestDeps } from "~/test/deps";
import { Load } from "./load";
import { Stack, type StackOptions } from "./stack";
import { verdict } from "./verdict";

/**
 * Fault drills (`npm run test:faults`): the production build — two API
 * servers and the worker, as processes — under a mixed load while one fault
 * is injected; then every invariant is checked and every answer a client got
 * is held against the books. Each drill prints one line (the table in
 * docs/operations.md, "Fault drills") and appends it to test-results/drills.txt.
 */

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../..");
const REPORT = path.join(ROOT, "test-results", "drills.txt");
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

async function drill(
  name: string,
  opts: StackOptions,
  run: (stack: Stack, load: Load) => Promise<string[] | void>,
  loadOpts: ConstructorParameters<typeof Load>[1] = {},
): Promise<void> {
  const stack = await Stack.start(name, opts);
  try {
    const load = new Load(stack, loadOpts);
    const t0 = performance.now();
    const extra = (await run(stack, load)) ?? [];
    await load.stop();
    const report = await verdict(stack, load, name, t0, extra);
    console.log(report.line);
    mkdirSync(path.dirname(REPORT), { recursive: true });
    appendFileSync(REPORT, `${report.line}\n`);
    expect(report.problems, `${report.line}\n${stack.logs()}`).toEqual([]);
  } finally {
    await stack.dispose();
  }
}

/** Load for `before` ms, the fault for `during`, then load for `after` ms with the fault over. */
async function phases(load: Load, ms: { before: number; after: number }, fault: () => Promise<void>): Promise<void> {
  load.start();
  await sleep(ms.before);
  load.phase = "fault";
  await fault();
  load.phase = "after";
  await sleep(ms.after);
  await load.stop();
}

describe("fault drills", () => {
  beforeAll(() => rmSync(REPORT, { force: true }));

  it("Redis SIGKILLed mid-load and restarted empty", async () => {
    await drill("Redis SIGKILL, restarted empty after 2 s", {}, async (stack, load) => {
      await phases(load, { before: 2_000, after: 3_000 }, async () => {
        await stack.redis.kill("SIGKILL");
        await sleep(2_000);
        await stack.redis.restart();
      });
    });
  });

  it("Redis frozen (SIGSTOP) for 5 s", async () => {
    await drill("Redis SIGSTOP for 5 s", {}, async (stack, load) => {
      await phases(load, { before: 2_000, after: 3_000 }, async () => {
        stack.redis.process.kill("SIGSTOP");
        await sleep(5_000);
        stack.redis.process.kill("SIGCONT");
      });
    });
  });

  it("Redis killed while purchases sit between reserve and confirm", async () => {
    await drill(
      "Redis SIGKILL between reserve and confirm",
      { serverEnv: { FAILPOINTS: "flashSale.afterDebit=delay:1500" } },
      async (stack, load) => {
        await phases(load, { before: 800, after: 3_000 }, async () => {
          await stack.redis.kill("SIGKILL");
          await sleep(1_500);
          await stack.redis.restart();
        });
      },
      { mix: { purchase: 80, grant: 10, deduct: 10, batchDeduct: 0, refund: 0, repeat: 10 } },
    );
  });

  it("an API process SIGKILLed right after commit, before answering", async () => {
    await drill(
      "API SIGKILL after commit, before the answer",
      { serverEnvOf: (i): Record<string, string> => (i === 0 ? { FAILPOINTS: "credit.afterCommit=delay:2000" } : {}) },
      async (stack, load) => {
        load.phase = "fault";
        const sent = load.burst("deduct", 120);
        await sleep(1_000);
        await stack.stopServer(0, "SIGKILL");
        const requests = await sent;
        const cut = requests.filter((r) => r.answers.at(-1)?.kind === "connection");
        const problems: string[] = [];
        if (cut.length === 0) problems.push("no request was cut by the kill: the drill did not test anything");
        await stack.startServer(0, { FAILPOINTS: "" });
        // What status says about each cut request must be what the books say.
        const q = sqlOf(stack.observer).query;
        for (const r of cut) {
          const res = await fetch(`${stack.urls()[0]}/api/trpc/operation.status?input=${encodeURIComponent(JSON.stringify({ requestId: r.requestId }))}`, {
            headers: { authorization: `Bearer ${stack.apiKey}` },
          });
          const json = (await res.json()) as { result?: { data: { status: string } }; error?: { data: { appCode: string } } };
          const status = json.result?.data.status ?? json.error?.data.appCode ?? `http ${res.status}`;
          const body = r.body as { businessCode: string; businessId: string };
          const [row] = await q<{ n: number }>("SELECT count(*)::int AS n FROM ledger_entries WHERE business_code = $1 AND business_id = $2", [body.businessCode, body.businessId]);
          const applied = row?.n === 1;
          if (applied !== (status === "completed")) problems.push(`request ${r.requestId}: status says ${status}, the ledger says ${applied ? "applied" : "not applied"}`);
        }
        load.phase = "after";
        return problems;
      },
    );
  });

  it("busy PostgreSQL backends terminated again and again", async () => {
    await drill("pg_terminate_backend of busy connections every 250 ms for 3 s", {}, async (stack, load) => {
      await phases(load, { before: 1_500, after: 2_000 }, async () => {
        const q = sqlOf(stack.observer).query;
        for (let i = 0; i < 12; i++) {
          await q(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid() AND application_name <> 'drill-checker' AND state <> 'idle'",
            [stack.t.dbName],
          );
          await sleep(250);
        }
      });
    });
  });

  it("more concurrent requests than connections", async () => {
    await drill(
      "pool exhaustion: 200 concurrent requests, 2 connections per server",
      { serverEnv: { DB_POOL_MAX: "2", DB_POOL_WAIT_MS: "500" } },
      async (_stack, load) => {
        await phases(load, { before: 500, after: 0 }, () => sleep(4_000));
      },
      { concurrency: 200 },
    );
  });

  it("PostgreSQL crashed (-m immediate) and started again", async () => {
    await drill("PostgreSQL stopped -m immediate for 3 s, then started", { ownPostgres: true }, async (stack, load) => {
      await phases(load, { before: 2_000, after: 3_000 }, async () => {
        stack.pg!.crash();
        await sleep(3_000);
        stack.pg!.start();
      });
    });
  });

  it("the refund worker SIGKILLed mid-batch", async () => {
    await drill(
      "refund worker SIGKILL mid-batch, restarted",
      {
        // Every purchase fails after its debit: each queues a refund.
        serverEnv: { FAILPOINTS: "flashSale.afterDebit=error" },
        workerEnv: { FAILPOINTS: "refund.apply=delay:400" },
      },
      async (stack, load) => {
        const problems: string[] = [];
        await phases(load, { before: 1_000, after: 0 }, async () => {
          // The kill waits for at least 20 queued refunds (the failing purchases
          // open the purchase breaker, so how fast they come depends on the machine).
          const q = sqlOf(stack.observer).query;
          const queued = async () => (await q<{ n: number }>("SELECT count(*)::int AS n FROM refunds"))[0]?.n ?? 0;
          const deadline = Date.now() + 15_000;
          while ((await queued()) < 20 && Date.now() < deadline) await sleep(250);
          const n = await queued();
          if (n < 20) problems.push(`only ${n} refunds queued: the drill did not test anything`);
          await stack.stopWorker("SIGKILL");
          await sleep(1_000);
          await stack.startWorker({ FAILPOINTS: "" });
        });
        // The purchases' fault is mended too, so the clients' retries can end.
        for (let i = 0; i < stack.servers.length; i++) {
          await stack.stopServer(i);
          await stack.startServer(i, { FAILPOINTS: "" });
        }
        return problems;
      },
      { mix: { purchase: 70, grant: 15, deduct: 15, batchDeduct: 0, refund: 0, repeat: 5 } },
    );
  });

  it("account locks expiring in the middle of batches", async () => {
    await drill(
      "lock TTL (100 ms) expiring mid-batch on hot accounts, two servers",
      { serverEnv: { LOCK_TTL_MS: "100", FAILPOINTS: "credit.beforeCommit=delay:300" }, users: 40 },
      async (_stack, load) => {
        await phases(load, { before: 0, after: 0 }, () => sleep(5_000));
      },
      { concurrency: 32, mix: { grant: 30, deduct: 50, batchDeduct: 10, purchase: 0, refund: 5, repeat: 5 } },
    );
  });

  it("two servers whose clocks disagree by three minutes", async () => {
    const skewed = fileURLToPath(new URL("./skewed-clock.mjs", import.meta.url));
    const offsets = [-90_000, 90_000];
    await drill(
      "clock skew: servers 90 s behind and 90 s ahead",
      {
        serverNodeArgs: () => ["--import", skewed],
        serverEnvOf: (i) => ({ FP_DRILL_CLOCK_OFFSET_MS: String(offsets[i]), RATE_LIMIT_PER_SECOND: "5", RATE_LIMIT_BURST: "5" }),
      },
      async (stack, load) => {
        const problems: string[] = [];
        const [ahead, behind] = [stack.servers[1]!.url, stack.servers[0]!.url];
        const deduct = async (url: string, userId: string, n: number) => {
          const res = await fetch(`${url}/api/trpc/credit.deduct`, {
            method: "POST",
            headers: { "content-type": "application/json", authorization: `Bearer ${stack.apiKey}` },
            body: JSON.stringify({ userId, creditTypeId: stack.creditTypeId, amount: 1, businessCode: "drill.skew", businessId: `${userId}-${url.slice(-5)}-${n}` }),
          });
          const json = (await res.json()) as { error?: { data: { appCode: string; retryAfterMs?: number } } };
          return { code: json.error?.data.appCode ?? "ok", retryAfterMs: json.error?.data.retryAfterMs };
        };

        // The breaker, opened by a third instance with the machine's clock (open for 1 s).
        const deps = await createTestDeps({ ...stack.env });
        try {
          for (let i = 0; i < 30; i++) await recordOutcome(deps, await admitCall(deps, "credit.deduct"), "failure");
        } finally {
          await closeDeps(deps);
        }
        const opened = performance.now();
        const early = await Promise.all([...Array.from({ length: 5 }, (_, n) => deduct(ahead, stack.users[0]!, n)), ...Array.from({ length: 5 }, (_, n) => deduct(behind, stack.users[1]!, n))]);
        const earlyMs = performance.now() - opened;
        if (earlyMs < 800 && early.some((a) => a.code !== "CIRCUIT_OPEN")) {
          problems.push(`within ${earlyMs.toFixed(0)} ms of opening, calls were not all refused CIRCUIT_OPEN: ${early.map((a) => a.code).join(", ")}`);
        }
        if (early.some((a) => a.retryAfterMs !== undefined && (a.retryAfterMs <= 0 || a.retryAfterMs > 1_000))) {
          problems.push(`retryAfterMs outside (0, 1000] while open for 1 s: ${early.map((a) => a.retryAfterMs).join(", ")}`);
        }
        await sleep(2_500); // past open (1 s) and half-open (1 s): both servers admit calls again
        const later = await Promise.all([deduct(ahead, stack.users[2]!, 0), deduct(behind, stack.users[3]!, 0)]);
        if (later.some((a) => a.code === "CIRCUIT_OPEN")) problems.push(`2.5 s after opening, a server still refuses CIRCUIT_OPEN: ${later.map((a) => a.code).join(", ")}`);

        // One user's bucket (5/s, burst 5), drawn through both servers for 2 s.
        const user = stack.users[4]!;
        const answers: string[] = [];
        const t0 = performance.now();
        for (let n = 0; performance.now() - t0 < 2_000; n++) {
          answers.push(...(await Promise.all([deduct(ahead, user, n), deduct(behind, user, n)])).map((a) => a.code));
          await sleep(50);
        }
        const seconds = (performance.now() - t0) / 1000;
        const allowed = answers.filter((c) => c === "ok").length;
        const most = Math.ceil(5 + 5 * seconds) + 1;
        if (allowed > most || allowed < 5) problems.push(`the bucket let ${allowed} of ${answers.length} through in ${seconds.toFixed(1)} s (between 5 and ${most} expected)`);

        // And the usual mixed load, with both clocks off: the sale (on since
        // before the servers started) is open on both, whatever their clocks say.
        await phases(load, { before: 0, after: 0 }, () => sleep(3_000));
        const notActive = load.requests.flatMap((r) => r.answers).filter((a) => a.kind === "answered" && a.appCode === "ACTIVITY_NOT_ACTIVE");
        if (notActive.length > 0) problems.push(`${notActive.length} purchases were refused ACTIVITY_NOT_ACTIVE by a server judging the sale's window by its own clock`);
        return problems;
      },
      { mix: { grant: 20, deduct: 40, batchDeduct: 10, purchase: 15, refund: 5, repeat: 10 } },
    );
  });
});
