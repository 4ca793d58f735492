import { spawn } from "node:child_process";
import { closeSync, openSync } from "node:fs";

/**
 * The topology's long-running processes: started detached (they outlive
 * `cluster:up`), output in a log file each, stopped by pid from the state file.
 */
export type ProcessEntry = { name: string; pid: number; log: string };

export function startDetached(name: string, cmd: string, args: string[], opts: { log: string; env?: NodeJS.ProcessEnv; cwd?: string }): ProcessEntry {
  const fd = openSync(opts.log, "a");
  try {
    const child = spawn(cmd, args, { detached: true, stdio: ["ignore", fd, fd], env: opts.env ?? process.env, cwd: opts.cwd });
    if (child.pid === undefined) throw new Error(`${name}: ${cmd} did not start`);
    child.unref();
    return { name, pid: child.pid, log: opts.log };
  } finally {
    closeSync(fd);
  }
}

export function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** SIGTERM, then SIGKILL after `graceMs`; resolves once the process is gone. */
export async function stopProcess(pid: number, graceMs = 10_000, signal: NodeJS.Signals = "SIGTERM"): Promise<void> {
  if (!alive(pid)) return;
  try {
    process.kill(pid, signal);
  } catch {
    return;
  }
  const deadline = Date.now() + graceMs;
  while (alive(pid)) {
    if (Date.now() > deadline) {
      try {
        process.kill(pid, "SIGKILL");
      } catch {
        // gone meanwhile
      }
    }
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Polls `check` until it is true (or throws with `what` after `timeoutMs`). */
export async function waitFor(what: string, check: () => Promise<boolean>, timeoutMs = 45_000, whenLate?: () => string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check().catch(() => false))) {
    if (Date.now() > deadline) throw new Error(`${what} did not come up within ${timeoutMs} ms${whenLate ? `:\n${whenLate()}` : ""}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

export async function httpOk(url: string): Promise<boolean> {
  const res = await fetch(url, { signal: AbortSignal.timeout(2_000) });
  return res.ok;
}

export { sparePort } from "../../src/server/credit/testing";
