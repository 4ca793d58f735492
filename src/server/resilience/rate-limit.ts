import { performance } from "node:perf_hooks";
import { z } from "zod";
import type { Deps } from "~/server/infra/deps";
import { AppError } from "~/server/infra/app-error";
import { defineSetting, type LiveSettings } from "~/server/infra/live-settings";
import { taggedKey } from "~/server/infra/redis-keys";
import type { AuditEntry } from "~/server/audit/audit-log";
import { resilienceMetrics } from "./resilience-metrics";
import { updateSetting } from "./settings-update";
import { switchOn } from "./switches";
import { takeTokens, type TakeResult } from "./token-bucket";

/**
 * Rate limits, as token buckets shared by every instance, with limits an admin
 * changes live (the environment's values until then):
 *  - per user and credit type (setting `rateLimit`; RATE_LIMIT_*): what one
 *    account may spend, 5/s with bursts of 10 by default;
 *  - per API key (setting `keyRateLimit`; KEY_RATE_LIMIT_*): what one calling
 *    service may ask of the whole deployment, so that one key's flood cannot
 *    exhaust the pools and open a breaker for everybody.
 */
export const ZRateLimits = z
  .object({
    perSecond: z.number().positive().max(1_000_000),
    burst: z.number().int().min(1).max(10_000_000),
  })
  .strict();
export type RateLimits = z.infer<typeof ZRateLimits>;

export const rateLimitSetting = defineSetting("rateLimit", ZRateLimits);
export const keyRateLimitSetting = defineSetting("keyRateLimit", ZRateLimits);

export const RATE_LIMIT_SCOPES = ["user", "apiKey"] as const;
export type RateLimitScope = (typeof RATE_LIMIT_SCOPES)[number];

const SCOPES = {
  user: {
    setting: rateLimitSetting,
    defaults: (env: Deps["env"]): RateLimits => ({ perSecond: env.RATE_LIMIT_PER_SECOND, burst: env.RATE_LIMIT_BURST }),
    auditTarget: "rateLimit",
  },
  apiKey: {
    setting: keyRateLimitSetting,
    defaults: (env: Deps["env"]): RateLimits => ({ perSecond: env.KEY_RATE_LIMIT_PER_SECOND, burst: env.KEY_RATE_LIMIT_BURST }),
    auditTarget: "rateLimit:apiKey",
  },
} as const satisfies Record<RateLimitScope, unknown>;

/** The bucket of one user and credit type (shared by deduct and purchase). */
export function userBucketKey(userId: string, creditTypeId: string): string {
  return taggedKey("rate:acct", [userId, creditTypeId]);
}

/** The bucket of one API key. */
export function keyBucketKey(keyId: string): string {
  return taggedKey("rate:key", [keyId]);
}

export type EffectiveRateLimits = RateLimits & {
  source: "env" | "settings";
  version: number;
  updatedBy: string | null;
  updatedAt: string | null;
};

function limitsIn(live: LiveSettings, env: Deps["env"], scope: RateLimitScope): EffectiveRateLimits {
  const { setting, defaults } = SCOPES[scope];
  const entry = live.get(setting);
  const limits = entry.value ?? defaults(env);
  return {
    perSecond: limits.perSecond,
    burst: limits.burst,
    source: entry.value ? "settings" : "env",
    version: entry.version,
    updatedBy: entry.updatedBy,
    updatedAt: entry.updatedAt,
  };
}

/** The per-user limits in force. */
export function rateLimitsOf(live: LiveSettings, env: Deps["env"]): EffectiveRateLimits {
  return limitsIn(live, env, "user");
}

/** The per-user limits in force, and the per-key ones beside them. */
export type RateLimitsView = EffectiveRateLimits & { perKey: EffectiveRateLimits };

export async function getRateLimits(deps: Pick<Deps, "settings" | "env">): Promise<RateLimitsView> {
  const live = await deps.settings.ready();
  return { ...limitsIn(live, deps.env, "user"), perKey: limitsIn(live, deps.env, "apiKey") };
}

/** An admin changes the per-user (default) or per-key limits: audited, applied on every instance within a second. */
export async function setRateLimits(
  deps: Deps,
  input: RateLimits & { reason: string; scope?: RateLimitScope },
  caller: { actor: AuditEntry["actor"]; requestId?: string | null },
): Promise<RateLimitsView> {
  const scope = input.scope ?? "user";
  const { setting, defaults, auditTarget } = SCOPES[scope];
  await updateSetting(deps, setting, {
    actor: caller.actor,
    action: "rateLimit.set",
    target: auditTarget,
    reason: input.reason,
    requestId: caller.requestId,
    change: () => ({ perSecond: input.perSecond, burst: input.burst }),
    auditView: (v) => v ?? { ...defaults(deps.env), source: "env" },
  });
  deps.log.warn({ scope, perSecond: input.perSecond, burst: input.burst, by: caller.actor.email, reason: input.reason }, "rate limits changed");
  return getRateLimits(deps);
}

let lastFailOpenLog = -Infinity;

/**
 * What to do when a bucket cannot be read (Redis down or failing): by
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

/** Takes one token from `key` under the scope's limits; 429 when empty, null when the limiter could not decide. */
async function take(deps: Deps, scope: RateLimitScope, key: string, procedure: string, what: string): Promise<TakeResult | null> {
  const live = await deps.settings.ready();
  const limits = limitsIn(live, deps.env, scope);
  let result: TakeResult;
  try {
    result = await takeTokens(deps.redis, key, limits);
  } catch (err) {
    return limiterUnavailable(deps, live, procedure, err);
  }
  const metrics = resilienceMetrics(deps.metrics);
  if (!result.allowed) {
    metrics.rateLimitDecisions.inc({ procedure, decision: scope === "user" ? "limited" : "limited_key" });
    throw new AppError("RATE_LIMITED", `too many requests for ${what} (${limits.perSecond}/s, burst ${limits.burst})`, {
      retryAfterMs: result.msUntilNextToken,
    });
  }
  metrics.rateLimitDecisions.inc({ procedure, decision: "allowed" });
  return result;
}

/**
 * Takes one token for `userId`/`creditTypeId` under the limits in force.
 * Throws 429 RATE_LIMITED (with `retryAfterMs`) when the bucket is empty.
 * Returns null when the limiter could not decide and let the call through.
 */
export function checkRateLimit(
  deps: Deps,
  input: { procedure: string; userId: string; creditTypeId: string },
): Promise<TakeResult | null> {
  return take(deps, "user", userBucketKey(input.userId, input.creditTypeId), input.procedure, `user ${input.userId} and credit type ${input.creditTypeId}`);
}

/** Takes one token from the calling API key's budget (every call of a key, batched or not). */
export function checkKeyRateLimit(deps: Deps, input: { procedure: string; keyId: string; keyName: string }): Promise<TakeResult | null> {
  return take(deps, "apiKey", keyBucketKey(input.keyId), input.procedure, `API key ${input.keyName}`);
}
