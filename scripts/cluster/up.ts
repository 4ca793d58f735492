/**
 * `npm run cluster:up`: the several-instance topology on this machine, from the
 * production build (docs/operations.md, "Running several instances"). Prints
 * where everything is; `npm run cluster:down` stops it all.
 *
 *   --port <n>        the balancer's port (default: a spare one)
 *   --redis single    one redis-server instead of a Redis Cluster (3 masters, a replica each)
 *   --no-seed         no demo data
 *   --dir <path>      where data, logs and state live (default /tmp/flashpoints-cluster)
 */
import { parseArgs } from "node:util";
import { clusterDown, clusterUp, DEFAULT_CLUSTER_DIR } from "./topology";

const { values } = parseArgs({
  options: {
    port: { type: "string" },
    redis: { type: "string", default: "cluster" },
    "no-seed": { type: "boolean", default: false },
    dir: { type: "string", default: process.env.CLUSTER_DIR ?? DEFAULT_CLUSTER_DIR },
  },
  strict: true,
});
if (values.redis !== "cluster" && values.redis !== "single") {
  console.error("--redis is `cluster` or `single`");
  process.exit(2);
}
const port = values.port === undefined ? undefined : Number(values.port);
if (port !== undefined && !(Number.isInteger(port) && port > 0 && port < 65536)) {
  console.error("--port must be a TCP port number");
  process.exit(2);
}

// Ctrl-C half-way: stop what was started so far.
for (const signal of ["SIGINT", "SIGTERM"] as const) {
  process.once(signal, () => {
    console.error(`\n${signal}: stopping what was started`);
    void clusterDown(values.dir).finally(() => process.exit(130));
  });
}

const started = Date.now();
try {
  const s = await clusterUp({
    dir: values.dir,
    ...(port !== undefined ? { port } : {}),
    redis: values.redis,
    seed: !values["no-seed"],
    log: (line) => console.log(`==> ${line}`),
  });
  console.log(`\nThe topology is up (${((Date.now() - started) / 1000).toFixed(1)} s):`);
  console.log(`  balancer      ${s.url}  (dashboard ${s.url}/admin, API ${s.url}/api/trpc; HAProxy stats ${s.statsUrl})`);
  for (const a of s.api) console.log(`  ${a.name.padEnd(13)} ${a.url}  (pid ${a.pid}, API only)`);
  console.log(`  dashboard     ${s.dashboard.url}  (pid ${s.dashboard.pid})`);
  for (const w of s.workers) console.log(`  ${w.name.padEnd(13)} pid ${w.pid}, metrics ${w.metricsUrl}`);
  console.log(`  pgbouncer     127.0.0.1:${s.pgbouncerPort}  (${s.dbName}: transaction pool; ${s.dbName}_session: session pool)`);
  console.log(`  postgres      primary 127.0.0.1:${s.postgres.primary.port}, streaming replica 127.0.0.1:${s.postgres.replica.port}`);
  console.log(`  redis         ${s.redis.mode === "cluster" ? "Redis Cluster " : ""}${s.redis.nodes.map((n) => `127.0.0.1:${n.port}`).join(", ")}`);
  console.log(`  logs          ${s.dir}/logs`);
  if (s.seedOutput) console.log(`\n${s.seedOutput}`);
  console.log("\nStop it all with `npm run cluster:down`.");
} catch (e) {
  console.error(`cluster:up failed: ${e instanceof Error ? e.message : String(e)}`);
  process.exit(1);
}
