import type { Deps } from "~/server/infra/deps";
import { gaugeOf } from "~/server/infra/metrics";
import { readItem, type ItemSnapshot } from "./inventory";
import { warmActivity } from "./warm-up";

/**
 * What one process knows of the flash-sale items it sells, so the purchase
 * path reads no database and, once an item is gone, not even Redis: each
 * item's window, price and units left, refreshed from Redis at most every
 * `REFRESH_MS`. An item seen sold out carries a sold-out flag and its buyers
 * (so a buyer's repeat still finds their order); the flag clears when a
 * refresh finds units again (a reservation expired, a purchase was undone).
 */

export const REFRESH_MS = 1_000;

export type CachedItem = ItemSnapshot & {
  itemId: string;
  soldOut: boolean;
  /** Buyers known to this process (loaded from Redis while sold out, plus the ones it confirmed). */
  knownBuyers: Set<string>;
  loadedAt: number;
};

export class ItemCache {
  private readonly items = new Map<string, CachedItem>();
  private readonly loading = new Map<string, Promise<CachedItem | null>>();

  constructor(private readonly deps: Deps) {}

  /**
   * The item, from memory while fresh; else from Redis (one pipelined read);
   * an item Redis does not have is warmed from Postgres first (rare: a sale
   * the worker has not warmed yet, or a Redis that restarted empty). Null for
   * an item that does not exist. A Redis that fails leaves the last copy in use.
   */
  async get(itemId: string): Promise<CachedItem | null> {
    const have = this.items.get(itemId);
    if (have && Date.now() - have.loadedAt < REFRESH_MS) return have;
    let pending = this.loading.get(itemId);
    if (!pending) {
      pending = this.load(itemId, have).finally(() => this.loading.delete(itemId));
      this.loading.set(itemId, pending);
    }
    return pending;
  }

  private async load(itemId: string, have: CachedItem | undefined): Promise<CachedItem | null> {
    try {
      let snap = await readItem(this.deps.redis, itemId, have?.soldOut ?? false);
      if (!snap) {
        const exists = await this.deps.db.flashSaleItem.findUnique({ where: { id: itemId }, select: { activityId: true } });
        if (!exists) return null;
        await warmActivity(this.deps, exists.activityId);
        snap = await readItem(this.deps.redis, itemId, false);
        if (!snap) return null;
      }
      const soldOut = snap.stock <= 0 && (have?.soldOut ?? false);
      const item: CachedItem = {
        ...snap,
        itemId,
        soldOut,
        knownBuyers: new Set([...(soldOut ? (snap.buyers ?? []) : []), ...(have?.knownBuyers ?? [])]),
        loadedAt: Date.now(),
      };
      this.items.set(itemId, item);
      gaugeOf(this.deps.metrics.registry, "fp_flash_sale_stock", "Units left to reserve per item (Redis, as this process last read it)", ["item"] as const).set(
        { item: itemId },
        Math.max(0, snap.stock),
      );
      return item;
    } catch (err) {
      if (have) return have;
      throw err;
    }
  }

  /**
   * The gate said sold out: the next buyers are answered from memory at once.
   * The buyers are loaded (once) so their repeats still find their orders;
   * until they are in, a buyer this process does not know goes to the gate.
   */
  markSoldOut(itemId: string): void {
    const have = this.items.get(itemId);
    if (!have || have.soldOut) return;
    have.soldOut = true;
    void readItem(this.deps.redis, itemId, true)
      .then((snap) => {
        for (const b of snap?.buyers ?? []) have.knownBuyers.add(b);
      })
      .catch(() => undefined);
  }

  addBuyer(itemId: string, buyer: string): void {
    this.items.get(itemId)?.knownBuyers.add(buyer);
  }

  /** Forget everything (tests). */
  clear(): void {
    this.items.clear();
  }
}

const caches = new WeakMap<Deps["redis"], ItemCache>();

/** The cache of this process (one per Redis client). */
export function itemCache(deps: Deps): ItemCache {
  let cache = caches.get(deps.redis);
  if (!cache) {
    cache = new ItemCache(deps);
    caches.set(deps.redis, cache);
  }
  return cache;
}
