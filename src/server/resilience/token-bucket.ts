import type { Result } from "ioredis";
import type { RedisClient } from "~/server/infra/redis";

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

/** The script is defined on every client when it is made (infra/lua.ts, `defineLuaCommands`). */
const withBucket = (redis: RedisClient): RedisClient => redis;

export type BucketLimits = { perSecond: number; burst: number };

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
export async function takeTokens(redis: RedisClient, key: string, limits: BucketLimits, n = 1): Promise<TakeResult> {
  const [allowed, remaining, ms] = await withBucket(redis).fpTokenBucket(key, limits.perSecond, limits.burst, n);
  return { allowed: allowed === 1, remaining, msUntilNextToken: ms };
}
