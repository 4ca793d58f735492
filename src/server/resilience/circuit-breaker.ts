import { performance } from "node:perf_hooks";
import type { Result } from "ioredis";
import { z } from "zod";
import type { Deps } from "~/server/infra/deps";
import { systemClock, type Clock } from "~/server/infra/clock";
import type { RedisClient } from "~/server/infra/redis";
import { isRedisUnavailable, redisUnavailable } from "~/server/infra/redis";
import { mapDbError } from "~/server/infra/db";
import { AppError, INFRASTRUCTURE_CODES } from "~/server/infra/app-error";
import { sendAlert } from "~/server/infra/alerts";
import { defineSetting, type LiveSettings } from "~/server/infra/live-settings";
import { resilienceMetrics } from "./resilience-metrics";

/**
 * Circuit breakers shared by every app instance: one Redis hash and one
 * sorted set (the sliding error window) per name, every transition made
 * atomically by src/server/infra/lua/circuit-breaker.lua and derived from
 * stored timestamps, so no timer process is needed.
 *
 * CLOSED ──(errorThreshold infra failures within windowMs)──> OPEN
 * OPEN ──(openMs later, on the next call)──> HALF_OPEN: every 1/probeRatio-th call is a probe
 * HALF_OPEN ──probe succeeds──> CLOSED (counts cleared) · ──probe fails──> OPEN again
 * HALF_OPEN ──(halfOpenMs without a verdict)──> CLOSED (the error window re-opens it quickly if needed)
 *
 * Time comes from `deps.clock` (passed into the script), so tests drive it.
 * An operator may force a state (kept in Postgres too, re-applied after a
 * Redis restart) until a reset makes the breaker automatic again.
 */
export const CIRCUIT_NAMES = ["credit.deduct", "flashSale.purchase"] as const;
export type CircuitName = (typeof CIRCUIT_NAMES)[number];
export const ZCircuitName = z.enum(CIRCUIT_NAMES);

export const CIRCUIT_STATES = ["CLOSED", "OPEN", "HALF_OPEN"] as const;
export type CircuitState = (typeof CIRCUIT_STATES)[number];
export const ZCircuitState = z.enum(CIRCUIT_STATES);

export const ZCircuitConfig = z
  .object({
    /** Infrastructure failures within `windowMs` that open a closed breaker. */
    errorThreshold: z.number().int().min(1).max(1_000_000),
    windowMs: z.number().int().min(1_000).max(86_400_000),
    /** How long OPEN refuses everything before HALF_OPEN. */
    openMs: z.number().int().min(1_000).max(86_400_000),
    /** How long HALF_OPEN waits for a probe's verdict before closing. */
    halfOpenMs: z.number().int().min(1_000).max(86_400_000),
    /** Share of HALF_OPEN calls let through as probes. */
    probeRatio: z.number().min(0.001).max(1),
  })
  .strict();
export type CircuitConfig = z.infer<typeof ZCircuitConfig>;

export const DEFAULT_CIRCUIT_CONFIG: CircuitConfig = {
  errorThreshold: 10,
  windowMs: 60_000,
  openMs: 30_000,
  halfOpenMs: 120_000,
  probeRatio: 0.1,
};

export const ZForcedCircuit = z.object({
  state: ZCircuitState,
  reason: z.string(),
  by: z.string(),
  at: z.string(),
});
export type ForcedCircuit = z.infer<typeof ZForcedCircuit>;

/** Thresholds shared by every breaker (a partial override of the defaults). */
export const circuitConfigSetting = defineSetting("circuit", ZCircuitConfig.partial());
/** States forced by an operator, by circuit name; unknown names are ignored. */
export const circuitForcedSetting = defineSetting("circuitForced", z.record(z.string(), ZForcedCircuit));

declare module "ioredis" {
  interface RedisCommander<Context> {
    fpCircuit(
      stateKey: string,
      errorsKey: string,
      ...args: (string | number)[]
    ): Result<[number, CircuitState, number, number, number, number, number, string, string, string], Context>;
  }
}

/** The script is defined on every client when it is made (infra/lua.ts, `defineLuaCommands`). */
const withCircuitScript = (redis: RedisClient): RedisClient => redis;

/** Both keys of one breaker share a hash tag (one slot on a Redis Cluster). */
export function circuitKeys(name: CircuitName): [state: string, errors: string] {
  return [`circuit:{${name}}:state`, `circuit:{${name}}:errors`];
}

export const STATE_GAUGE: Record<CircuitState, number> = { CLOSED: 0, HALF_OPEN: 1, OPEN: 2 };

export type CircuitView = {
  name: CircuitName;
  state: CircuitState;
  /** Infrastructure failures in the current window. */
  errorCount: number;
  openedAt: string | null;
  halfOpenAt: string | null;
  /** Who forced the current state; null while automatic. */
  forcedBy: string | null;
  forced: boolean;
  forcedReason: string | null;
};

type Reply = {
  decision: 0 | 1 | 2;
  state: CircuitState;
  retryAfterMs: number;
  errorCount: number;
  openedAt: number | null;
  halfOpenAt: number | null;
  forced: boolean;
  forcedBy: string | null;
  forcedReason: string | null;
  transitions: { from: CircuitState; to: CircuitState }[];
};

type Op = "admit" | "record" | "peek" | "reset";

/**
 * The time a breaker decision is made at: with the system clock, the Redis
 * server's (the script reads it), so a process whose clock is off — skewed,
 * stepped by NTP — cannot half-open a breaker early or hold it open late for
 * the others; an injected clock (tests) is passed as it is.
 */
function breakerNow(clock: Clock): number | "" {
  return clock === systemClock ? "" : clock.nowMs();
}

export function circuitConfigOf(live: LiveSettings): CircuitConfig {
  return { ...DEFAULT_CIRCUIT_CONFIG, ...live.get(circuitConfigSetting).value };
}

async function runScript(
  deps: Deps,
  live: LiveSettings,
  name: CircuitName,
  op: Op,
  extra: { outcome?: "success" | "failure"; probe?: boolean } = {},
): Promise<Reply> {
  const cfg = circuitConfigOf(live);
  const forcedEntry = live.get(circuitForcedSetting);
  const forced = forcedEntry.value?.[name];
  const [state, errors] = circuitKeys(name);
  const r = await withCircuitScript(deps.redis).fpCircuit(
    state,
    errors,
    op,
    breakerNow(deps.clock),
    cfg.errorThreshold,
    cfg.windowMs,
    cfg.openMs,
    cfg.halfOpenMs,
    cfg.probeRatio,
    forcedEntry.version,
    forced?.state ?? "",
    forced?.by ?? "",
    forced?.reason ?? "",
    extra.outcome ?? "",
    extra.probe ? "1" : "0",
  );
  const reply: Reply = {
    decision: r[0] as 0 | 1 | 2,
    state: r[1],
    retryAfterMs: r[2],
    errorCount: r[3],
    openedAt: r[4] >= 0 ? r[4] : null,
    halfOpenAt: r[5] >= 0 ? r[5] : null,
    forced: r[6] === 1,
    forcedBy: r[7] || null,
    forcedReason: r[8] || null,
    transitions: r[9]
      ? r[9].split(",").map((t) => {
          const [from, to] = t.split(">") as [CircuitState, CircuitState];
          return { from, to };
        })
      : [],
  };
  observe(deps, name, reply, cfg);
  return reply;
}

/** Gauge, transition log and counter, and the alert on OPEN, for what this call changed. */
function observe(deps: Deps, name: CircuitName, reply: Reply, cfg: CircuitConfig): void {
  const metrics = resilienceMetrics(deps.metrics);
  metrics.circuitState.set({ name }, STATE_GAUGE[reply.state]);
  for (const { from, to } of reply.transitions) {
    metrics.circuitTransitions.inc({ name, from, to });
    const fields = { circuit: name, from, to, forced: reply.forced, forcedBy: reply.forcedBy };
    if (to === "OPEN") deps.log.error(fields, "circuit opened");
    else deps.log.warn(fields, `circuit ${to === "CLOSED" ? "closed" : "half-open"}`);
    if (to === "OPEN") {
      void sendAlert(deps, {
        kind: "circuit.open",
        severity: "critical",
        summary: reply.forced
          ? `circuit ${name} forced OPEN by ${reply.forcedBy ?? "an operator"}`
          : `circuit ${name} opened after ${cfg.errorThreshold} infrastructure failures within ${cfg.windowMs / 1000}s`,
        details: {
          circuit: name,
          from,
          forced: reply.forced,
          forcedBy: reply.forcedBy,
          openMs: cfg.openMs,
          openedAt: reply.openedAt === null ? null : new Date(reply.openedAt).toISOString(),
        },
      });
    }
  }
}

/** What `admitCall` hands back, for `recordOutcome`. */
export type CircuitTicket = { name: CircuitName; probe: boolean; tracked: boolean };

let lastFailOpenLog = -Infinity;

function logFailOpen(deps: Deps, name: CircuitName, err: unknown): void {
  const now = performance.now();
  if (now - lastFailOpenLog > 10_000) {
    lastFailOpenLog = now;
    deps.log.warn({ err, circuit: name }, "circuit state unreadable (redis); letting calls through");
  }
}

/**
 * Asks the breaker whether a call may run. Throws 503 CIRCUIT_OPEN (with
 * `retryAfterMs`) when it is open, or half-open and this call is no probe.
 * If Redis cannot be reached the call runs (fail open, counted).
 */
export async function admitCall(deps: Deps, name: CircuitName): Promise<CircuitTicket> {
  const live = await deps.settings.ready();
  const metrics = resilienceMetrics(deps.metrics);
  let reply: Reply;
  try {
    reply = await runScript(deps, live, name, "admit");
  } catch (err) {
    metrics.circuitDecisions.inc({ name, decision: "fail_open" });
    logFailOpen(deps, name, err);
    return { name, probe: false, tracked: false };
  }
  if (reply.decision === 0) {
    metrics.circuitDecisions.inc({ name, decision: "rejected" });
    const why =
      reply.state === "OPEN"
        ? reply.forced
          ? `forced open by ${reply.forcedBy ?? "an operator"}`
          : "open after repeated infrastructure failures"
        : "half-open and admitting only probe calls";
    throw new AppError("CIRCUIT_OPEN", `${name} is temporarily unavailable: the circuit is ${why}`, {
      retryAfterMs: reply.retryAfterMs,
      details: { circuit: name, state: reply.state },
    });
  }
  metrics.circuitDecisions.inc({ name, decision: reply.decision === 2 ? "probe" : "allowed" });
  return { name, probe: reply.decision === 2, tracked: true };
}

/**
 * Reports how an admitted call ended. Successes of ordinary calls need no
 * round trip (a closed breaker only counts failures); probes always report.
 * Never throws: a breaker that cannot record must not fail the call.
 */
export async function recordOutcome(deps: Deps, ticket: CircuitTicket, outcome: "success" | "failure"): Promise<void> {
  if (!ticket.tracked || (outcome === "success" && !ticket.probe)) return;
  try {
    const live = await deps.settings.ready();
    await runScript(deps, live, ticket.name, "record", { outcome, probe: ticket.probe });
  } catch (err) {
    logFailOpen(deps, ticket.name, err);
  }
}

/**
 * Whether a failure is the infrastructure's (what a breaker counts): AppError
 * codes in INFRASTRUCTURE_CODES (UNAVAILABLE, INTERNAL), raw database/Redis
 * outages, and any error that is not an AppError (a bug or a failpoint) —
 * but not this process's own overload (every pooled connection busy).
 * Business answers (INSUFFICIENT_BALANCE, SOLD_OUT, RATE_LIMITED…) never count.
 */
export function isInfrastructureFailure(error: unknown): boolean {
  let cause: unknown = error;
  // tRPC wraps what a procedure threw; the AppError (if any) is its cause.
  if (cause instanceof Error && cause.name === "TRPCError") cause = (cause as Error & { cause?: unknown }).cause ?? cause;
  if (cause instanceof AppError) return isDependencyFailure(cause);
  if (cause instanceof Error && cause.name === "TRPCError") {
    // Raised by tRPC itself (bad input, unknown procedure…): the caller's problem.
    const code = (cause as Error & { code?: string }).code;
    return code === "INTERNAL_SERVER_ERROR" || code === "TIMEOUT" || code === "SERVICE_UNAVAILABLE";
  }
  if (cause instanceof Error && cause.name === "ZodError") return false;
  const mapped = isRedisUnavailable(cause) ? redisUnavailable(cause) : mapDbError(cause);
  if (mapped instanceof AppError) return isDependencyFailure(mapped);
  return true;
}

/** This process's own overload (a busy pool) says nothing about the dependency. */
function isDependencyFailure(e: AppError): boolean {
  return INFRASTRUCTURE_CODES.has(e.code) && e.details?.overload === undefined;
}

function toView(name: CircuitName, r: Reply): CircuitView {
  return {
    name,
    state: r.state,
    errorCount: Math.max(0, r.errorCount),
    openedAt: r.openedAt === null ? null : new Date(r.openedAt).toISOString(),
    halfOpenAt: r.halfOpenAt === null ? null : new Date(r.halfOpenAt).toISOString(),
    forcedBy: r.forced ? r.forcedBy : null,
    forced: r.forced,
    forcedReason: r.forced ? r.forcedReason : null,
  };
}

/** One breaker as every instance sees it now (pending time-based transitions applied). */
export async function getCircuit(deps: Deps, name: CircuitName): Promise<CircuitView> {
  const live = await deps.settings.ready();
  try {
    return toView(name, await runScript(deps, live, name, "peek"));
  } catch (err) {
    if (err instanceof AppError) throw err;
    throw isRedisUnavailable(err) ? redisUnavailable(err) : err;
  }
}

export async function listCircuits(deps: Deps): Promise<CircuitView[]> {
  return Promise.all(CIRCUIT_NAMES.map((name) => getCircuit(deps, name)));
}

/** Clears a breaker's counts and state in Redis: automatic and CLOSED again. */
export async function resetCircuitState(deps: Deps, name: CircuitName): Promise<CircuitView> {
  return toView(name, await runScript(deps, await deps.settings.ready(), name, "reset"));
}
