import { execFileSync } from "node:child_process";
import { mkdirSync } from "node:fs";
import path from "node:path";
import { ask, clusterNodeReady } from "../../src/test/redis-cluster";
import { sparePort, startDetached, stopProcess, waitFor, type ProcessEntry } from "./processes";

/**
 * The topology's Redis: a Redis Cluster of 3 masters, each with a replica that
 * takes over its slots when it dies (the slots split evenly), or one
 * redis-server. Neither keeps anything on disk: nothing in Redis is the truth,
 * PostgreSQL is.
 */
export type RedisTopology = {
  mode: "cluster" | "single";
  /** Every redis-server started; in a cluster, masters and replicas alike (roles change on failover). */
  nodes: { port: number; pid: number }[];
  /** What the service is given: REDIS_CLUSTER_NODES, or REDIS_URL. */
  env: Record<string, string>;
};

function serverArgs(port: number, dir: string, cluster: boolean): string[] {
  const args = ["--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", dir];
  // A replica's first sync starts at once (Redis waits 5 s by default for more replicas to share it).
  if (cluster) args.push("--cluster-enabled", "yes", "--cluster-config-file", path.join(dir, "nodes.conf"), "--cluster-node-timeout", String(NODE_TIMEOUT_MS), "--repl-diskless-sync-delay", "0");
  return args;
}

/** How long before a silent node is failed over (Redis' default is 15 s). */
const NODE_TIMEOUT_MS = 2000;
const MASTERS = 3;
const REPLICAS_PER_MASTER = 1;
const CLUSTER_SIZE = MASTERS * (1 + REPLICAS_PER_MASTER);

/** `onStarted` hears of each redis-server as soon as it runs (so a stop half-way leaves none behind). */
export async function startRedis(mode: "cluster" | "single", dir: string, onStarted: (p: ProcessEntry) => void = () => {}): Promise<RedisTopology> {
  const count = mode === "cluster" ? CLUSTER_SIZE : 1;
  const nodes: RedisTopology["nodes"] = [];
  const started: ProcessEntry[] = [];
  try {
    for (let i = 1; i <= count; i++) {
      const port = await sparePort();
      const nodeDir = path.join(dir, `redis-${i}`);
      mkdirSync(nodeDir, { recursive: true });
      const p = startDetached(`redis-${i}`, "redis-server", serverArgs(port, nodeDir, mode === "cluster"), { log: path.join(nodeDir, "redis.log") });
      started.push(p);
      onStarted(p);
      nodes.push({ port, pid: p.pid });
    }
    for (const n of nodes) await waitFor(`redis-server on ${n.port}`, async () => (await ask(n.port, "ping")) === "PONG", 20_000);
    if (mode === "single") return { mode, nodes, env: { REDIS_URL: `redis://127.0.0.1:${nodes[0]!.port}` } };
    execFileSync("redis-cli", ["--cluster", "create", ...nodes.map((n) => `127.0.0.1:${n.port}`), "--cluster-replicas", String(REPLICAS_PER_MASTER), "--cluster-yes"], {
      stdio: "pipe",
      timeout: 30_000,
    });
    for (const n of nodes) await waitFor(`Redis Cluster state on ${n.port}`, () => clusterNodeReady(n.port, CLUSTER_SIZE), 30_000);
    return { mode, nodes, env: { REDIS_CLUSTER_NODES: nodes.map((n) => `127.0.0.1:${n.port}`).join(",") } };
  } catch (e) {
    await Promise.all(started.map((p) => stopProcess(p.pid, 2_000)));
    throw e;
  }
}
