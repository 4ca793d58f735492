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
import { catalogKey, openSale } from "./flash-sale";
import { callOnce, GENEROUS_LIMITS, nextId, percentiles, runLoad, type RawRun } from "./lib";
import { machineTicks, postmasterPid, stealPercent, treeCpuSeconds } from "./cpu";

const TRPC = "/api/trpc/";

export type ClusterBenchSettings = { seconds: number; warmSeconds: number; connections: number };

/** CPU seconds each tier spent during a measured run. */
type Cpu = Record<string, number>;
type Measured = { raw: RawRun; cpu: Cpu };
type Row = { workload: string; one: Measured; all: Measured };

const TIERS = ["API instances", "HAProxy", "PgBouncer", "PostgreSQL primary", "replica", "Redis Cluster", "workers + dashboard", "load generator"] as const;

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
  const ticksAtStart = machineTicks();
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

    const topology = state;
    const pidsOf = (names: (n: string) => boolean) => topology.processes.filter((p) => names(p.name)).map((p) => p.pid);
    const roots = () => ({
      "API instances": topology.api.map((a) => a.pid),
      HAProxy: pidsOf((n) => n === "haproxy"),
      PgBouncer: pidsOf((n) => n === "pgbouncer"),
      "PostgreSQL primary": [postmasterPid(topology.postgres.primary.dataDir) ?? -1],
      replica: [postmasterPid(topology.postgres.replica.dataDir) ?? -1],
      "Redis Cluster": topology.redis.nodes.map((n) => n.pid),
      "workers + dashboard": [...topology.workers.map((w) => w.pid), topology.dashboard.pid],
    });
    const cpuNow = (): Cpu => {
      const self = process.cpuUsage();
      return { ...treeCpuSeconds(roots()), "load generator": (self.user + self.system) / 1e6 };
    };
    /** `getPath`: a GET per call instead of a POST; `expected`: the refusal that is this workload's right answer; `headers`: sent with every call. */
    const measure = async (
      url: string,
      procedure: string,
      body: () => unknown,
      more: { getPath?: () => string; expected?: string; headers?: Record<string, string> } = {},
    ): Promise<Measured> => {
      const { getPath, expected, headers } = more;
      const load = { url, path: `${TRPC}${procedure}`, apiKey: seeded.apiKey, body, connections: s.connections, ...(getPath ? { getPath } : {}), ...(headers ? { headers } : {}) };
      await runLoad({ ...load, seconds: s.warmSeconds });
      const before = cpuNow();
      let raw = await runLoad({ ...load, seconds: s.seconds });
      const after = cpuNow();
      if (expected) {
        // The expected refusal (SOLD_OUT) is this workload's right answer.
        const { [expected]: right = 0, ...others } = raw.errors;
        raw = { ...raw, ok: raw.ok + right, errors: others };
      }
      return { raw, cpu: Object.fromEntries(TIERS.map((t) => [t, (after[t] ?? 0) - (before[t] ?? 0)])) };
    };
    const rows: Row[] = [];
    const both = async (workload: string, run: (url: string) => Promise<Measured>) => {
      const a = await run(one);
      const b = await run(all);
      rows.push({ workload, one: a, all: b });
      console.log(`${workload}: one instance ${Math.round(rate(a.raw))}/s, the topology ${Math.round(rate(b.raw))}/s`);
    };
    await both("system.ping (the HTTP path alone)", (url) => measure(url, "system.ping", () => ({})));
    await both("credit.deduct, 1,000 accounts", (url) => measure(url, "credit.deduct", spread));
    await both("credit.deduct, ONE hot account", (url) => measure(url, "credit.deduct", hot));
    await both("credit.deduct, ONE hot account, routed by X-FlashPoints-User", (url) =>
      measure(url, "credit.deduct", hot, { headers: { "x-flashpoints-user": HOT_USER } }),
    );
    await both("credit.ledger (replica reads), 1,000 accounts", (url) => measure(url, "credit.ledger", () => ({}), { getPath: ledgerPath }));
    await both("flashSale.purchase, sold out", async (url) => {
      const { activityId, itemId } = await openSale(url, catalog, "bench sold out", 1);
      const first = await callOnce(url, `${TRPC}flashSale.purchase`, seeded.apiKey, { userId: HOT_USER, activityId, itemId });
      if (first.status !== 200) throw new Error(`the one unit could not be bought (${first.status}): ${first.body.slice(0, 300)}`);
      return measure(url, "flashSale.purchase", () => ({ userId: anySpreadUser(), activityId, itemId }), { expected: "SOLD_OUT" });
    });
    const books = await checkBooks(pool);
    await pool.end();

    const table = [
      "| workload | one instance (calls/s) | topology, 2 API instances behind HAProxy (calls/s) | topology ÷ one | p99 one / topology | errors (topology) |",
      "|---|---:|---:|---:|---|---|",
      ...rows.map(
        (r) =>
          `| ${r.workload} | ${Math.round(rate(r.one.raw)).toLocaleString("en-US")} | ${Math.round(rate(r.all.raw)).toLocaleString("en-US")} | ${(rate(r.all.raw) / Math.max(rate(r.one.raw), 1e-9)).toFixed(2)}× | ${p99(r.one.raw)} / ${p99(r.all.raw)} | ${errorsOf(r.all.raw)} |`,
      ),
    ].join("\n");
    // Cores each tier needs per 1,000 calls/s = CPU seconds per call × 1,000 (topology runs).
    const cores = [
      `| workload (topology run) | ${TIERS.join(" | ")} | all tiers | cores busy |`,
      `|---|${TIERS.map(() => "---:").join("|")}|---:|---:|`,
      ...rows.map((r) => {
        const calls = Math.max(r.all.raw.ok, 1);
        const perK = (cpu: number) => ((cpu / calls) * 1000).toFixed(2);
        const total = TIERS.reduce((n, t) => n + (r.all.cpu[t] ?? 0), 0);
        return `| ${r.workload} | ${TIERS.map((t) => perK(r.all.cpu[t] ?? 0)).join(" | ")} | ${perK(total)} | ${(total / r.all.raw.seconds).toFixed(2)} |`;
      }),
    ].join("\n");
    console.log(`\n${table}\n`);
    console.log(`Cores per 1,000 calls/s, by tier (CPU seconds per call × 1,000, from /proc; the topology runs):\n\n${cores}\n`);
    const steal = stealPercent(ticksAtStart, machineTicks());
    console.log(
      `${s.seconds} s per run after ${s.warmSeconds} s warm-up, ${s.connections} connections; every process on this machine's cores (load generator included)` +
        `${steal === null ? "" : `; CPU time taken by the hypervisor during the run ${steal} %`}.`,
    );
    console.log(books.ok ? `books: right (${books.accounts} accounts, ${books.ledgerRows} ledger rows)` : `books: WRONG (${books.mismatchCount} accounts)`);
    return books.ok ? 0 : 1;
  } finally {
    process.removeListener("SIGINT", stop);
    process.removeListener("SIGTERM", stop);
    await clusterDown(dir);
  }
}
