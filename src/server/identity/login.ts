import type { Deps } from "~/server/infra/deps";
import { AppError } from "~/server/infra/app-error";
import { isRedisUnavailable } from "~/server/infra/redis";
import { DUMMY_PASSWORD_HASH, verifyPassword } from "./passwords";
import { createSession } from "./sessions";
import type { AdminRole } from "~/generated/prisma/client";

/**
 * Failed-login budget per account and per client address (higher: offices
 * share one address), in a fixed window.
 */
export const LOGIN_LIMIT = { perEmail: 10, perIp: 50, windowSeconds: 300 } as const;

async function countAttempt(deps: Deps, key: string): Promise<number> {
  const res = await deps.redis.multi().incr(key).expire(key, LOGIN_LIMIT.windowSeconds, "NX").exec();
  const first = res?.[0];
  return typeof first?.[1] === "number" ? first[1] : 0;
}

/**
 * Checks the login budget before any password work, so guessing costs the
 * attacker time and us nothing. Redis down: the limit is skipped (logged and
 * counted) rather than locking every operator out.
 */
async function checkLoginBudget(deps: Deps, ip: string | null, email: string): Promise<void> {
  const keys = [`login:ip:${ip ?? "unknown"}`, `login:email:${email}`];
  try {
    const counts = await deps.redis.mget(keys);
    const over = Number(counts[0] ?? 0) >= LOGIN_LIMIT.perIp || Number(counts[1] ?? 0) >= LOGIN_LIMIT.perEmail;
    if (over) {
      const ttl = Math.max(await deps.redis.pttl(keys[0]!), await deps.redis.pttl(keys[1]!));
      throw new AppError("RATE_LIMITED", "too many sign-in attempts; wait before trying again", {
        retryAfterMs: ttl > 0 ? ttl : LOGIN_LIMIT.windowSeconds * 1000,
      });
    }
  } catch (e) {
    if (e instanceof AppError) throw e;
    if (!isRedisUnavailable(e)) throw e;
    deps.metrics.degraded.inc({ component: "login-limit", reason: "redis-unavailable" });
    deps.log.warn({ err: e }, "login rate limit skipped: redis unavailable");
  }
}

async function recordFailure(deps: Deps, ip: string | null, email: string): Promise<void> {
  try {
    await Promise.all([countAttempt(deps, `login:ip:${ip ?? "unknown"}`), countAttempt(deps, `login:email:${email}`)]);
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
