/**
 * What admission control costs (README, "Benchmarks"): the same procedure
 * with the token bucket and the circuit breaker in front
 * (`admission("credit.deduct")`: two Redis Lua calls) and without, in one run.
 *
 * One API process of its own serves both variants side by side (same router
 * code, context, pools and warm caches), so the only difference is the
 * middleware. Limits are set far above the load, so nothing is refused.
 * Measured for `credit.deduct`'s work (lock + one transaction) and for an
 * authenticated no-op (the absolute cost per call). Each variant gets
 * BENCH_SECONDS (default 10) in four segments interleaved A-B-B-A-B-A-A-B,
 * so that load drifting on a shared machine weighs on both alike.
 *
 * Usage: npx tsx scripts/bench/admission.ts
 */
import { spawn } from "node:child_process";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { fileURLToPath } from "node:url";
import { z } from "zod";
import { createHTTPHandler } from "@trpc/server/adapters/standalone";
import { createBenchDb, nextId, runLoad, stopChild, type LoadResult } from "./lib";
import { loadEnv } from "../../src/server/infra/env";
import { closeDeps, createDeps } from "../../src/server/infra/deps";
import { waitForRedis } from "../../src/server/infra/redis";
import { createContextInner } from "../../src/server/api/context";
import { createTRPCRouter, serviceProcedure } from "../../src/server/api/trpc";
import { ZBalanceChangeRequestSchema } from "../../src/server/api/schemas";
import { deductCredits } from "../../src/server/credit/deduct";
import { grantCredits } from "../../src/server/credit/grant";
import { createApiKey } from "../../src/server/identity/api-keys";
import { admission } from "../../src/server/api/middleware/admission";

const USERS = 500;
const CREDIT_TYPE = "bench";

// ── the server process ─────────────────────────────────────────────────────────

function benchRouter() {
  const deduct = serviceProcedure.input(ZBalanceChangeRequestSchema);
  const ping = serviceProcedure.input(z.object({ userId: z.string(), creditTypeId: z.string() }).strict());
  return createTRPCRouter({
    deductOn: deduct
      .use(admission("credit.deduct"))
      .mutation(({ ctx, input }) => deductCredits(ctx.deps, input, { principal: `key:${ctx.principal.keyId}`, requestId: ctx.requestId })),
    deductOff: deduct.mutation(({ ctx, input }) =>
      deductCredits(ctx.deps, input, { principal: `key:${ctx.principal.keyId}`, requestId: ctx.requestId }),
    ),
    pingOn: ping.use(admission("credit.deduct")).mutation(() => ({ ok: true as const })),
    pingOff: ping.mutation(() => ({ ok: true as const })),
  });
}

async function serve(): Promise<void> {
  const env = loadEnv();
  const deps = createDeps(env, {}, "bench-admission");
  await waitForRedis(deps.redis, 3_000);
  await deps.db.creditType.upsert({ where: { id: CREDIT_TYPE }, create: { id: CREDIT_TYPE, name: CREDIT_TYPE }, update: {} });
  for (let i = 0; i < USERS; i++) {
    await grantCredits(
      deps,
      { userId: `u${i}`, creditTypeId: CREDIT_TYPE, amount: 1_000_000_000, businessCode: "bench.seed", businessId: `seed-${i}` },
      { principal: null, requestId: null },
    );
  }
  const { key } = await createApiKey(deps.db, { name: "bench", scopes: [] });
  const handler = createHTTPHandler({
    router: benchRouter(),
    basePath: "/api/trpc/",
    createContext: ({ req }) => createContextInner({ deps, authorization: req.headers.authorization ?? null }),
  });
  const server = createServer((req, res) => handler(req, res));
  server.keepAliveTimeout = 65_000;
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const { port } = server.address() as AddressInfo;
  process.stdout.write(`${JSON.stringify({ url: `http://127.0.0.1:${port}`, apiKey: key })}\n`);
  process.once("SIGTERM", () => {
    server.closeAllConnections();
    server.close(() => void closeDeps(deps).then(() => process.exit(0)));
  });
}

// ── the driver ─────────────────────────────────────────────────────────────────

type Started = { url: string; apiKey: string; stop: () => Promise<void> };

async function startBenchServer(env: Record<string, string>): Promise<Started> {
  const child = spawn(process.execPath, ["--import", "tsx", fileURLToPath(import.meta.url), "--serve"], {
    env: { ...process.env, NODE_ENV: "production", LOG_LEVEL: "warn", ...env },
    stdio: ["ignore", "pipe", "inherit"],
  });
  let out = "";
  const info = await new Promise<{ url: string; apiKey: string }>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error("bench server did not start within 90 s")), 90_000);
    child.once("exit", (code) => reject(new Error(`bench server exited with ${code}`)));
    child.stdout.on("data", (c: Buffer) => {
      out += c.toString();
      const line = out.split("\n").find((l) => l.startsWith("{"));
      if (line) {
        clearTimeout(timer);
        resolve(JSON.parse(line) as { url: string; apiKey: string });
      }
    });
  });
  return { ...info, stop: () => stopChild(child) };
}

type Summary = { name: string; rps: number; p50: number; p99: number; refused: number; total: number };

/** Rates from counts: autocannon's per-second samples are too few in short segments. */
function combine(name: string, parts: LoadResult[], segmentS: number): Summary {
  const n = parts.length;
  const total = parts.reduce((s, p) => s + p.total, 0);
  return {
    name,
    rps: total / (segmentS * n),
    p50: parts.reduce((s, p) => s + p.p50, 0) / n,
    p99: parts.reduce((s, p) => s + p.p99, 0) / n,
    refused: parts.reduce((s, p) => s + p.non2xx + p.errors, 0),
    total,
  };
}

async function drive(): Promise<void> {
  const seconds = Number(process.env.BENCH_SECONDS ?? 10);
  const segment = Math.max(1, seconds / 4);
  const bench = await createBenchDb();
  const prefix = bench.redisPrefix;
  const redisUrl = process.env.REDIS_URL ?? "redis://127.0.0.1:6379";
  let server: Started | undefined;
  try {
    server = await startBenchServer({
      DATABASE_URL: bench.url,
      REDIS_URL: redisUrl,
      REDIS_KEY_PREFIX: prefix,
      RATE_LIMIT_PER_SECOND: "1000000",
      RATE_LIMIT_BURST: "1000000",
    });
    const { url, apiKey } = server;
    const user = () => `u${Math.floor(Math.random() * USERS)}`;
    const bodies = {
      deduct: () => ({ userId: user(), creditTypeId: CREDIT_TYPE, amount: 1, businessCode: "bench", businessId: nextId("d") }),
      ping: () => ({ userId: user(), creditTypeId: CREDIT_TYPE }),
    };
    const summaries: Summary[] = [];
    for (const work of ["deduct", "ping"] as const) {
      const run = (variant: "On" | "Off", durationS: number) =>
        runLoad({ name: `${work}${variant}`, url, apiKey, path: `/api/trpc/${work}${variant}`, body: bodies[work], durationS });
      // Warm-up: JIT, pools, scripts loaded, tables and indexes in cache.
      await run("Off", 3);
      await run("On", 3);
      const on: LoadResult[] = [];
      const off: LoadResult[] = [];
      // A-B-B-A then B-A-A-B: a load that drifts during the run weighs on both alike.
      for (const variant of ["On", "Off", "Off", "On", "Off", "On", "On", "Off"] as const) {
        (variant === "On" ? on : off).push(await run(variant, segment));
      }
      summaries.push(combine(`${work}: admission on`, on, segment), combine(`${work}: admission off`, off, segment));
      console.log(`${work} segments, calls/s: on ${on.map((r) => Math.round(r.total / segment)).join(" ")} · off ${off.map((r) => Math.round(r.total / segment)).join(" ")}`);
    }
    console.log(`\nadmission control on vs off (${segment * 4} s each in 4 interleaved segments, 32 connections, ${USERS} users)`);
    console.table(
      summaries.map((s, i) => {
        const base = summaries[i % 2 === 0 ? i + 1 : i]!;
        return {
          scenario: s.name,
          "calls/s": Math.round(s.rps),
          "p50 ms": s.p50.toFixed(1),
          "p99 ms": s.p99.toFixed(1),
          "non-2xx+errors": s.refused,
          calls: s.total,
          "on/off": i % 2 === 0 ? (s.rps / base.rps).toFixed(3) : "",
        };
      }),
    );
    const [deductOn, deductOff, pingOn, pingOff] = summaries as [Summary, Summary, Summary, Summary];
    const ratio = deductOn.rps / deductOff.rps;
    const perCallMs = 1_000 / pingOn.rps - 1_000 / pingOff.rps;
    console.log(`credit.deduct throughput with admission control: ${(ratio * 100).toFixed(1)} % of without (target ≥ 90 %)`);
    console.log(`cost per call at saturation (no-op): ${(perCallMs * 1000).toFixed(0)} µs of server time`);
    if (deductOn.refused + deductOff.refused + pingOn.refused + pingOff.refused > 0) {
      console.log("warning: some calls were refused or failed; the figures include them");
    }
  } finally {
    await server?.stop();
    await bench.drop();
  }
}

if (process.argv.includes("--serve")) {
  serve().catch((e: unknown) => {
    console.error(e);
    process.exit(1);
  });
} else {
  drive().catch((e: unknown) => {
    console.error(e);
    process.exitCode = 1;
  });
}
