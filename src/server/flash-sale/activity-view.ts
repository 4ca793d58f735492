import type { Prisma } from "~/server/infra/db";

/**
 * An activity as the API shows it, and its status from the clock; shared by
 * the reads (activities.ts) and the warm-up that caches it in Redis.
 */

/** What `flashSale.activity` answers (docs/api.md). */
export type ActivityStatus = "SCHEDULED" | "ACTIVE" | "ENDED" | "PAUSED";

export type ItemView = {
  id: string;
  name: string;
  creditTypeId: string;
  pointsPrice: number;
  stock: number;
  sold: number;
  /** Units not sold yet (stock − sold, as Postgres has it). */
  available: number;
};

export type ActivityView = {
  id: string;
  name: string;
  startsAt: string;
  endsAt: string;
  status: ActivityStatus;
  pausedReason: string | null;
  items: ItemView[];
};

export const activitySelect = {
  id: true,
  name: true,
  startsAt: true,
  endsAt: true,
  paused: true,
  pausedReason: true,
  createdAt: true,
  items: {
    select: { id: true, name: true, creditTypeId: true, pointsPrice: true, stock: true, sold: true },
    orderBy: { createdAt: "asc" },
  },
} as const satisfies Prisma.FlashSaleActivitySelect;

type ActivityRow = Prisma.FlashSaleActivityGetPayload<{ select: typeof activitySelect }>;

/** From the clock: ENDED after the end (paused or not), PAUSED, SCHEDULED before the start, else ACTIVE. */
export function activityStatus(a: { startsAt: Date | number; endsAt: Date | number; paused: boolean }, nowMs: number): ActivityStatus {
  const starts = typeof a.startsAt === "number" ? a.startsAt : a.startsAt.getTime();
  const ends = typeof a.endsAt === "number" ? a.endsAt : a.endsAt.getTime();
  if (nowMs >= ends) return "ENDED";
  if (a.paused) return "PAUSED";
  return nowMs < starts ? "SCHEDULED" : "ACTIVE";
}

export function toActivityView(row: ActivityRow, nowMs: number): ActivityView {
  return {
    id: row.id,
    name: row.name,
    startsAt: row.startsAt.toISOString(),
    endsAt: row.endsAt.toISOString(),
    status: activityStatus(row, nowMs),
    pausedReason: row.paused ? row.pausedReason : null,
    items: row.items.map((i) => ({
      id: i.id,
      name: i.name,
      creditTypeId: i.creditTypeId,
      pointsPrice: Number(i.pointsPrice),
      stock: i.stock,
      sold: i.sold,
      available: i.stock - i.sold,
    })),
  };
}
