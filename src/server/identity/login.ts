import type { Deps } from "~/server/infra/deps";
import { AppError } from "~/server/infra/app-error";
import { takeTokens, type TakeResult } from "~/server/resilience/token-bucket";
import { resilienceMetrics } from "~/server/resilience/resilience-metrics";
import { DUMMY_PASSWORD_HASH, verifyPassword } from "./passwords";
import { createSession } from "./sessions";
import type { AdminRole } from "~/generated/prisma/client";

/**
 * Failed-sign-in budgets, as token buckets: per account 10 attempts refilling
 * one every 30 s (10 per 5 minutes); per client address three times that,
 * since operators behind one NAT share it. Only failures take a token, so
 * operators who sign in correctly are never limited.
 */
export const LOGIN_LIMIT = {
  email: { burst: 10, perSecond: 10 / 300 },
  ip: { burst: 30, perSecond: 30 / 300 },
} as const;

function loginBuckets(ip: string | null, email: string) {
  return [
    { key: `login:ip:${ip ?? "unknown"}`, limits: LOGIN_LIMIT.ip },
    { key: `login:email:${email}`, limits: LOGIN_LIMIT.email },
  ];
}

/**
 * Checks the budget before any password work, so guessing costs the attacker
 * time and us nothing. Redis down: the limit is skipped (logged and counted)
 * rather than locking every operator out.
 */
async function checkLoginBudget(deps: Deps, ip: string | null, email: string): Promise<void> {
  let results: TakeResult[];
  try {
    // n = 0: is a token left? Nothing is taken until an attempt fails.
    results = await Promise.all(loginBuckets(ip, email).map((b) => takeTokens(deps.redis, b.key, b.limits, 0)));
  } catch (e) {
    deps.metrics.degraded.inc({ component: "login-limit", reason: "redis-unavailable" });
    resilienceMetrics(deps.metrics).rateLimitDecisions.inc({ procedure: "auth.login", decision: "fail_open" });
    deps.log.warn({ err: e }, "login rate limit skipped: redis unavailable");
    return;
  }
  const refused = results.filter((r) => !r.allowed);
  if (refused.length > 0) {
    resilienceMetrics(deps.metrics).rateLimitDecisions.inc({ procedure: "auth.login", decision: "limited" });
    throw new AppError("RATE_LIMITED", "too many sign-in attempts; wait before trying again", {
      retryAfterMs: Math.max(...refused.map((r) => r.msUntilNextToken)),
    });
  }
}

async function recordFailure(deps: Deps, ip: string | null, email: string): Promise<void> {
  try {
    await Promise.all(loginBuckets(ip, email).map((b) => takeTokens(deps.redis, b.key, b.limits, 1)));
  } catch (e) {
    deps.log.warn({ err: e }, "could not record a failed sign-in");
  }
}

export async function login(
  deps: Deps,
  input: { email: string; password: string; ip: string | null; userAgent: string | null },
): Promise<{ token: string; expiresAt: Date; user: { email: string; role: AdminRole } }> {
  await checkLoginBudget(deps, input.ip, input.email);
  const user = await deps.db.adminUser.findUnique({
    where: { email: input.email },
    select: { id: true, email: true, role: true, passwordHash: true, disabledAt: true },
  });
  const ok = await verifyPassword(input.password, user?.passwordHash ?? DUMMY_PASSWORD_HASH);
  if (!user || !ok || user.disabledAt) {
    await recordFailure(deps, input.ip, input.email);
    throw new AppError("UNAUTHENTICATED", "email or password is wrong");
  }
  const session = await createSession(deps.db, deps.clock, {
    userId: user.id,
    ttlSeconds: deps.env.SESSION_TTL_S,
    ip: input.ip,
    userAgent: input.userAgent,
  });
  return { ...session, user: { email: user.email, role: user.role } };
}
