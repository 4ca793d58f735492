import { readdirSync, readFileSync } from "node:fs";

/**
 * CPU time of process trees, from /proc (Linux): what each tier of the
 * topology spent during a run, so throughput can be turned into cores per
 * 1,000 calls/s — the arithmetic for sizing N machines.
 */

const TICKS_PER_SECOND = 100; // USER_HZ: `getconf CLK_TCK` on Linux

type Stat = { pid: number; ppid: number; own: number; reaped: number };

function readStat(pid: number): Stat | null {
  try {
    const text = readFileSync(`/proc/${pid}/stat`, "utf8");
    // The command name is in parentheses and may hold spaces: fields start after the last ")".
    const fields = text.slice(text.lastIndexOf(")") + 2).split(" ");
    const n = (i: number) => Number(fields[i - 3]);
    return { pid, ppid: n(4), own: n(14) + n(15), reaped: n(16) + n(17) };
  } catch {
    return null;
  }
}

function allStats(): Stat[] {
  const out: Stat[] = [];
  for (const name of readdirSync("/proc")) {
    if (!/^\d+$/.test(name)) continue;
    const s = readStat(Number(name));
    if (s) out.push(s);
  }
  return out;
}

/**
 * Seconds of CPU used so far by each root and everything below it: the live
 * processes' own time, plus what their children that have exited left to
 * them (a PostgreSQL backend that ended counts under the postmaster).
 */
export function treeCpuSeconds(roots: Record<string, readonly number[]>): Record<string, number> {
  const stats = allStats();
  const children = new Map<number, Stat[]>();
  for (const s of stats) children.set(s.ppid, [...(children.get(s.ppid) ?? []), s]);
  const byPid = new Map(stats.map((s) => [s.pid, s]));
  const out: Record<string, number> = {};
  for (const [tier, pids] of Object.entries(roots)) {
    let ticks = 0;
    for (const pid of pids) {
      const root = byPid.get(pid);
      if (!root) continue;
      ticks += root.reaped;
      const stack = [root];
      while (stack.length > 0) {
        const s = stack.pop()!;
        ticks += s.own;
        stack.push(...(children.get(s.pid) ?? []));
      }
    }
    out[tier] = ticks / TICKS_PER_SECOND;
  }
  return out;
}

/** The postmaster's pid, from the first line of `<dataDir>/postmaster.pid`. */
export function postmasterPid(dataDir: string): number | null {
  try {
    const pid = Number(readFileSync(`${dataDir}/postmaster.pid`, "utf8").split("\n")[0]);
    return Number.isInteger(pid) && pid > 0 ? pid : null;
  } catch {
    return null;
  }
}

/** The whole machine's CPU time so far (all cores, ticks): in total, and stolen by the hypervisor. */
export type MachineTicks = { total: number; steal: number };

/** From the first line of /proc/stat; null where there is none. */
export function machineTicks(): MachineTicks | null {
  try {
    const line = readFileSync("/proc/stat", "utf8").split("\n", 1)[0] ?? "";
    // cpu  user nice system idle iowait irq softirq steal guest guest_nice (guest time is within user)
    const f = line.trim().split(/\s+/).slice(1, 9).map(Number);
    if (f.length < 8 || f.some((n) => !Number.isFinite(n))) return null;
    return { total: f.reduce((a, b) => a + b, 0), steal: f[7]! };
  } catch {
    return null;
  }
}

/** Share of the machine's CPU time the hypervisor took between two readings, in %. */
export function stealPercent(from: MachineTicks | null, to: MachineTicks | null): number | null {
  if (!from || !to || to.total <= from.total) return null;
  return Math.round(((to.steal - from.steal) / (to.total - from.total)) * 1000) / 10;
}
