import { performance } from "node:perf_hooks";
import { z } from "zod";
import type { Deps } from "~/server/infra/deps";
import { AppError } from "~/server/infra/app-error";
import { defineSetting, type LiveSettings } from "~/server/infra/live-settings";
import type { AuditEntry } from "~/server/audit/audit-log";
import { resilienceMetrics } from "./resilience-metrics";
import { updateSetting } from "./settings-update";
import { switchOn } from "./switches";
import { takeTokens, type TakeResult } from "./token-bucket";

/**
 * The per-user rate limit: one token bucket per user and credit type, shared
 * by every instance, with limits an admin can change live (setting
 * `rateLimit`; the environment's RATE_LIMIT_* until then).
 */
export const ZRateLimits = z
  .object({
    perSecond: z.number().positive().max(1_000_000),
    burst: z.number().int().min(1).max(1_000_000),
  })
  .strict();
export type RateLimits = z.infer<typeof ZRateLimits>;

export const rateLimitSetting = defineSetting("rateLimit", ZRateLimits);

/** The bucket of one user and credit type (shared by deduct and purchase). */
export function userBucketKey(userId: string, creditTypeId: string): string {
  return `rate:user:${userId}:creditType:${creditTypeId}`;
}

export type EffectiveRateLimits = RateLimits & {
  source: "env" | "settings";
  version: number;
  updatedBy: string | null;
  updatedAt: string | null;
};

export function rateLimitsOf(live: LiveSettings, env: Deps["env"]): EffectiveRateLimits {
  const entry = live.get(rateLimitSetting);
  const limits = entry.value ?? { perSecond: env.RATE_LIMIT_PER_SECOND, burst: env.RATE_LIMIT_BURST };
  return {
    perSecond: limits.perSecond,
    burst: limits.burst,
    source: entry.value ? "settings" : "env",
    version: entry.version,
    updatedBy: entry.updatedBy,
    updatedAt: entry.updatedAt,
  };
}

/** The limits in force: the admin's (setting `rateLimit`) or the env defaults. */
export async function getRateLimits(deps: Pick<Deps, "settings" | "env">): Promise<EffectiveRateLimits> {
  return rateLimitsOf(await deps.settings.ready(), deps.env);
}

/** An admin changes the limits: audited, applied on every instance within a second. */
export async function setRateLimits(
  deps: Deps,
  input: RateLimits & { reason: string },
  caller: { actor: AuditEntry["actor"]; requestId?: string | null },
): Promise<EffectiveRateLimits> {
  await updateSetting(deps, rateLimitSetting, {
    actor: caller.actor,
    action: "rateLimit.set",
    target: "rateLimit",
    reason: input.reason,
    requestId: caller.requestId,
    change: () => ({ perSecond: input.perSecond, burst: input.burst }),
    auditView: (v) => v ?? { perSecond: deps.env.RATE_LIMIT_PER_SECOND, burst: deps.env.RATE_LIMIT_BURST, source: "env" },
  });
  deps.log.warn({ perSecond: input.perSecond, burst: input.burst, by: caller.actor.email, reason: input.reason }, "rate limits changed");
  return getRateLimits(deps);
}

let lastFailOpenLog = -Infinity;

/**
 * What to do when the bucket cannot be read (Redis down or failing): by
 * default let the call through (counted as `fail_open`); with the
 * `rateLimitFailClosed` switch on, refuse it with 503 UNAVAILABLE.
 */
function limiterUnavailable(deps: Deps, live: LiveSettings, procedure: string, err: unknown): null {
  const metrics = resilienceMetrics(deps.metrics);
  const failClosed = switchOn(live, "rateLimitFailClosed");
  metrics.rateLimitDecisions.inc({ procedure, decision: failClosed ? "fail_closed" : "fail_open" });
  const now = performance.now();
  if (now - lastFailOpenLog > 10_000) {
    lastFailOpenLog = now;
    deps.log.warn({ err, procedure, failClosed }, "rate limiter unavailable (redis)");
  }
  if (failClosed) {
    throw new AppError("UNAVAILABLE", "the rate limiter is unavailable; retry shortly", { retryAfterMs: 1_000, cause: err });
  }
  return null;
}

/**
 * Takes one token for `userId`/`creditTypeId` under the limits in force.
 * Throws 429 RATE_LIMITED (with `retryAfterMs`) when the bucket is empty.
 * Returns null when the limiter could not decide and let the call through.
 */
export async function checkRateLimit(
  deps: Deps,
  input: { procedure: string; userId: string; creditTypeId: string },
): Promise<TakeResult | null> {
  const live = await deps.settings.ready();
  const limits = rateLimitsOf(live, deps.env);
  let result: TakeResult;
  try {
    result = await takeTokens(deps.redis, userBucketKey(input.userId, input.creditTypeId), limits);
  } catch (err) {
    return limiterUnavailable(deps, live, input.procedure, err);
  }
  const metrics = resilienceMetrics(deps.metrics);
  if (!result.allowed) {
    metrics.rateLimitDecisions.inc({ procedure: input.procedure, decision: "limited" });
    throw new AppError(
      "RATE_LIMITED",
      `too many requests for user ${input.userId} and credit type ${input.creditTypeId} (${limits.perSecond}/s, burst ${limits.burst})`,
      { retryAfterMs: result.msUntilNextToken },
    );
  }
  metrics.rateLimitDecisions.inc({ procedure: input.procedure, decision: "allowed" });
  return result;
}
