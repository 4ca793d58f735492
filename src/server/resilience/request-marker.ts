import type { Deps } from "~/server/infra/deps";
import { taggedKey } from "~/server/infra/redis-keys";
import type { StoredRequest } from "./request-record";

/**
 * The Redis side of X-Request-Id replay: an in-flight marker that answers a
 * concurrent duplicate before it does any work, and a result cache that
 * serves hot replays without a query. Only speed depends on it: when Redis
 * does not answer, the Postgres record (./request-record.ts) still fences a
 * second execution.
 */

// Both keys of one request share a hash tag (`rr:{<principal>:<request id>}:…`),
// so the script and the MULTI below touch one slot on a Redis Cluster.
export const markerKey = (principal: string, requestId: string) => taggedKey("rr", [principal, requestId], "m");
export const cacheKey = (principal: string, requestId: string) => taggedKey("rr", [principal, requestId], "r");

/** KEYS: cache, marker. ARGV: input hash, marker TTL (ms). */
const BEGIN_SCRIPT = `
local cached = redis.call('GET', KEYS[1])
if cached then return {'cache', cached} end
if redis.call('SET', KEYS[2], ARGV[1], 'PX', ARGV[2], 'NX') then return {'claimed'} end
return {'taken', redis.call('GET', KEYS[2]) or ''}`;
/** The cache only speeds up hot replays; Postgres keeps the record for REQUEST_ID_TTL_S. */
const CACHE_TTL_S = 3600;

/** Longest a first execution can legitimately take; a marker left by a dead process expires after it. */
export function markerTtlMs(env: Deps["env"]): number {
  return env.LOCK_WAIT_MS + 2 * env.DB_POOL_WAIT_MS + env.DB_TX_TIMEOUT_MS + 1000;
}

export type MarkerBegin =
  | { kind: "cache"; rec: StoredRequest }
  /** Another execution holds the marker; `hash` is the input hash it runs with. */
  | { kind: "taken"; hash: string | null }
  | { kind: "claimed" | "skipped" };

/** The marker and cache of one request id of one caller. */
export class RequestMarker {
  private redisOk = true;

  constructor(
    private readonly deps: Pick<Deps, "redis" | "env" | "metrics" | "log">,
    readonly principal: string,
    readonly requestId: string,
  ) {}

  private async redis<T>(op: string, fn: () => Promise<T>): Promise<T | undefined> {
    if (!this.redisOk) return undefined;
    if (this.deps.redis.status !== "ready") return this.down(op, new Error(`redis status ${this.deps.redis.status}`));
    try {
      return await fn();
    } catch (e) {
      return this.down(op, e);
    }
  }

  private down(op: string, err: unknown): undefined {
    // Postgres alone still fences a second execution; only speed is lost.
    this.redisOk = false;
    this.deps.metrics.degraded.inc({ component: "request-replay", reason: "redis_unavailable" });
    this.deps.log.debug({ err, op }, "request replay without Redis");
    return undefined;
  }

  /**
   * One round trip: the cached result if there is one, else try to take the
   * in-flight marker. "skipped" when Redis did not answer.
   */
  async begin(hash: string): Promise<MarkerBegin> {
    const reply = await this.redis("begin", () =>
      this.deps.redis.eval(
        BEGIN_SCRIPT,
        2,
        cacheKey(this.principal, this.requestId),
        markerKey(this.principal, this.requestId),
        hash,
        markerTtlMs(this.deps.env),
      ),
    );
    if (reply === undefined) return { kind: "skipped" };
    const [kind, value] = reply as [string, string | undefined];
    if (kind === "cache" && value) {
      try {
        return { kind: "cache", rec: JSON.parse(value) as StoredRequest };
      } catch {
        return { kind: "taken", hash: null };
      }
    }
    return kind === "claimed" ? { kind: "claimed" } : { kind: "taken", hash: value || null };
  }

  /** Drops the marker, caching the outcome first when there is one to replay. */
  async finish(rec: StoredRequest | null): Promise<void> {
    await this.redis("finish", async () => {
      const m = this.deps.redis.multi();
      // Cache before the marker goes, so a duplicate always finds one of them.
      if (rec) m.set(cacheKey(this.principal, this.requestId), JSON.stringify(rec), "EX", CACHE_TTL_S);
      m.del(markerKey(this.principal, this.requestId));
      await m.exec();
    });
  }
}
