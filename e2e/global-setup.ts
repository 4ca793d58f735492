import { spawn, type ChildProcess } from "node:child_process";
import { createWriteStream, existsSync, mkdirSync, readFileSync } from "node:fs";
import net from "node:net";
import path from "node:path";
import { createThrowaway, disposeThrowaway } from "../src/test/throwaway";
import { createDashboardUser, E2E_ADMIN, e2eRun, runEnv, type E2eRun } from "./fixtures";

// Playwright runs `webServer` before globalSetup and stops it after globalTeardown,
// which is the wrong order around a database that the server needs from its first
// request and that must outlive it. So this setup owns the whole sequence:
// database + migrations → admin user → production server → (tests) → stop server
// → drop database and Redis keys.

const ROOT = path.resolve(import.meta.dirname, "..");
const LOG_FILE = path.join(ROOT, "test-results", "e2e-server.log");

function assertPortFree(port: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const probe = net.createServer();
    probe.once("error", (error) =>
      reject(new Error(`port ${port} is in use (${String(error)}): stop what listens there or set E2E_PORT`)),
    );
    probe.listen(port, "127.0.0.1", () => probe.close(() => resolve()));
  });
}

function serverEnv(run: E2eRun): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {
    ...runEnv(run),
    PORT: String(run.port),
    HOST: "127.0.0.1",
    NEXT_TELEMETRY_DISABLED: "1",
  };
  delete env.API_ONLY;
  return env;
}

function logTail(): string {
  try {
    return readFileSync(LOG_FILE, "utf8").split("\n").slice(-40).join("\n");
  } catch {
    return "(no server log)";
  }
}

async function waitForHealth(run: E2eRun, server: ChildProcess, timeoutMs: number): Promise<void> {
  const url = `${run.baseURL}/api/health`;
  const deadline = Date.now() + timeoutMs;
  let last = "no answer";
  while (Date.now() < deadline) {
    if (server.exitCode !== null || server.signalCode !== null) {
      throw new Error(`node dist/server.js exited (${server.exitCode ?? server.signalCode}) before ${url} answered:\n${logTail()}`);
    }
    try {
      const res = await fetch(url, { signal: AbortSignal.timeout(2000) });
      if (res.ok) return;
      last = `${res.status} ${await res.text()}`;
    } catch (error) {
      last = String(error);
    }
    await new Promise((r) => setTimeout(r, 250));
  }
  throw new Error(`${url} was not healthy within ${timeoutMs / 1000} s (last: ${last}):\n${logTail()}`);
}

async function stopServer(server: ChildProcess): Promise<void> {
  if (server.exitCode !== null || server.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => server.once("exit", () => resolve()));
  server.kill("SIGTERM");
  const timer = setTimeout(() => server.kill("SIGKILL"), 10_000);
  await exited;
  clearTimeout(timer);
}

export default async function globalSetup(): Promise<() => Promise<void>> {
  const run = e2eRun();
  for (const file of ["dist/server.js", "dist/cli.js"]) {
    if (!existsSync(path.join(ROOT, file))) throw new Error(`${file} is missing: run \`npm run build\` before the e2e tests`);
  }
  await assertPortFree(run.port);

  await createThrowaway(run);
  let server: ChildProcess | undefined;
  const teardown = async (): Promise<void> => {
    try {
      if (server) await stopServer(server);
    } finally {
      await disposeThrowaway(run);
    }
  };

  try {
    const env = serverEnv(run);
    createDashboardUser(run, E2E_ADMIN);

    mkdirSync(path.dirname(LOG_FILE), { recursive: true });
    const log = createWriteStream(LOG_FILE);
    server = spawn(process.execPath, ["dist/server.js"], { cwd: ROOT, env, stdio: ["ignore", "pipe", "pipe"] });
    server.stdout?.pipe(log);
    server.stderr?.pipe(log);
    await waitForHealth(run, server, 90_000);
  } catch (error) {
    await teardown().catch((cleanupError: unknown) => console.error(String(cleanupError)));
    throw error;
  }

  console.log(
    `e2e: ${run.baseURL} (log ${path.relative(ROOT, LOG_FILE)}), database ${run.dbName}, Redis prefix ${run.redisPrefix}`,
  );
  return teardown;
}
