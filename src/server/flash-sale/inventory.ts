import type { Result } from "ioredis";
import type { RedisClient } from "~/server/infra/redis";
import { taggedKey } from "~/server/infra/redis-keys";

/**
 * The Redis side of a flash-sale item: the gate every purchase passes before
 * Postgres. Each item's keys share the `{hash tag}` of its (length-prefixed)
 * id, so every script touches one slot on a Redis Cluster. Redis is only a fast gate: Postgres'
 * `CHECK (sold <= stock)` and one order per buyer are the truth, and all of
 * this can be rebuilt from Postgres (warm-up, reconciliation).
 *
 *   fs:{<len>:<item>}:meta    hash  activityId, startsAt, endsAt (ms), paused, price, creditTypeId
 *   fs:{<len>:<item>}:stock   units left to reserve
 *   fs:{<len>:<item>}:res     hash  buyer → reservation expiry (ms)
 *   fs:{<len>:<item>}:exp     zset  buyer by expiry (for the sweeper)
 *   fs:{<len>:<item>}:buyers  set   buyers whose order is confirmed
 */

declare module "ioredis" {
  interface RedisCommander<Context> {
    fpSaleReserve(...args: [meta: string, stock: string, res: string, exp: string, buyers: string, buyer: string, ttlMs: number]): Result<[number, number], Context>;
    fpSaleFinish(...args: [stock: string, res: string, exp: string, buyers: string, buyer: string, mode: "confirm" | "release"]): Result<number, Context>;
    fpSaleSweep(...args: [stock: string, res: string, exp: string, limit: number]): Result<number, Context>;
    fpSaleWarm(...args: (string | number)[]): Result<number, Context>;
    fpServerTime(key: string): Result<[string, string], Context>;
    fpSaleReconcile(...args: [stock: string, res: string, leftInPostgres: number, mode: "check" | "repair"]): Result<[number, number, number], Context>;
  }
}

/** The scripts are defined on every client when it is made (infra/lua.ts, `defineLuaCommands`). */
const scripts = (redis: RedisClient): RedisClient => redis;

/** The keys of one item (the client's prefix is added by ioredis). */
export function itemKeys(itemId: string) {
  const key = (field: string) => taggedKey("fs", [itemId], field);
  return { meta: key("meta"), stock: key("stock"), res: key("res"), exp: key("exp"), buyers: key("buyers") };
}

export type ReserveAnswer =
  | { kind: "reserved"; left: number }
  | { kind: "soldOut" }
  | { kind: "notWarmed" }
  | { kind: "paused" }
  | { kind: "notStarted"; msToStart: number }
  | { kind: "ended" }
  | { kind: "boughtAlready" }
  | { kind: "held"; msLeft: number };

/** One Lua call: window, pause, one per buyer, stock > 0 → a unit reserved for `ttlMs`. */
export async function reserveUnit(redis: RedisClient, itemId: string, buyer: string, ttlMs: number): Promise<ReserveAnswer> {
  const k = itemKeys(itemId);
  const [code, n] = await scripts(redis).fpSaleReserve(k.meta, k.stock, k.res, k.exp, k.buyers, buyer, ttlMs);
  switch (code) {
    case 1:
      return { kind: "reserved", left: n };
    case 0:
      return { kind: "soldOut" };
    case -1:
      return { kind: "notWarmed" };
    case -2:
      return { kind: "paused" };
    case -3:
      return { kind: "notStarted", msToStart: n };
    case -4:
      return { kind: "ended" };
    case -5:
      return { kind: "boughtAlready" };
    default:
      return { kind: "held", msLeft: n };
  }
}

/** The order is committed: the buyer joins the buyers, the reservation ends. True if it was still held. */
export async function confirmUnit(redis: RedisClient, itemId: string, buyer: string): Promise<boolean> {
  const k = itemKeys(itemId);
  return (await scripts(redis).fpSaleFinish(k.stock, k.res, k.exp, k.buyers, buyer, "confirm")) === 1;
}

/** The purchase did not happen: the unit goes back, if the reservation was still held. */
export async function releaseUnit(redis: RedisClient, itemId: string, buyer: string): Promise<boolean> {
  const k = itemKeys(itemId);
  return (await scripts(redis).fpSaleFinish(k.stock, k.res, k.exp, k.buyers, buyer, "release")) === 1;
}

/** Returns the units of expired reservations to stock; how many. */
export async function sweepExpired(redis: RedisClient, itemId: string, limit = 1000): Promise<number> {
  const k = itemKeys(itemId);
  return scripts(redis).fpSaleSweep(k.stock, k.res, k.exp, limit);
}

export type WarmItem = {
  itemId: string;
  activityId: string;
  startsAt: Date;
  endsAt: Date;
  paused: boolean;
  pointsPrice: bigint;
  creditTypeId: string;
  /** stock − sold in Postgres. */
  left: number;
};

/** How long an item's keys outlive its sale. */
export const KEYS_OUTLIVE_SALE_MS = 86_400_000;

/** When an item's keys expire (ms). */
export const keysExpireAt = (endsAt: Date): number => endsAt.getTime() + KEYS_OUTLIVE_SALE_MS;

/** Writes an item's window and price; creates its counter only if it is missing. True if it did (then load its buyers). */
export async function warmItem(redis: RedisClient, item: WarmItem): Promise<boolean> {
  const k = itemKeys(item.itemId);
  const created = await scripts(redis).fpSaleWarm(
    k.meta,
    k.stock,
    k.buyers,
    k.res,
    k.exp,
    item.activityId,
    item.startsAt.getTime(),
    item.endsAt.getTime(),
    item.paused ? 1 : 0,
    item.pointsPrice.toString(),
    item.creditTypeId,
    Math.max(0, item.left),
    keysExpireAt(item.endsAt),
  );
  return created === 1;
}

export type StockCheck = { redis: number | null; expected: number; live: number };

/** Redis' count against Postgres' (less live reservations); with `repair`, sets it right. */
export async function reconcileStock(redis: RedisClient, itemId: string, leftInPostgres: number, mode: "check" | "repair"): Promise<StockCheck> {
  const k = itemKeys(itemId);
  const [current, expected, live] = await scripts(redis).fpSaleReconcile(k.stock, k.res, leftInPostgres, mode);
  return { redis: current < 0 ? null : current, expected, live };
}

/** What the purchase path caches of an item: its meta, units left and (once sold out) its buyers. */
export type ItemSnapshot = {
  activityId: string;
  startsAt: number;
  endsAt: number;
  paused: boolean;
  price: number;
  creditTypeId: string;
  stock: number;
  buyers: string[] | null;
  /**
   * The Redis server's clock minus this process's, as read with the item: the
   * gate judges a sale's window by Redis' clock, and a process that answers
   * from its cache must judge it the same way, whatever its own clock says.
   */
  clockOffsetMs: number;
};

/** One pipelined read of an item's meta and stock (and buyers, when asked); null when it is not warmed. */
export async function readItem(redis: RedisClient, itemId: string, withBuyers: boolean): Promise<ItemSnapshot | null> {
  const k = itemKeys(itemId);
  const asked = Date.now();
  const [meta, stock, buyers, [seconds, micros]] = await Promise.all([
    redis.hgetall(k.meta),
    redis.get(k.stock),
    withBuyers ? redis.smembers(k.buyers) : Promise.resolve(null),
    // The clock of the node that holds the item (on a cluster a bare TIME goes to any node).
    scripts(redis).fpServerTime(k.meta),
  ]);
  if (!meta.activityId || stock === null) return null;
  const redisNow = Number(seconds) * 1000 + Math.floor(Number(micros) / 1000);
  return {
    activityId: meta.activityId,
    startsAt: Number(meta.startsAt),
    endsAt: Number(meta.endsAt),
    paused: meta.paused === "1",
    price: Number(meta.price),
    creditTypeId: meta.creditTypeId ?? "",
    stock: Number(stock),
    buyers,
    clockOffsetMs: redisNow - Math.round((asked + Date.now()) / 2),
  };
}

/** Units reserved and not yet confirmed or swept. */
export async function liveReservations(redis: RedisClient, itemId: string): Promise<number> {
  return redis.hlen(itemKeys(itemId).res);
}
