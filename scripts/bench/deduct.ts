/**
 * Deductions under load (README, "Benchmarks"), against an API-only server of
 * its own (`dist/server.js` when built, else tsx), a throw-away database and a
 * Redis key prefix of its own, all removed at the end. Scenarios, each
 * BENCH_SECONDS (default 10) with BENCH_CONNECTIONS (default 32) connections:
 *
 *   ping          authenticated no-op mutation (`system.ping`): the baseline
 *   grant         `credit.grant` on 1,000 accounts
 *   deduct hot    `credit.deduct` on ONE account (lock + versioned update queue)
 *   deduct 1000   `credit.deduct` spread over 1,000 accounts
 *   deduct 1000 + X-Request-Id   the same, each call with its own request id
 *                 (replay marker, result cache, request record)
 *
 * Every call has a unique business key. Afterwards the books are checked:
 * balance == Σ credits − Σ debits ≥ 0 for every account.
 *
 * Usage: npx tsx scripts/bench/deduct.ts
 */
import { randomUUID } from "node:crypto";
import { existsSync, readdirSync, statSync } from "node:fs";
import path from "node:path";
import autocannon from "autocannon";
import { createBenchDb, nextId, startServerProcess } from "./lib";
import { createDb } from "../../src/server/infra/db";
import { createApiKey } from "../../src/server/identity/api-keys";

const ACCOUNTS = 1000;
const CREDIT_TYPE = "bench";
const SECONDS = Number(process.env.BENCH_SECONDS ?? 10);
const CONNECTIONS = Number(process.env.BENCH_CONNECTIONS ?? 32);

type Result = {
  name: string;
  okPerSec: number;
  p50: number;
  p99: number;
  ok: number;
  failed: number;
  codes: Record<string, number>;
};

/** One autocannon run; counts 2xx answers and the appCode of every other one. */
async function run(opts: {
  name: string;
  url: string;
  apiKey: string;
  procedure: string;
  body: () => unknown;
  headers?: () => Record<string, string>;
}): Promise<Result> {
  const codes: Record<string, number> = {};
  let ok = 0;
  const result = await autocannon({
    url: opts.url,
    connections: CONNECTIONS,
    duration: SECONDS,
    requests: [
      {
        method: "POST",
        path: `/api/trpc/${opts.procedure}`,
        headers: { "content-type": "application/json", authorization: `Bearer ${opts.apiKey}` },
        setupRequest: (req) => ({
          ...req,
          body: JSON.stringify(opts.body()),
          ...(opts.headers ? { headers: { ...req.headers, ...opts.headers() } } : {}),
        }),
        onResponse: (status, body) => {
          if (status === 200) {
            ok++;
            return;
          }
          let code = `HTTP ${status}`;
          try {
            code = (JSON.parse(body) as { error?: { data?: { appCode?: string } } }).error?.data?.appCode ?? code;
          } catch {
            // not JSON
          }
          codes[code] = (codes[code] ?? 0) + 1;
        },
      },
    ],
  });
  const failed = Object.values(codes).reduce((a, b) => a + b, 0) + result.errors + result.timeouts;
  if (result.errors + result.timeouts > 0) codes["connection errors/timeouts"] = result.errors + result.timeouts;
  return { name: opts.name, okPerSec: ok / result.duration, p50: result.latency.p50, p99: result.latency.p99, ok, failed, codes };
}

function newestSource(dir: string): number {
  let newest = 0;
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) newest = Math.max(newest, newestSource(p));
    else if (/\.(ts|lua)$/.test(e.name) && !/\.test\.ts$/.test(e.name)) newest = Math.max(newest, statSync(p).mtimeMs);
  }
  return newest;
}

async function main(): Promise<void> {
  if (existsSync("dist/server.js") && statSync("dist/server.js").mtimeMs < newestSource("src/server")) {
    throw new Error("dist/server.js is older than src/server: run `npm run build` (or remove dist/ to run through tsx)");
  }
  const bench = await createBenchDb();
  const prefix = bench.redisPrefix;
  const db = createDb({ url: bench.url, poolMax: 2, poolWaitMs: 5000, statementTimeoutMs: 60_000, txTimeoutMs: 60_000 });
  let server: Awaited<ReturnType<typeof startServerProcess>> | undefined;
  try {
    await db.creditType.create({ data: { id: CREDIT_TYPE, name: CREDIT_TYPE } });
    const { key } = await createApiKey(db, { name: "bench", scopes: [] });
    // 1,000 accounts and a hot one, each with its opening credit in the ledger.
    await db.$executeRaw`
      INSERT INTO accounts (user_id, credit_type_id, balance, version)
      SELECT 'u' || g, ${CREDIT_TYPE}, 1000000000, 1 FROM generate_series(0, ${ACCOUNTS - 1}) g
      UNION ALL SELECT 'hot', ${CREDIT_TYPE}, 1000000000, 1`;
    await db.$executeRaw`
      INSERT INTO ledger_entries (account_id, user_id, credit_type_id, type, amount, balance_after, business_code, business_id)
      SELECT id, user_id, credit_type_id, 'CREDIT'::"LedgerType", balance, balance, 'bench.open', user_id FROM accounts`;

    server = await startServerProcess({
      API_ONLY: "1",
      DATABASE_URL: bench.url,
      REDIS_KEY_PREFIX: prefix,
      // A rate limiter would measure itself, not the path behind it.
      RATE_LIMIT_PER_SECOND: "1000000",
      RATE_LIMIT_BURST: "1000000",
    });
    const common = { url: server.url, apiKey: key };
    const anyUser = () => `u${Math.floor(Math.random() * ACCOUNTS)}`;
    const change = (userId: string, code: string) => ({ userId, creditTypeId: CREDIT_TYPE, amount: 1, businessCode: code, businessId: nextId(code) });

    // Warm-up (JIT, pools, API key cache), not measured.
    await fetch(`${server.url}/api/trpc/system.ping`, {
      method: "POST",
      headers: { "content-type": "application/json", authorization: `Bearer ${key}` },
      body: "{}",
    });

    const results: Result[] = [];
    results.push(await run({ ...common, name: "ping", procedure: "system.ping", body: () => ({}) }));
    results.push(await run({ ...common, name: "grant (1,000 accounts)", procedure: "credit.grant", body: () => change(anyUser(), "bench.grant") }));
    results.push(await run({ ...common, name: "deduct (ONE hot account)", procedure: "credit.deduct", body: () => change("hot", "bench.hot") }));
    results.push(await run({ ...common, name: "deduct (1,000 accounts)", procedure: "credit.deduct", body: () => change(anyUser(), "bench.spread") }));
    results.push(
      await run({
        ...common,
        name: "deduct (1,000 accounts) + X-Request-Id",
        procedure: "credit.deduct",
        body: () => change(anyUser(), "bench.rid"),
        headers: () => ({ "x-request-id": randomUUID() }),
      }),
    );

    const base = results[0]!;
    console.log(`\n${SECONDS} s per scenario, ${CONNECTIONS} connections, server: ${existsSync("dist/server.js") ? "node dist/server.js" : "tsx"} (API_ONLY=1)`);
    console.table(
      results.map((r) => ({
        scenario: r.name,
        "calls/s": Math.round(r.okPerSec),
        "p50 ms": r.p50,
        "p99 ms": r.p99,
        "× ping": (r.okPerSec / base.okPerSec).toFixed(2),
        ok: r.ok,
        errors: r.failed,
        "error codes": Object.keys(r.codes).length > 0 ? JSON.stringify(r.codes) : "",
      })),
    );

    const [books] = await db.$queryRaw<{ accounts: bigint; off: bigint; negative: bigint; debits: bigint }[]>`
      SELECT count(*) AS accounts,
             count(*) FILTER (WHERE a.balance <> s.credits - s.debits) AS off,
             count(*) FILTER (WHERE a.balance < 0) AS negative,
             COALESCE(sum(s.n_debits), 0)::bigint AS debits
      FROM accounts a JOIN (
        SELECT account_id,
               COALESCE(sum(amount) FILTER (WHERE type = 'CREDIT'), 0) AS credits,
               COALESCE(sum(amount) FILTER (WHERE type = 'DEBIT'), 0) AS debits,
               count(*) FILTER (WHERE type = 'DEBIT') AS n_debits
        FROM ledger_entries GROUP BY account_id) s ON s.account_id = a.id`;
    console.log(
      `books: ${books?.accounts} accounts, ${books?.debits} debits; balance ≠ credits − debits: ${books?.off}; negative: ${books?.negative}`,
    );
    if (!books || books.off !== 0n || books.negative !== 0n) process.exitCode = 1;
  } finally {
    await server?.stop();
    await db.$disconnect();
    await bench.drop();
  }
}

main().catch((e: unknown) => {
  console.error(e);
  process.exit(1);
});
