import type { Deps } from "~/server/infra/deps";
import { taggedKey } from "./redis-keys";

/**
 * What the dashboard's overview charts show, for the whole deployment: every
 * process counts its API calls in 10-second windows (per procedure: calls,
 * errors, rate-limit refusals, a latency histogram) and adds each finished
 * window to one Redis hash per window (`HINCRBY`, kept an hour), so the
 * overview reads the sum over every instance. Losing a window (Redis down, a
 * process killed) loses a chart point, nothing else.
 */

export const WINDOW_MS = 10_000;
export const KEEP_S = 3_600;
/** Latency histogram bounds, ms (the last bucket is everything above). */
export const LATENCY_BOUNDS_MS = [1, 2, 5, 10, 25, 50, 100, 250, 500, 1_000, 2_500, 5_000] as const;

// One key per window; tagged like every key family (single-key commands only).
export const windowKey = (start: number) => taggedKey("stats:w", [String(start)]);

type Counts = Map<string, number>;

/** Outcomes that are errors of the service (what an operator must look at), not business answers. */
const ERROR_OUTCOMES = new Set(["UNAVAILABLE", "INTERNAL", "CIRCUIT_OPEN", "DEGRADED"]);

export class TrafficStats {
  private window = 0;
  private counts: Counts = new Map();
  private timer: NodeJS.Timeout | null = null;

  constructor(private readonly deps: Pick<Deps, "redis" | "log">) {}

  /** One finished call: its procedure, outcome (`ok` or the appCode) and latency. */
  record(procedure: string, outcome: string, ms: number): void {
    const start = Math.floor(Date.now() / WINDOW_MS) * WINDOW_MS;
    if (start !== this.window) this.rotate(start);
    this.add(`${procedure}|calls`);
    if (ERROR_OUTCOMES.has(outcome)) this.add(`${procedure}|errors`);
    if (outcome === "RATE_LIMITED") this.add(`${procedure}|limited`);
    const bucket = LATENCY_BOUNDS_MS.findIndex((b) => ms <= b);
    this.add(`${procedure}|lat${bucket < 0 ? LATENCY_BOUNDS_MS.length : bucket}`);
    this.timer ??= setTimeout(() => {
      this.timer = null;
      this.rotate(Math.floor(Date.now() / WINDOW_MS) * WINDOW_MS);
    }, WINDOW_MS).unref();
  }

  private add(field: string): void {
    this.counts.set(field, (this.counts.get(field) ?? 0) + 1);
  }

  /** Sends the finished window to Redis (best effort) and starts the next. */
  private rotate(start: number): void {
    const done = this.counts;
    const at = this.window;
    this.counts = new Map();
    this.window = start;
    if (done.size === 0 || at === 0) return;
    const pipeline = this.deps.redis.pipeline();
    for (const [field, n] of done) pipeline.hincrby(windowKey(at), field, n);
    pipeline.expire(windowKey(at), KEEP_S);
    pipeline.exec().catch((err: unknown) => this.deps.log.debug({ err }, "could not write traffic stats"));
  }

  /** Sends what is counted so far (shutdown, tests). */
  flush(): void {
    this.rotate(Math.floor(Date.now() / WINDOW_MS) * WINDOW_MS + WINDOW_MS);
  }
}

const instances = new WeakMap<Deps["redis"], TrafficStats>();

export function trafficStats(deps: Pick<Deps, "redis" | "log">): TrafficStats {
  let s = instances.get(deps.redis);
  if (!s) {
    s = new TrafficStats(deps);
    instances.set(deps.redis, s);
  }
  return s;
}

export type TrafficPoint = {
  /** Window start, ISO. */
  at: string;
  callsPerSec: number;
  errorsPerSec: number;
  limitedPerSec: number;
  /** p99 latency of the window, ms (the bucket bound it falls in); null without calls. */
  p99Ms: number | null;
};

export type ProcedureTotals = { procedure: string; calls: number; errors: number; limited: number; p99Ms: number | null };

function p99Of(histogram: number[]): number | null {
  const total = histogram.reduce((a, b) => a + b, 0);
  if (total === 0) return null;
  let seen = 0;
  for (let i = 0; i < histogram.length; i++) {
    seen += histogram[i] ?? 0;
    if (seen >= total * 0.99) return LATENCY_BOUNDS_MS[i] ?? LATENCY_BOUNDS_MS[LATENCY_BOUNDS_MS.length - 1]! * 2;
  }
  return null;
}

/** The last `minutes` of every instance's windows: one point per window, and totals per procedure. */
export async function readTraffic(deps: Pick<Deps, "redis">, minutes = 15): Promise<{ points: TrafficPoint[]; procedures: ProcedureTotals[] }> {
  const last = Math.floor(Date.now() / WINDOW_MS) * WINDOW_MS - WINDOW_MS;
  const starts = Array.from({ length: Math.round((minutes * 60_000) / WINDOW_MS) }, (_, i) => last - i * WINDOW_MS).reverse();
  const hashes = await Promise.all(starts.map((s) => deps.redis.hgetall(windowKey(s))));
  const perProc = new Map<string, { calls: number; errors: number; limited: number; lat: number[] }>();
  const points = starts.map((start, i) => {
    const h = hashes[i] ?? {};
    let calls = 0;
    let errors = 0;
    let limited = 0;
    const lat: number[] = Array.from({ length: LATENCY_BOUNDS_MS.length + 1 }, () => 0);
    for (const [field, raw] of Object.entries(h)) {
      const n = Number(raw);
      const bar = field.lastIndexOf("|");
      const proc = field.slice(0, bar);
      const what = field.slice(bar + 1);
      const p = perProc.get(proc) ?? { calls: 0, errors: 0, limited: 0, lat: Array.from({ length: LATENCY_BOUNDS_MS.length + 1 }, () => 0) };
      perProc.set(proc, p);
      if (what === "calls") {
        calls += n;
        p.calls += n;
      } else if (what === "errors") {
        errors += n;
        p.errors += n;
      } else if (what === "limited") {
        limited += n;
        p.limited += n;
      } else if (what.startsWith("lat")) {
        const b = Number(what.slice(3));
        lat[b] = (lat[b] ?? 0) + n;
        p.lat[b] = (p.lat[b] ?? 0) + n;
      }
    }
    const secs = WINDOW_MS / 1000;
    return { at: new Date(start).toISOString(), callsPerSec: calls / secs, errorsPerSec: errors / secs, limitedPerSec: limited / secs, p99Ms: p99Of(lat) };
  });
  const procedures = [...perProc]
    .map(([procedure, p]) => ({ procedure, calls: p.calls, errors: p.errors, limited: p.limited, p99Ms: p99Of(p.lat) }))
    .sort((a, b) => b.calls - a.calls);
  return { points, procedures };
}
