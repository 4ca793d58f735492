/**
 * Shared pieces of the benchmark (`npm run bench`, scripts/bench/run.ts): a
 * throw-away database, server processes of our own, closed-loop autocannon
 * runs that keep every latency and the error mix, percentiles, and a
 * teardown that also runs on Ctrl-C. Loopback only; every run is bounded.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { existsSync } from "node:fs";
import { sparePort } from "../../src/server/credit/testing";
import autocannon from "autocannon";
import { createThrowaway, disposeThrowaway, planThrowaway, randomRunId } from "../../src/test/throwaway";

// ── the run's database ─────────────────────────────────────────────────────────

export type BenchDb = {
  /** The database as the service's least-privilege role (what the servers connect as). */
  url: string;
  name: string;
  redisUrl: string;
  /** Every Redis key of the run starts with it; `drop()` deletes them. */
  redisPrefix: string;
  drop: () => Promise<void>;
};

/** A migrated database and a Redis key prefix of the run's own; `drop()` removes both. */
export async function createBenchDb(): Promise<BenchDb> {
  const run = planThrowaway("bench", randomRunId());
  await createThrowaway(run);
  return {
    url: run.databaseUrl,
    name: run.dbName,
    redisUrl: run.redisUrl,
    redisPrefix: run.redisPrefix,
    drop: () => disposeThrowaway(run),
  };
}

// ── teardown ───────────────────────────────────────────────────────────────────

/** Clean-up steps, run last-in first-out once, whether the run ends, fails or is interrupted. */
export class Teardown {
  private steps: { name: string; fn: () => Promise<void> }[] = [];
  private running: Promise<void> | null = null;

  add(name: string, fn: () => Promise<void>): void {
    this.steps.push({ name, fn });
  }

  /** Runs (and forgets) the steps added since; a step that fails is reported and the rest still run. */
  run(): Promise<void> {
    this.running ??= (async () => {
      for (let step = this.steps.pop(); step; step = this.steps.pop()) {
        try {
          await step.fn();
        } catch (e) {
          console.error(`clean-up "${step.name}" failed: ${e instanceof Error ? e.message : String(e)}`);
        }
      }
      this.running = null;
    })();
    return this.running;
  }
}

// ── processes ──────────────────────────────────────────────────────────────────

/** A free local TCP port. */
export const freePort = sparePort;

export type ServerProcess = { url: string; child: ChildProcess; stop: () => Promise<void> };

/** What every server of the run gets: production mode, quiet logs, loopback. */
export const SERVER_ENV = {
  NODE_ENV: "production",
  NEXT_TELEMETRY_DISABLED: "1",
  LOG_LEVEL: "warn",
  HOST: "127.0.0.1",
} as const;

/** Limits far above any load here: the scenarios measure the path behind the limiter, not the limiter refusing. */
export const GENEROUS_LIMITS = {
  RATE_LIMIT_PER_SECOND: "1000000",
  RATE_LIMIT_BURST: "1000000",
  KEY_RATE_LIMIT_PER_SECOND: "1000000",
  KEY_RATE_LIMIT_BURST: "10000000",
  // The flash-sale race sends 1,000 calls at once; every one is to be served, not refused at the door.
  MAX_IN_FLIGHT: "5000",
} as const;

/** Starts the production entry, `dist/server.js`, on a spare port; resolves once /api/health answers 200. */
export async function startServerProcess(env: Record<string, string>): Promise<ServerProcess> {
  if (!existsSync("dist/server.js")) throw new Error("dist/server.js is missing: run `npm run build`");
  const port = await freePort();
  const child = spawn(process.execPath, ["dist/server.js"], {
    env: { ...process.env, ...SERVER_ENV, PORT: String(port), ...env },
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
    await sleep(200);
  }
  return { url, child, stop: () => stopChild(child) };
}

/** SIGTERM, then SIGKILL after 5 s; resolves when the process is gone. */
export function stopChild(child: ChildProcess): Promise<void> {
  return new Promise<void>((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) return resolve();
    child.once("exit", () => resolve());
    child.kill("SIGTERM");
    setTimeout(() => child.kill("SIGKILL"), 5_000).unref();
  });
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

// ── measurements ───────────────────────────────────────────────────────────────

/** Counts by name: appCodes of refused calls, pg error codes, "timeout"… */
export type ErrorMix = Record<string, number>;

export function countInto(mix: ErrorMix, code: string, n = 1): void {
  mix[code] = (mix[code] ?? 0) + n;
}

export function mergeMixes(mixes: readonly ErrorMix[]): ErrorMix {
  const out: ErrorMix = {};
  for (const m of mixes) for (const [code, n] of Object.entries(m)) countInto(out, code, n);
  return out;
}

/** One run of a load generator: every latency kept, so runs merge and percentiles are exact. */
export type RawRun = {
  /** Wall time of the run, s. */
  seconds: number;
  /** Calls answered (any status) or failed at the connection. */
  calls: number;
  /** Calls answered 2xx (for SQL: transactions committed). */
  ok: number;
  /** Calls not ok, by appCode (`error.data.appCode`), else `HTTP <status>`, `timeout`, `connection error`. */
  errors: ErrorMix;
  /** Latency of every answered call, ms. */
  latenciesMs: number[];
  /** Batches: items applied, and the per-item refusals by appCode. */
  items?: { ok: number; errors: ErrorMix };
};

export function mergeRuns(runs: readonly RawRun[]): RawRun {
  const withItems = runs.filter((r) => r.items);
  return {
    seconds: runs.reduce((s, r) => s + r.seconds, 0),
    calls: runs.reduce((s, r) => s + r.calls, 0),
    ok: runs.reduce((s, r) => s + r.ok, 0),
    errors: mergeMixes(runs.map((r) => r.errors)),
    latenciesMs: runs.flatMap((r) => r.latenciesMs),
    ...(withItems.length > 0
      ? {
          items: {
            ok: withItems.reduce((s, r) => s + (r.items?.ok ?? 0), 0),
            errors: mergeMixes(withItems.map((r) => r.items?.errors ?? {})),
          },
        }
      : {}),
  };
}

export type Percentiles = { p50: number; p99: number; p999: number };

/** Nearest-rank percentiles, ms; null without samples. */
export function percentiles(latenciesMs: readonly number[]): Percentiles | null {
  if (latenciesMs.length === 0) return null;
  const sorted = Float64Array.from(latenciesMs).sort();
  const at = (p: number) => sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(p * sorted.length) - 1))] ?? Number.NaN;
  return { p50: at(0.5), p99: at(0.99), p999: at(0.999) };
}

/** The appCode of a tRPC error answer (`error.data.appCode`), else `HTTP <status>`. */
export function appCodeOf(status: number, body: string): string {
  try {
    const parsed = JSON.parse(body) as { error?: { data?: { appCode?: unknown } } };
    const code = parsed.error?.data?.appCode;
    if (typeof code === "string") return code;
  } catch {
    // not JSON
  }
  return `HTTP ${status}`;
}

export type LoadSpec = {
  url: string;
  /** e.g. `/api/trpc/credit.deduct` */
  path: string;
  apiKey: string;
  /** A fresh JSON body per request (unique business keys). */
  body: () => unknown;
  /** A query instead: each request a GET of the path this returns (`body` unused). */
  getPath?: () => string;
  /** Sent with every request besides the key (e.g. the balancer's routing header). */
  headers?: Record<string, string>;
  connections: number;
  seconds: number;
  /** Looks into every 2xx answer (batches count their items here). */
  onOk?: (body: string) => void;
};

/**
 * A closed loop: `connections` keep-alive connections, each sending its next
 * call when the previous one is answered. Latencies are autocannon's per
 * response; the error mix is read from each non-2xx body.
 */
export function runLoad(spec: LoadSpec): Promise<RawRun> {
  const errors: ErrorMix = {};
  const latenciesMs: number[] = [];
  let ok = 0;
  return new Promise<RawRun>((resolve, reject) => {
    const instance = autocannon(
      {
        url: spec.url,
        connections: spec.connections,
        duration: spec.seconds,
        requests: [
          {
            method: spec.getPath ? "GET" : "POST",
            path: spec.path,
            headers: {
              ...(spec.getPath ? {} : { "content-type": "application/json" }),
              authorization: `Bearer ${spec.apiKey}`,
              ...spec.headers,
            },
            setupRequest: (req) => (spec.getPath ? { ...req, path: spec.getPath() } : { ...req, body: JSON.stringify(spec.body()) }),
            onResponse: (status, body) => {
              if (status >= 200 && status < 300) {
                ok++;
                spec.onOk?.(body);
              } else {
                countInto(errors, appCodeOf(status, body));
              }
            },
          },
        ],
      },
      (err: unknown, result: autocannon.Result) => {
        if (err) return reject(err instanceof Error ? err : new Error(String(err)));
        if (result.errors > 0) countInto(errors, "connection error", result.errors);
        if (result.timeouts > 0) countInto(errors, "timeout", result.timeouts);
        resolve({
          seconds: result.duration,
          calls: ok + Object.values(errors).reduce((a, b) => a + b, 0),
          ok,
          errors,
          latenciesMs,
        });
      },
    );
    instance.on("response", (_client, _status, _bytes, responseTime) => {
      latenciesMs.push(responseTime);
    });
  });
}

/** POST one tRPC call; resolves with the status and the body. */
export async function callOnce(url: string, path: string, apiKey: string, body: unknown): Promise<{ status: number; body: string }> {
  const res = await fetch(`${url}${path}`, {
    method: "POST",
    headers: { "content-type": "application/json", authorization: `Bearer ${apiKey}` },
    body: JSON.stringify(body),
  });
  return { status: res.status, body: await res.text() };
}

let counter = 0;
/** A unique id for business keys: the process id and a counter (ZBusinessId: letters, digits, _.:-). */
export function nextId(prefix: string): string {
  counter += 1;
  return `${prefix}-${process.pid}-${counter}`;
}
