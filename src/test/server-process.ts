import { spawn, type ChildProcess } from "node:child_process";
import { request } from "node:http";
import type { Deps } from "~/server/infra/deps";
import { sparePort } from "~/server/credit/testing";
import { testDatabaseUrl } from "./env";

export type ServerProcess = {
  child: ChildProcess;
  port: number;
  url: string;
  /** What the process printed so far. */
  log: () => string;
  /** Its exit: the code, and the signal that ended it, if one did. */
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** SIGKILL, if it still runs (for `finally`). */
  stop: () => void;
};

/**
 * An entry point of the service as a process of its own (`node --import tsx`,
 * so a signal reaches the service itself) under NODE_ENV=test (failpoints
 * work there: infra/failpoints.ts): what it printed, its exit, and a SIGKILL.
 */
function spawnEntry(entry: string, env: Record<string, string>) {
  const child = spawn(process.execPath, ["--import", "tsx", entry], {
    env: { ...process.env, NODE_ENV: "test", ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let log = "";
  child.stdout!.on("data", (c: Buffer) => (log += c.toString()));
  child.stderr!.on("data", (c: Buffer) => (log += c.toString()));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((r) =>
    child.once("exit", (code, signal) => r({ code, signal })),
  );
  const stop = () => {
    if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
  };
  return { child, exited, stop, output: () => log };
}

/**
 * The real API server as a process of its own (`node --import tsx`, so a
 * signal reaches the server itself), on a spare port, against the test's
 * database and Redis prefix; resolves once /api/health answers.
 */
export async function startServerProcess(deps: Deps, env: Record<string, string> = {}): Promise<ServerProcess> {
  const port = await sparePort();
  const { child, exited, stop, output } = spawnEntry("src/server/http/server.ts", {
    LOG_LEVEL: "warn",
    API_ONLY: "1",
    HOST: "127.0.0.1",
    PORT: String(port),
    DATABASE_URL: testDatabaseUrl(),
    REDIS_URL: deps.env.REDIS_URL,
    // "" (unset) unless the test's deps talk to a Redis Cluster.
    REDIS_CLUSTER_NODES: deps.env.REDIS_CLUSTER_NODES?.join(",") ?? "",
    REDIS_KEY_PREFIX: deps.env.REDIS_KEY_PREFIX,
    ...env,
  });
  const url = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 45_000;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`server exited early:\n${output()}`);
    const ok = await fetch(`${url}/api/health`)
      .then((r) => r.ok)
      .catch(() => false);
    if (ok) return { child, port, url, log: output, exited, stop };
    await new Promise((r) => setTimeout(r, 100));
  }
  stop();
  throw new Error(`server did not come up:\n${output()}`);
}

/**
 * A JSON POST on a connection of its own (no pooling, no pipelining): the
 * status and body text, or status 0 with the error if the connection was cut.
 */
export function postOnOwnConnection(
  port: number,
  path: string,
  body: unknown,
  headers: Record<string, string>,
): Promise<{ status: number; body: string }> {
  const data = JSON.stringify(body);
  return new Promise((resolve) => {
    const req = request(
      {
        host: "127.0.0.1",
        port,
        path,
        method: "POST",
        agent: false,
        headers: { "content-type": "application/json", "content-length": Buffer.byteLength(data), ...headers },
      },
      (res) => {
        let text = "";
        res.on("data", (c: Buffer) => (text += c.toString()));
        res.on("end", () => resolve({ status: res.statusCode ?? 0, body: text }));
        res.on("error", (err) => resolve({ status: 0, body: String(err) }));
      },
    );
    req.on("error", (err) => resolve({ status: 0, body: String(err) }));
    req.end(data);
  });
}

export type WorkerProcess = Omit<ServerProcess, "port" | "url">;

/**
 * The real worker (`src/server/worker.ts`) as a process of its own, against
 * the database and Redis prefix given in `env`; resolves once it has started
 * its tasks.
 */
export async function startWorkerProcess(env: Record<string, string>): Promise<WorkerProcess> {
  const { child, exited, stop, output } = spawnEntry("src/server/worker.ts", { LOG_LEVEL: "info", ...env });
  const deadline = Date.now() + 45_000;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`worker exited early:\n${output()}`);
    if (output().includes('"msg":"worker started"')) return { child, log: output, exited, stop };
    await new Promise((r) => setTimeout(r, 50));
  }
  stop();
  throw new Error(`worker did not start:\n${output()}`);
}

/**
 * Sends `bodies` as concurrent POSTs to `url + path` from a client process of
 * its own (src/test/burst-client.ts), each on its own keep-alive connection
 * opened beforehand with `warm`; resolves with every answer and its time.
 */
export async function burstFromOwnProcess(job: {
  url: string;
  path: string;
  headers: Record<string, string>;
  bodies: unknown[];
  warm?: { path: string; body: unknown };
}): Promise<{ status: number; body: string; ms: number }[]> {
  const child = spawn(process.execPath, ["--import", "tsx", "src/test/burst-client.ts"], { stdio: ["pipe", "pipe", "pipe"] });
  let out = "";
  let err = "";
  child.stdout!.on("data", (c: Buffer) => (out += c.toString()));
  child.stderr!.on("data", (c: Buffer) => (err += c.toString()));
  child.stdin!.end(JSON.stringify(job));
  const code = await new Promise<number | null>((r) => child.once("exit", r));
  if (code !== 0) throw new Error(`the burst client failed (${code}):\n${err}`);
  return JSON.parse(out) as { status: number; body: string; ms: number }[];
}
