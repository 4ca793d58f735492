/**
 * How fast the API is served, by path (README, "Benchmarks"):
 *   API_ONLY=1 (Next never loaded) vs the full server (`npm start`: dashboard
 *   and API in one process, after a page has been rendered), for an
 *   authenticated no-op (`system.ping`) and `credit.grant` (one transaction).
 * Needs `npm run build`. Usage: npx tsx scripts/bench/serving.ts
 */
import { existsSync } from "node:fs";
import { createBenchDb, nextId, printTable, runLoad, startServerProcess, type LoadResult } from "./lib";
import { createDb } from "../../src/server/infra/db";
import { createApiKey } from "../../src/server/identity/api-keys";

async function main(): Promise<void> {
  if (!existsSync("dist/server.js") || !existsSync(".next/BUILD_ID")) {
    throw new Error("run `npm run build` first: this benchmark measures the production server");
  }
  const bench = await createBenchDb();
  const db = createDb({ url: bench.url, poolMax: 2, poolWaitMs: 2000, statementTimeoutMs: 5000, txTimeoutMs: 5000 });
  const results: LoadResult[] = [];
  try {
    await db.creditType.create({ data: { id: "points", name: "points" } });
    const { key } = await createApiKey(db, { name: "bench", scopes: [] });
    for (const mode of ["api-only", "full"] as const) {
      const server = await startServerProcess({
        DATABASE_URL: bench.url,
        REDIS_KEY_PREFIX: `${bench.redisPrefix}${mode}:`,
        RATE_LIMIT_PER_SECOND: "1000000",
        RATE_LIMIT_BURST: "1000000",
        ...(mode === "api-only" ? { API_ONLY: "1" } : {}),
      });
      try {
        if (mode === "full") {
          // Render a page first: from then on the process pays Next's async context cost.
          const page = await fetch(`${server.url}/admin/login`);
          if (!page.ok) throw new Error(`the dashboard did not render (${page.status})`);
        }
        const common = { url: server.url, apiKey: key };
        results.push(await runLoad({ ...common, name: `${mode} ping`, path: "/api/trpc/system.ping", body: () => ({}) }));
        results.push(
          await runLoad({
            ...common,
            name: `${mode} grant`,
            path: "/api/trpc/credit.grant",
            body: () => ({
              userId: `u${Math.floor(Math.random() * 1000)}`,
              creditTypeId: "points",
              amount: 1,
              businessCode: "bench",
              businessId: nextId("grant"),
            }),
          }),
        );
      } finally {
        await server.stop();
      }
    }
    printTable(results, "api-only ping");
  } finally {
    await db.$disconnect();
    await bench.drop();
  }
}

main().catch((e: unknown) => {
  console.error(e);
  process.exit(1);
});
