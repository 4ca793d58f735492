import { spawn, spawnSync } from "node:child_process";
import path from "node:path";
import { planThrowaway, type Throwaway } from "../src/test/throwaway";

const ROOT = path.resolve(import.meta.dirname, "..");

/** The admin user e2e/global-setup.ts creates in the run's own database. */
export const E2E_ADMIN = {
  email: "admin@e2e.test",
  password: "e2e-admin-password-0123",
  role: "admin",
} as const;

export interface E2eRun extends Throwaway {
  /** Base URL of the production server started for this run. */
  baseURL: string;
  port: number;
}

/**
 * This run's resources. playwright.config.ts fixes the run id in process.env when
 * it loads, before workers start, so the runner and every worker agree on it.
 */
export function e2eRun(env: NodeJS.ProcessEnv = process.env): E2eRun {
  const runId = env.FP_E2E_RUN_ID;
  if (!runId) throw new Error("FP_E2E_RUN_ID is not set: run through `npm run test:e2e` (playwright.config.ts sets it)");
  // A port of this run's own (20000–29999, below Linux's ephemeral range), so two
  // runs on one machine do not meet; global setup fails clearly if it is taken.
  const port = Number(env.E2E_PORT ?? 20_000 + (Number.parseInt(runId.slice(0, 8), 16) % 10_000));
  return { ...planThrowaway("e2e", runId, env), port, baseURL: `http://127.0.0.1:${port}` };
}

/** The environment of this run's production processes (server, CLI): its database, Redis prefix, no failpoints. */
export function runEnv(run: E2eRun): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    NODE_ENV: "production",
    DATABASE_URL: run.databaseUrl,
    REDIS_URL: run.redisUrl,
    REDIS_KEY_PREFIX: run.redisPrefix,
  };
  delete env.FAILPOINTS;
  return env;
}

/** Creates a dashboard user the way an operator would: `dist/cli.js admin:create`. Throws with the CLI's output on failure. */
export function createDashboardUser(run: E2eRun, user: { email: string; password: string; role: string }): void {
  const out = spawnSync(
    process.execPath,
    ["dist/cli.js", "admin:create", "--email", user.email, "--password", user.password, "--role", user.role],
    { cwd: ROOT, env: runEnv(run), encoding: "utf8", timeout: 60_000 },
  );
  if (out.status !== 0) {
    throw new Error(`admin:create failed (exit ${out.status}):\n${out.stdout}${out.stderr}${out.error ?? ""}`);
  }
}

/** A service API key made the way an operator would (`dist/cli.js api-key:create`); returns the key. */
export function createServiceKey(run: E2eRun, name: string, scopes: "catalog" | "" = ""): string {
  const args = ["dist/cli.js", "api-key:create", "--name", name, ...(scopes ? ["--scopes", scopes] : [])];
  const out = spawnSync(process.execPath, args, { cwd: ROOT, env: runEnv(run), encoding: "utf8", timeout: 60_000 });
  const key = /fpk_[A-Za-z0-9_-]+/.exec(out.stdout)?.[0];
  if (out.status !== 0 || !key) throw new Error(`api-key:create failed (exit ${out.status}):\n${out.stdout}${out.stderr}`);
  return key;
}

/** A worker of this run (`node dist/worker.js`), with extra settings such as failpoints; `stop` ends it with SIGTERM. */
export type RunWorker = { output: () => string; stop: () => Promise<void> };

export async function startRunWorker(run: E2eRun, env: Record<string, string>): Promise<RunWorker> {
  const child = spawn(process.execPath, ["dist/worker.js"], {
    cwd: ROOT,
    env: { ...runEnv(run), LOG_LEVEL: "info", ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let out = "";
  child.stdout.on("data", (c: Buffer) => (out += c.toString()));
  child.stderr.on("data", (c: Buffer) => (out += c.toString()));
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  const stop = async (): Promise<void> => {
    if (child.exitCode === null && child.signalCode === null) child.kill("SIGTERM");
    const timer = setTimeout(() => child.kill("SIGKILL"), 10_000);
    await exited;
    clearTimeout(timer);
  };
  const deadline = Date.now() + 30_000;
  while (!out.includes('"msg":"worker started"')) {
    if (child.exitCode !== null || Date.now() > deadline) {
      await stop();
      throw new Error(`the worker did not start:\n${out}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  return { output: () => out, stop };
}
