/**
 * Which driver runs the balance engine's statements faster: the pg pool
 * beneath Prisma's adapter, or Prisma's raw queries and interactive
 * transactions over the same connections (docs/architecture.md, "The balance
 * engine"). In-process, no HTTP: the same engine, the same statements, only
 * the runner differs; segments alternate so both see the same machine.
 *
 * Usage: npx tsx scripts/bench/driver.ts [--seconds N]
 */
import { randomUUID } from "node:crypto";
import { loadEnv } from "../../src/server/infra/env";
import { closeDeps, createDeps, type Deps } from "../../src/server/infra/deps";
import { pgRunner, prismaRunner, type SqlRunner } from "../../src/server/infra/sql";
import { poolOf } from "../../src/server/infra/db";
import { waitForRedis } from "../../src/server/infra/redis";
import { BalanceEngine } from "../../src/server/credit/balance-engine";
import { grantCredits } from "../../src/server/credit/grant";
import { createBenchDb } from "./lib";

const args = process.argv.slice(2);
const SECONDS = Number(args[args.indexOf("--seconds") + 1] ?? 0) || 5;
const CLIENTS = 64;
const ACCOUNTS = 1000;
const CREDIT_TYPE = "points";

type Segment = { runner: string; scenario: string; perSec: number; batches: number; changes: number };

async function segment(deps: Deps, runnerName: string, runner: SqlRunner, scenario: "1000 accounts" | "one hot account"): Promise<Segment> {
  const engine = new BalanceEngine(deps, { batchMax: deps.env.BALANCE_BATCH_MAX, inFlight: deps.env.BALANCE_BATCHES_IN_FLIGHT }, runner);
  const deadline = Date.now() + SECONDS * 1000;
  let ok = 0;
  let n = 0;
  const worker = async () => {
    while (Date.now() < deadline) {
      const user = scenario === "one hot account" ? "hot" : `u${n++ % ACCOUNTS}`;
      const out = await engine.submit({
        type: "DEBIT",
        operationType: "credit.deduct",
        eventType: "credit.deducted",
        request: { userId: user, creditTypeId: CREDIT_TYPE, amount: 1, businessCode: "bench", businessId: randomUUID() },
        caller: { principal: "bench", requestId: null },
      });
      if (out.ok) ok++;
      else throw out.error;
    }
  };
  const started = performance.now();
  await Promise.all(Array.from({ length: CLIENTS }, worker));
  const secs = (performance.now() - started) / 1000;
  return { runner: runnerName, scenario, perSec: ok / secs, batches: engine.stats.batches, changes: engine.stats.changes };
}

async function main(): Promise<void> {
  const bench = await createBenchDb();
  let deps: Deps | undefined;
  try {
    const env = loadEnv({
      NODE_ENV: "production",
      DATABASE_URL: bench.url,
      REDIS_URL: bench.redisUrl,
      REDIS_KEY_PREFIX: bench.redisPrefix,
      LOG_LEVEL: "warn",
    });
    deps = createDeps(env, {}, "flashpoints-bench");
    await waitForRedis(deps.redis, 3000);
    await deps.db.creditType.upsert({ where: { id: CREDIT_TYPE }, create: { id: CREDIT_TYPE, name: "Points" }, update: {} });
    const users = [...Array.from({ length: ACCOUNTS }, (_, i) => `u${i}`), "hot"];
    for (const userId of users) {
      await grantCredits(deps, { userId, creditTypeId: CREDIT_TYPE, amount: 10_000_000, businessCode: "fund", businessId: userId }, { principal: null, requestId: null });
    }
    const runners: [string, SqlRunner][] = [
      ["pg pool", pgRunner(poolOf(deps.db), { txTimeoutMs: deps.env.DB_TX_TIMEOUT_MS })],
      ["Prisma raw", prismaRunner(deps.db)],
    ];
    const results: Segment[] = [];
    for (const scenario of ["1000 accounts", "one hot account"] as const) {
      for (let round = 0; round < 2; round++) {
        for (const [name, runner] of round === 0 ? runners : [...runners].reverse()) {
          results.push(await segment(deps, name, runner, scenario));
        }
      }
    }
    console.log(`\n${SECONDS} s per segment, ${CLIENTS} in-process clients, each driver twice (alternating)\n`);
    console.log("| scenario | driver | deductions/s | avg batch |");
    console.log("| --- | --- | --- | --- |");
    for (const scenario of ["1000 accounts", "one hot account"]) {
      for (const [name] of runners) {
        const rs = results.filter((r) => r.scenario === scenario && r.runner === name);
        const perSec = rs.reduce((a, r) => a + r.perSec, 0) / rs.length;
        const batch = rs.reduce((a, r) => a + r.changes, 0) / Math.max(1, rs.reduce((a, r) => a + r.batches, 0));
        console.log(`| ${scenario} | ${name} | ${Math.round(perSec).toLocaleString("en-US")} | ${batch.toFixed(1)} |`);
      }
    }
  } finally {
    if (deps) await closeDeps(deps);
    await bench.drop();
  }
}

main().catch((e: unknown) => {
  console.error(e);
  process.exit(1);
});
