import type { Deps } from "~/server/infra/deps";
import { AppError } from "~/server/infra/app-error";
import { counterOf } from "~/server/infra/metrics";
import { taggedKey } from "~/server/infra/redis-keys";
import { Semaphore } from "~/server/infra/semaphore";
import { takeTokens, type BucketLimits } from "~/server/resilience/token-bucket";
import { DUMMY_PASSWORD_HASH, hashPassword, needsRehash, verifyPassword } from "./passwords";
import { createSession } from "./sessions";
import type { AdminRole } from "~/generated/prisma/client";

/**
 * Sign-in budgets, as token buckets taken atomically BEFORE any password is
 * hashed, so attempts in flight cannot overdraw them:
 *  - per account: 10 attempts per 5 minutes (the contract);
 *  - per client address: 100 per 5 minutes, a looser guard that sheds a
 *    spray across many accounts from one address.
 * A sign-in that succeeds gives its tokens back, so operators who type their
 * password right are never counted. The address guard is skipped for an
 * (address, account) pair that signed in successfully before, so an attacker
 * behind the same NAT cannot lock a known operator out; failures against one
 * account therefore never keep another account from signing in.
 */
export const LOGIN_LIMIT = {
  account: { burst: 10, perSecond: 10 / 300 },
  address: { burst: 100, perSecond: 100 / 300 },
} as const satisfies Record<string, BucketLimits>;

/**
 * Password hashing is deliberately expensive (passwords.ts): at most two run
 * at once per process, a few more wait briefly, and beyond that a sign-in is
 * refused with 503 rather than queueing CPU and memory without end.
 */
const hashing = new Semaphore(2, 32, 5_000);
const BUSY_RETRY_MS = 1_000;

/** The Redis keys of one sign-in: its account's bucket, its address's bucket, and the known-pair mark. */
export function loginBucketKeys(ip: string, email: string): { account: string; address: string; known: string } {
  return { account: taggedKey("login:acct", [email]), address: taggedKey("login:addr", [ip]), known: taggedKey("login:known", [ip, email]) };
}

type Budget = { giveBack: () => Promise<void> };

function loginCounter(deps: Pick<Deps, "metrics">) {
  return counterOf(deps.metrics.registry, "fp_login_attempts_total", "Sign-in attempts by outcome (succeeded, failed, limited, busy)", [
    "outcome",
  ] as const);
}

function limited(retryAfterMs: number): AppError {
  return new AppError("RATE_LIMITED", "too many sign-in attempts; wait before trying again", { retryAfterMs });
}

/**
 * Takes one token from each bucket that applies, or none: a later refusal
 * gives back what was taken. Redis down: the limit is skipped (logged and
 * counted) rather than locking every operator out; the hashing bound holds.
 */
async function takeBudget(deps: Deps, ip: string, email: string): Promise<Budget> {
  const taken: { key: string; limits: BucketLimits }[] = [];
  const giveBack = async () => {
    await Promise.all(taken.map((t) => takeTokens(deps.redis, t.key, t.limits, -1).catch(() => undefined)));
  };
  try {
    const keys = loginBucketKeys(ip, email);
    const known = (await deps.redis.exists(keys.known)) === 1;
    const buckets = [
      ...(known ? [] : [{ key: keys.address, limits: LOGIN_LIMIT.address }]),
      { key: keys.account, limits: LOGIN_LIMIT.account },
    ];
    for (const bucket of buckets) {
      const result = await takeTokens(deps.redis, bucket.key, bucket.limits, 1);
      if (!result.allowed) {
        await giveBack();
        throw limited(result.msUntilNextToken);
      }
      taken.push(bucket);
    }
  } catch (e) {
    if (e instanceof AppError) throw e;
    await giveBack();
    deps.metrics.degraded.inc({ component: "login-limit", reason: "redis_unavailable" });
    deps.log.warn({ err: e }, "sign-in limit skipped: redis unavailable");
  }
  return { giveBack };
}

export async function login(
  deps: Deps,
  input: { email: string; password: string; ip: string | null; userAgent: string | null },
): Promise<{ token: string; expiresAt: Date; user: { email: string; role: AdminRole } }> {
  const counter = loginCounter(deps);
  const ip = input.ip ?? "unknown";
  let budget: Budget;
  try {
    budget = await takeBudget(deps, ip, input.email);
  } catch (e) {
    counter.inc({ outcome: "limited" });
    throw e;
  }
  const release = await hashing.acquire();
  if (!release) {
    // Our own overload, not the caller's guess: it costs them no attempt.
    await budget.giveBack();
    counter.inc({ outcome: "busy" });
    throw new AppError("UNAVAILABLE", "too many sign-ins at once; retry shortly", { retryAfterMs: BUSY_RETRY_MS });
  }
  let user: { id: string; email: string; role: AdminRole; passwordHash: string; disabledAt: Date | null } | null;
  let ok: boolean;
  try {
    user = await deps.db.adminUser.findUnique({
      where: { email: input.email },
      select: { id: true, email: true, role: true, passwordHash: true, disabledAt: true },
    });
    ok = await verifyPassword(input.password, user?.passwordHash ?? DUMMY_PASSWORD_HASH);
  } finally {
    release();
  }
  if (!user || !ok || user.disabledAt) {
    counter.inc({ outcome: "failed" });
    throw new AppError("UNAUTHENTICATED", "email or password is wrong");
  }
  counter.inc({ outcome: "succeeded" });
  await budget.giveBack();
  await deps.redis
    .set(loginBucketKeys(ip, input.email).known, "1", "EX", deps.env.SESSION_TTL_S)
    .catch((err: unknown) => deps.log.debug({ err }, "could not remember a known sign-in address"));
  if (needsRehash(user.passwordHash)) await upgradeHash(deps, user.id, input.password);
  const session = await createSession(deps.db, deps.clock, {
    userId: user.id,
    ttlSeconds: deps.env.SESSION_TTL_S,
    ip: input.ip,
    userAgent: input.userAgent,
  });
  return { ...session, user: { email: user.email, role: user.role } };
}

/** Re-hashes a password stored under weaker parameters, now that we know it. Best effort. */
async function upgradeHash(deps: Deps, userId: string, password: string): Promise<void> {
  const release = await hashing.acquire();
  if (!release) return;
  try {
    const passwordHash = await hashPassword(password);
    await deps.db.adminUser.update({ where: { id: userId }, data: { passwordHash } });
  } catch (err) {
    deps.log.warn({ err, userId }, "could not upgrade a password hash");
  } finally {
    release();
  }
}
