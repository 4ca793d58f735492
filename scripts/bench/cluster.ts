/**
 * `npm run bench -- --cluster`: the several-instance topology (`cluster:up`)
 * measured two ways in the same run, for each workload:
 *
 *   - one instance: a closed loop straight at one API-only instance;
 *   - the topology: the same loop at the balancer, which spreads it over both.
 *
 * Both go through the same PgBouncer, primary, replica and Redis Cluster, so
 * the ratio (topology ÷ one instance) is what the second instance adds on
 * this machine. docs/operations.md ("Capacity") reads the table.
 */
import { mkdtempSync, chmodSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import pg from "pg";
import { clusterDown, clusterUp, type ClusterState } from "../cluster/topology";
import { anySpreadUser, checkBooks, CREDIT_TYPE, HOT_USER, seed } from "./accounts";
import { soldOutFlood, catalogKey } from "./flash-sale";
import { GENEROUS_LIMITS, nextId, percentiles, runLoad, type RawRun } from "./lib";

const TRPC = "/api/trpc/";

export type ClusterBenchSettings = { seconds: number; warmSeconds: number; connections: number };

type Row = { workload: string; one: RawRun; all: RawRun };

function rate(r: RawRun): number {
  return r.ok / r.seconds;
}

function p99(r: RawRun): string {
  const p = percentiles(r.latenciesMs);
  return p ? `${Math.round(p.p99)} ms` : "–";
}

function errorsOf(r: RawRun): string {
  const e = Object.entries(r.errors);
  return e.length === 0 ? "none" : e.map(([k, n]) => `${k} ${n}`).join(", ");
}

export async function runClusterBench(s: ClusterBenchSettings): Promise<number> {
  const dir = mkdtempSync(path.join(tmpdir(), "fp-cluster-bench-"));
  chmodSync(dir, 0o777);
  let state: ClusterState | undefined;
  const stop = () => void clusterDown(dir).finally(() => process.exit(130));
  process.once("SIGINT", stop);
  process.once("SIGTERM", stop);
  try {
    const t0 = Date.now();
    state = await clusterUp({ dir, seed: false, env: { ...GENEROUS_LIMITS, LOG_LEVEL: "warn", DB_POOL_MAX: "16" }, log: (l) => console.log(`==> ${l}`) });
    console.log(`topology up in ${((Date.now() - t0) / 1000).toFixed(1)} s: ${state.url} (${state.api.length} API instances, Redis ${state.redis.mode})`);
    // Seeded as the superuser straight on the primary (the bench's own data, not the service's path).
    const direct = `postgresql://postgres@127.0.0.1:${state.postgres.primary.port}/${state.dbName}`;
    const seeded = await seed(direct);
    const catalog = await catalogKey(direct);
    const pool = new pg.Pool({ connectionString: direct, max: 2 });
    const one = state.api[0]!.url;
    const all = state.url;
    const spread = () => ({ userId: anySpreadUser(), creditTypeId: CREDIT_TYPE, amount: 1, businessCode: "bench.deduct", businessId: nextId("d") });
    const hot = () => ({ userId: HOT_USER, creditTypeId: CREDIT_TYPE, amount: 1, businessCode: "bench.hot", businessId: nextId("h") });
    const ledgerPath = () => `${TRPC}credit.ledger?input=${encodeURIComponent(JSON.stringify({ userId: anySpreadUser(), creditTypeId: CREDIT_TYPE, limit: 10 }))}`;

    const measure = async (url: string, procedure: string, body: () => unknown, getPath?: () => string): Promise<RawRun> => {
      const load = { url, path: `${TRPC}${procedure}`, apiKey: seeded.apiKey, body, connections: s.connections, ...(getPath ? { getPath } : {}) };
      await runLoad({ ...load, seconds: s.warmSeconds });
      return runLoad({ ...load, seconds: s.seconds });
    };
    const rows: Row[] = [];
    const both = async (workload: string, run: (url: string) => Promise<RawRun>) => {
      const a = await run(one);
      const b = await run(all);
      rows.push({ workload, one: a, all: b });
      console.log(`${workload}: one instance ${Math.round(rate(a))}/s, the topology ${Math.round(rate(b))}/s`);
    };
    await both("system.ping (the HTTP path alone)", (url) => measure(url, "system.ping", () => ({})));
    await both("credit.deduct, 1,000 accounts", (url) => measure(url, "credit.deduct", spread));
    await both("credit.deduct, ONE hot account", (url) => measure(url, "credit.deduct", hot));
    await both("credit.ledger (replica reads), 1,000 accounts", (url) => measure(url, "credit.ledger", () => ({}), ledgerPath));
    await both("flashSale.purchase, sold out", async (url) => {
      const flood = await soldOutFlood({ url, serviceKey: seeded.apiKey, catalog, connections: s.connections, warmSeconds: s.warmSeconds, seconds: s.seconds });
      return flood.raw;
    });
    const books = await checkBooks(pool);
    await pool.end();

    const table = [
      "| workload | one instance (calls/s) | topology, 2 API instances behind HAProxy (calls/s) | topology ÷ one | p99 one / topology | errors (topology) |",
      "|---|---:|---:|---:|---|---|",
      ...rows.map((r) => `| ${r.workload} | ${Math.round(rate(r.one)).toLocaleString("en-US")} | ${Math.round(rate(r.all)).toLocaleString("en-US")} | ${(rate(r.all) / Math.max(rate(r.one), 1e-9)).toFixed(2)}× | ${p99(r.one)} / ${p99(r.all)} | ${errorsOf(r.all)} |`),
    ].join("\n");
    console.log(`\n${table}\n`);
    console.log(`${s.seconds} s per run after ${s.warmSeconds} s warm-up, ${s.connections} connections; every process on this machine's cores (load generator included).`);
    console.log(books.ok ? `books: right (${books.accounts} accounts, ${books.ledgerRows} ledger rows)` : `books: WRONG (${books.mismatchCount} accounts)`);
    return books.ok ? 0 : 1;
  } finally {
    process.removeListener("SIGINT", stop);
    process.removeListener("SIGTERM", stop);
    await clusterDown(dir);
  }
}
