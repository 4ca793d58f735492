/**
 * Shared pieces of the load benchmarks: a throw-away database, a server
 * process of our own, autocannon runs, and a table with ratios against a
 * baseline measured in the same run. Loopback only; every run is bounded.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { existsSync } from "node:fs";
import { createServer } from "node:net";
import autocannon from "autocannon";
import { createThrowaway, disposeThrowaway, planThrowaway, randomRunId } from "../../src/test/throwaway";

export type BenchDb = {
  url: string;
  name: string;
  /** Every Redis key of the run starts with it; `drop()` deletes them. */
  redisPrefix: string;
  drop: () => Promise<void>;
};

/** A migrated database and a Redis key prefix of the run's own; `drop()` removes both. */
export async function createBenchDb(): Promise<BenchDb> {
  const run = planThrowaway("bench", randomRunId());
  await createThrowaway(run);
  return { url: run.databaseUrl, name: run.dbName, redisPrefix: run.redisPrefix, drop: () => disposeThrowaway(run) };
}

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once("error", reject);
    s.listen(0, "127.0.0.1", () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

export type ServerProcess = { url: string; child: ChildProcess; stop: () => Promise<void> };

/**
 * Starts the production entry (`dist/server.js`, run `npm run build` first)
 * or, without a build, the TypeScript entry through tsx.
 */
export async function startServerProcess(env: Record<string, string>): Promise<ServerProcess> {
  const port = await freePort();
  const built = existsSync("dist/server.js");
  const [cmd, args] = built ? ["node", ["dist/server.js"]] : ["npx", ["tsx", "src/server/http/server.ts"]];
  const child = spawn(cmd, args, {
    env: {
      ...process.env,
      NODE_ENV: "production",
      NEXT_TELEMETRY_DISABLED: "1",
      LOG_LEVEL: "warn",
      HOST: "127.0.0.1",
      PORT: String(port),
      ...env,
    },
    stdio: ["ignore", "ignore", "inherit"],
  });
  const url = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 60_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`server exited with ${child.exitCode}`);
    try {
      const res = await fetch(`${url}/api/health`);
      if (res.ok) break;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) {
      child.kill("SIGKILL");
      throw new Error("server did not become healthy within 60 s");
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  return { url, child, stop: () => stopChild(child) };
}

/** SIGTERM, then SIGKILL after 5 s; resolves when the process is gone. */
export function stopChild(child: ChildProcess): Promise<void> {
  return new Promise<void>((resolve) => {
    if (child.exitCode !== null) return resolve();
    child.once("exit", () => resolve());
    child.kill("SIGTERM");
    setTimeout(() => child.kill("SIGKILL"), 5_000).unref();
  });
}

export type LoadResult = {
  name: string;
  rps: number;
  p50: number;
  p99: number;
  non2xx: number;
  errors: number;
  total: number;
};

export type LoadSpec = {
  name: string;
  url: string;
  path: string;
  apiKey: string;
  /** A fresh JSON body per request (unique business keys). */
  body: () => unknown;
  connections?: number;
  durationS?: number;
};

export async function runLoad(spec: LoadSpec): Promise<LoadResult> {
  const result = await autocannon({
    url: spec.url,
    connections: spec.connections ?? 32,
    duration: spec.durationS ?? Number(process.env.BENCH_SECONDS ?? 10),
    requests: [
      {
        method: "POST",
        path: spec.path,
        headers: { "content-type": "application/json", authorization: `Bearer ${spec.apiKey}` },
        setupRequest: (req) => ({ ...req, body: JSON.stringify(spec.body()) }),
      },
    ],
  });
  return {
    name: spec.name,
    rps: result.requests.average,
    p50: result.latency.p50,
    p99: result.latency.p99,
    non2xx: result.non2xx,
    errors: result.errors + result.timeouts,
    total: result.requests.total,
  };
}

/** Prints results with each one's ratio to `baseline` (by name). */
export function printTable(results: LoadResult[], baseline: string): void {
  const base = results.find((r) => r.name === baseline);
  const rows = results.map((r) => ({
    scenario: r.name,
    "calls/s": Math.round(r.rps),
    "p50 ms": r.p50,
    "p99 ms": r.p99,
    "non-2xx": r.non2xx,
    errors: r.errors,
    [`× ${baseline}`]: base ? (r.rps / base.rps).toFixed(2) : "-",
  }));
  console.table(rows);
}

let counter = 0;
/** A unique id for request bodies. */
export function nextId(prefix: string): string {
  counter += 1;
  return `${prefix}-${process.pid}-${counter}`;
}
