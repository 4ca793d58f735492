import { execFile, spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import { Redis } from "ioredis";

/**
 * A local Redis Cluster of three masters (and, if asked, replicas) for tests and for
 * trying the service against a cluster: `redis-server --cluster-enabled yes`
 * ×3 as child processes on spare ports, joined by `redis-cli --cluster
 * create`. Keeps nothing on disk but the nodes' cluster config files in a
 * temporary directory, removed by `stop()`. Imports nothing of vitest, so a
 * plain tsx script can use it too.
 */

export type RedisClusterOptions = {
  /** First port to probe (default: a random one in 20000–29999); each node also needs port + 10000 (its cluster bus). */
  basePort?: number;
  /** Where the nodes keep their cluster config and logs (default: a new temporary directory, removed by `stop()`). */
  dir?: string;
  /** Masters (default 3, the least `redis-cli --cluster create` accepts). */
  masters?: number;
  /** Replicas of each master (default 0): with one, a killed master's replica takes over its slots. */
  replicasPerMaster?: number;
  /**
   * How long before the others mark a silent node as failed (default 2000;
   * Redis' own default is 15000). Small, so a test sees a killed master's
   * slots reported down quickly.
   */
  nodeTimeoutMs?: number;
  /**
   * Redis' `cluster-require-full-coverage` (default true, as Redis): with it,
   * a failed master stops the whole cluster (CLUSTERDOWN); without it the
   * other masters keep serving their slots.
   */
  requireFullCoverage?: boolean;
};

export type RedisClusterNode = { host: string; port: number; address: string; process: ChildProcess };

export type RedisCluster = {
  /** `host:port` of every node: what REDIS_CLUSTER_NODES takes. */
  nodes: string[];
  members: RedisClusterNode[];
  dir: string;
  /** SIGKILLs one node (by index into `members`) and waits for it to exit. */
  kill(index: number): Promise<void>;
  /** Stops every node and removes the directory if it was made here; safe to call twice. */
  stop(): Promise<void>;
};

const HOST = "127.0.0.1";
const execFileAsync = promisify(execFile);

function portFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const srv = createServer();
    srv.once("error", () => resolve(false));
    srv.listen(port, HOST, () => srv.close(() => resolve(true)));
  });
}

/** `count` ports p, each with p + 10000 (the cluster bus) free too, probing upwards from `start`. */
async function sparePorts(start: number, count: number): Promise<number[]> {
  const ports: number[] = [];
  for (let p = start; ports.length < count; p++) {
    if (p + 10000 > 65535) throw new Error(`no spare ports for a Redis Cluster from ${start} up`);
    if ((await portFree(p)) && (await portFree(p + 10000))) ports.push(p);
  }
  return ports;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function waitFor<T>(what: string, timeoutMs: number, probe: () => Promise<T | undefined>): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  while (Date.now() < deadline) {
    try {
      const value = await probe();
      if (value !== undefined) return value;
    } catch (e) {
      last = e;
    }
    await sleep(100);
  }
  throw new Error(`${what} (waited ${timeoutMs} ms${last ? `; last error: ${String(last)}` : ""})`);
}

/** One command on a fresh connection to one node, without retries. */
export async function ask(port: number, ...args: string[]): Promise<unknown> {
  const r = new Redis(port, HOST, { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null, connectTimeout: 1000 });
  r.on("error", () => {});
  try {
    await r.connect();
    return await r.call(args[0]!, ...args.slice(1));
  } finally {
    r.disconnect();
  }
}

/** The node sees a whole cluster of `size` nodes and, if it is a replica, has its master's data. */
export async function clusterNodeReady(port: number, size: number): Promise<boolean> {
  const info = String(await ask(port, "cluster", "info"));
  if (!/cluster_state:ok/.test(info) || !new RegExp(`cluster_known_nodes:${size}\\b`).test(info)) return false;
  const replication = String(await ask(port, "info", "replication"));
  return /role:master/.test(replication) || /master_link_status:up/.test(replication);
}

export type ClusterNodeInfo = { id: string; port: number; role: "master" | "replica"; replicaOf: string | null };

/** `CLUSTER NODES` as the first of `ports` that answers sees it (a failed master still shows as a master). */
export async function clusterNodes(ports: readonly number[]): Promise<ClusterNodeInfo[]> {
  for (const port of ports) {
    const text = await ask(port, "cluster", "nodes").catch(() => null);
    if (text === null) continue;
    return String(text)
      .trim()
      .split("\n")
      .map((line) => {
        const [id = "", address = "", flags = "", master = "-"] = line.split(" ");
        return {
          id,
          port: Number(address.split("@")[0]?.split(":")[1]),
          role: flags.split(",").includes("master") ? ("master" as const) : ("replica" as const),
          replicaOf: master === "-" ? null : master,
        };
      });
  }
  throw new Error(`no Redis Cluster node answers (ports ${ports.join(", ")})`);
}

export async function startRedisCluster(opts: RedisClusterOptions = {}): Promise<RedisCluster> {
  const replicas = opts.replicasPerMaster ?? 0;
  const count = (opts.masters ?? 3) * (1 + replicas);
  const ownDir = opts.dir === undefined;
  const dir = opts.dir ?? mkdtempSync(path.join(tmpdir(), "fp-redis-cluster-"));
  const ports = await sparePorts(opts.basePort ?? 20000 + Math.floor(Math.random() * 9000), count);
  const members: RedisClusterNode[] = ports.map((port) => ({
    host: HOST,
    port,
    address: `${HOST}:${port}`,
    process: spawn(
      "redis-server",
      [
        "--port", String(port),
        "--bind", HOST,
        "--cluster-enabled", "yes",
        "--cluster-config-file", `nodes-${port}.conf`,
        "--cluster-node-timeout", String(opts.nodeTimeoutMs ?? 2000),
        "--cluster-require-full-coverage", opts.requireFullCoverage === false ? "no" : "yes",
        "--repl-diskless-sync-delay", "0",
        "--save", "",
        "--appendonly", "no",
        "--daemonize", "no",
        "--dir", dir,
        "--logfile", `redis-${port}.log`,
      ],
      { stdio: "ignore" },
    ),
  }));

  // If this process dies before stop(), the nodes must not outlive it.
  const killAll = () => {
    for (const m of members) if (m.process.exitCode === null && m.process.signalCode === null) m.process.kill("SIGKILL");
  };
  process.once("exit", killAll);

  let stopped = false;
  const kill = async (index: number) => {
    const m = members[index];
    if (!m) throw new Error(`no cluster node ${index}`);
    if (m.process.exitCode !== null || m.process.signalCode !== null) return;
    const exited = new Promise<void>((r) => m.process.once("exit", () => r()));
    m.process.kill("SIGKILL");
    await exited;
  };
  const stop = async () => {
    if (stopped) return;
    stopped = true;
    process.off("exit", killAll);
    await Promise.all(members.map((_, i) => kill(i)));
    if (ownDir) rmSync(dir, { recursive: true, force: true });
  };

  try {
    for (const m of members) {
      await waitFor(`redis-server on port ${m.port} did not start (log: ${path.join(dir, `redis-${m.port}.log`)})`, 10_000, async () => {
        if (m.process.exitCode !== null) throw new Error(`redis-server on port ${m.port} exited with ${m.process.exitCode}`);
        return (await ask(m.port, "ping")) === "PONG" ? true : undefined;
      });
    }
    await execFileAsync(
      "redis-cli",
      ["--cluster", "create", ...members.map((m) => m.address), "--cluster-replicas", String(replicas), "--cluster-yes"],
      { timeout: 30_000 },
    );
    for (const m of members) {
      await waitFor(`node ${m.address} did not report cluster_state:ok with ${count} nodes and its data synced`, 20_000, async () =>
        (await clusterNodeReady(m.port, count)) ? true : undefined,
      );
    }
  } catch (e) {
    await stop();
    throw e;
  }
  return { nodes: members.map((m) => m.address), members, dir, kill, stop };
}
