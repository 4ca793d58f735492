import { performance } from "node:perf_hooks";
import type { Result } from "ioredis";
import type { Deps } from "~/server/infra/deps";
import type { Redis } from "~/server/infra/redis";
import { AppError } from "~/server/infra/app-error";
import type { AuditEntry } from "~/server/audit/audit-log";
import { luaSource } from "./lua-script";
import { resilienceMetrics } from "./resilience-metrics";
import { currentSettings, updateSetting, type LiveSettings, type RateLimits } from "./settings";

/**
 * A shared token bucket (src/server/infra/lua/token-bucket.lua): every app
 * instance takes from the same Redis bucket, refilled by the elapsed time on
 * the Redis server's clock.
 */

declare module "ioredis" {
  interface RedisCommander<Context> {
    fpTokenBucket(key: string, perSecond: number, burst: number, n: number): Result<[number, number, number], Context>;
  }
}

function withBucket(redis: Redis): Redis {
  // Once per client; EVALSHA with a fallback to EVAL after a Redis restart.
  if (typeof (redis as Partial<Redis>).fpTokenBucket !== "function") {
    redis.defineCommand("fpTokenBucket", { numberOfKeys: 1, lua: luaSource("token-bucket.lua") });
  }
  return redis;
}

export type TakeResult = {
  allowed: boolean;
  /** Whole tokens left after this call. */
  remaining: number;
  /** Allowed: ms until the next token (0 when full). Refused: ms until this call could pass. */
  msUntilNextToken: number;
};

/**
 * Takes `n` tokens from the bucket at `key` (the client's key prefix applies).
 * `n = 0` only checks that a token is left, taking and writing nothing.
 */
export async function takeTokens(redis: Redis, key: string, limits: RateLimits, n = 1): Promise<TakeResult> {
  const [allowed, remaining, ms] = await withBucket(redis).fpTokenBucket(key, limits.perSecond, limits.burst, n);
  return { allowed: allowed === 1, remaining, msUntilNextToken: ms };
}

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
  const entry = live.get("rateLimit");
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

/** The limits in force: the admin's (settings `rateLimit`) or the env defaults. */
export async function getRateLimits(deps: Deps): Promise<EffectiveRateLimits> {
  return rateLimitsOf(await currentSettings(deps), deps.env);
}

/** An admin changes the limits: audited, applied on every instance within a second. */
export async function setRateLimits(
  deps: Deps,
  input: RateLimits & { reason: string },
  caller: { actor: AuditEntry["actor"]; requestId?: string | null },
): Promise<EffectiveRateLimits> {
  await updateSetting(deps, "rateLimit", {
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
  const failClosed = live.get("switches").value?.rateLimitFailClosed ?? false;
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
  const live = await currentSettings(deps);
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
