import { spawn, type ChildProcess } from "node:child_process";
import { existsSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../..");

/**
 * The production build's processes (`dist/server.js`, `dist/worker.js`) for the
 * drills: what they printed, and how to stop, kill or freeze them.
 */
export type BuiltProcess = {
  child: ChildProcess;
  output: () => string;
  /** Sends `signal` (default SIGTERM, then SIGKILL after 10 s) and waits for the exit. */
  stop: (signal?: NodeJS.Signals) => Promise<void>;
};

export function assertBuilt(): void {
  for (const file of ["dist/server.js", "dist/worker.js"]) {
    if (!existsSync(path.join(ROOT, file))) {
      throw new Error(`${file} is missing: the drills run the production build — run \`npm run build\` first`);
    }
  }
}

function spawnBuilt(entry: string, env: Record<string, string>, nodeArgs: string[] = []): BuiltProcess {
  const child = spawn(process.execPath, [...nodeArgs, path.join(ROOT, entry)], {
    cwd: ROOT,
    env: { ...process.env, NODE_ENV: "production", FAILPOINTS_ENABLED: "1", LOG_LEVEL: "warn", ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let out = "";
  const keep = (c: Buffer) => {
    out += c.toString();
    if (out.length > 200_000) out = out.slice(-100_000);
  };
  child.stdout!.on("data", keep);
  child.stderr!.on("data", keep);
  const exited = new Promise<void>((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) resolve();
    child.once("exit", () => resolve());
  });
  const stop = async (signal: NodeJS.Signals = "SIGTERM") => {
    if (child.exitCode === null && child.signalCode === null) child.kill(signal);
    const timer = setTimeout(() => child.kill("SIGKILL"), 10_000);
    await exited;
    clearTimeout(timer);
  };
  return { child, output: () => out, stop };
}

/** An API-only server on `port`; resolves once /api/health answers 200. */
export async function startBuiltServer(port: number, env: Record<string, string>, nodeArgs: string[] = []): Promise<BuiltProcess & { url: string }> {
  const proc = spawnBuilt("dist/server.js", { API_ONLY: "1", HOST: "127.0.0.1", PORT: String(port), ...env }, nodeArgs);
  const url = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 45_000;
  while (Date.now() < deadline) {
    if (proc.child.exitCode !== null) throw new Error(`dist/server.js exited early:\n${proc.output()}`);
    const ok = await fetch(`${url}/api/health`, { signal: AbortSignal.timeout(2_000) })
      .then((r) => r.ok)
      .catch(() => false);
    if (ok) return { ...proc, url };
    await new Promise((r) => setTimeout(r, 100));
  }
  await proc.stop("SIGKILL");
  throw new Error(`dist/server.js did not come up:\n${proc.output()}`);
}

/** The worker; resolves once it has started its tasks. */
export async function startBuiltWorker(env: Record<string, string>): Promise<BuiltProcess> {
  const proc = spawnBuilt("dist/worker.js", { LOG_LEVEL: "info", ...env });
  const deadline = Date.now() + 45_000;
  while (!proc.output().includes('"msg":"worker started"')) {
    if (proc.child.exitCode !== null || Date.now() > deadline) {
      await proc.stop("SIGKILL");
      throw new Error(`dist/worker.js did not start:\n${proc.output()}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  return proc;
}
