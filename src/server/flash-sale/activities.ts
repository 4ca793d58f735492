import type { Deps } from "~/server/infra/deps";
import type { Prisma } from "~/server/infra/db";
import { activitySelect, activityStatus, toActivityView, type ActivityStatus, type ActivityView } from "./activity-view";
import { AppError } from "~/server/infra/app-error";
import { writeAudit, type AuditEntry } from "~/server/audit/audit-log";
import { isSwitchOn } from "~/server/resilience/switches";
import { itemKeys } from "./inventory";
import { activityViewKey, warmActivity } from "./warm-up";

export { activityStatus, type ActivityStatus, type ActivityView, type ItemView } from "./activity-view";

export type NewActivity = {
  /** Chosen by the caller (the demo seed); the API lets the database choose. */
  id?: string;
  name: string;
  startsAt: Date;
  endsAt: Date;
  items: { id?: string; name: string; creditTypeId: string; pointsPrice: number; stock: number }[];
  /** Why, for the audit log. */
  reason?: string | undefined;
};

type Caller = { actor: AuditEntry["actor"]; requestId?: string | null };

/**
 * Creates an activity and its items, audited in the same transaction, and
 * warms it into Redis at once when it starts within the warm-up lead (an
 * activity created already running sells right away). Each item's credit
 * type must exist (404 CREDIT_TYPE_NOT_FOUND).
 */
export async function createActivity(deps: Deps, input: NewActivity, caller: Caller): Promise<ActivityView> {
  if (input.endsAt.getTime() <= input.startsAt.getTime()) throw new AppError("VALIDATION", "endsAt must be after startsAt");
  const types = [...new Set(input.items.map((i) => i.creditTypeId))];
  const row = await deps.db.$transaction(async (tx) => {
    const known = await tx.creditType.findMany({ where: { id: { in: types } }, select: { id: true } });
    const missing = types.filter((t) => !known.some((k) => k.id === t));
    if (missing.length > 0) throw new AppError("CREDIT_TYPE_NOT_FOUND", `no credit type ${missing.join(", ")}: create it first (creditType.create)`);
    const created = await tx.flashSaleActivity.create({
      data: {
        ...(input.id ? { id: input.id } : {}),
        name: input.name,
        startsAt: input.startsAt,
        endsAt: input.endsAt,
        items: {
          create: input.items.map((i) => ({
            ...(i.id ? { id: i.id } : {}),
            name: i.name,
            creditTypeId: i.creditTypeId,
            pointsPrice: BigInt(i.pointsPrice),
            stock: i.stock,
          })),
        },
      },
      select: activitySelect,
    });
    await writeAudit(tx, {
      actor: caller.actor,
      action: "flashSale.createActivity",
      target: `activity:${created.id}`,
      reason: input.reason ?? `created "${input.name}"`,
      after: { id: created.id, name: input.name, startsAt: input.startsAt, endsAt: input.endsAt, items: input.items },
      requestId: caller.requestId ?? null,
    });
    return created;
  });
  if (row.startsAt.getTime() - deps.clock.nowMs() <= deps.env.FLASH_SALE_WARMUP_LEAD_MS) {
    // The worker would warm it within a second too; doing it here makes it purchasable now.
    await warmActivity(deps, row.id).catch((err: unknown) => deps.log.warn({ err, activityId: row.id }, "could not warm the new activity; the worker will"));
  }
  return toActivityView(row, deps.clock.nowMs());
}

/**
 * The activity as Postgres has it — or, while the `flashSaleCacheOnly`
 * switch is on, as the worker last wrote it to Redis, with each item's
 * `available` from the live Redis counter: no Postgres read at all (503
 * DEGRADED for an activity not in the cache).
 */
export async function getActivity(deps: Pick<Deps, "db" | "clock" | "redis" | "settings">, activityId: string): Promise<ActivityView> {
  if (await isSwitchOn(deps, "flashSaleCacheOnly")) return cachedActivity(deps, activityId);
  const row = await deps.db.flashSaleActivity.findUnique({ where: { id: activityId }, select: activitySelect });
  if (!row) throw new AppError("ACTIVITY_NOT_FOUND", `no activity ${activityId}`);
  return toActivityView(row, deps.clock.nowMs());
}

async function cachedActivity(deps: Pick<Deps, "clock" | "redis">, activityId: string): Promise<ActivityView> {
  const text = await deps.redis.get(activityViewKey(activityId));
  if (!text) throw new AppError("DEGRADED", `activity ${activityId} is not in the cache, and flashSaleCacheOnly keeps Postgres out of reads; retry later or turn the switch off`);
  const view = JSON.parse(text) as ActivityView;
  const counters = await Promise.all(view.items.map((i) => deps.redis.get(itemKeys(i.id).stock)));
  const now = deps.clock.nowMs();
  return {
    ...view,
    status: activityStatus({ startsAt: new Date(view.startsAt), endsAt: new Date(view.endsAt), paused: view.status === "PAUSED" }, now),
    items: view.items.map((i, n) => {
      const left = counters[n];
      return left === null || left === undefined ? i : { ...i, available: Math.max(0, Number(left)) };
    }),
  };
}

/** Newest first (by start), optionally of one status; keyset pages on (starts_at, id). */
export async function listActivities(
  deps: Pick<Deps, "db" | "clock">,
  input: { status?: ActivityStatus | undefined; limit: number; cursor?: string | undefined },
): Promise<{ items: ActivityView[]; nextCursor: string | null }> {
  const now = deps.clock.now();
  const after = input.cursor ? decodeCursor(input.cursor) : null;
  const byStatus: Prisma.FlashSaleActivityWhereInput =
    input.status === "ENDED"
      ? { endsAt: { lte: now } }
      : input.status === "PAUSED"
        ? { endsAt: { gt: now }, paused: true }
        : input.status === "SCHEDULED"
          ? { endsAt: { gt: now }, paused: false, startsAt: { gt: now } }
          : input.status === "ACTIVE"
            ? { endsAt: { gt: now }, paused: false, startsAt: { lte: now } }
            : {};
  const rows = await deps.db.flashSaleActivity.findMany({
    where: {
      ...byStatus,
      ...(after ? { OR: [{ startsAt: { lt: after.startsAt } }, { startsAt: after.startsAt, id: { lt: after.id } }] } : {}),
    },
    orderBy: [{ startsAt: "desc" }, { id: "desc" }],
    take: input.limit + 1,
    select: activitySelect,
  });
  const page = rows.slice(0, input.limit);
  const last = page[page.length - 1];
  return {
    items: page.map((r) => toActivityView(r, now.getTime())),
    nextCursor: rows.length > input.limit && last ? Buffer.from(`${last.startsAt.toISOString()}|${last.id}`).toString("base64url") : null,
  };
}

function decodeCursor(cursor: string): { startsAt: Date; id: string } {
  const text = Buffer.from(cursor, "base64url").toString("utf8");
  const bar = text.indexOf("|");
  const startsAt = new Date(text.slice(0, bar));
  const id = text.slice(bar + 1);
  if (bar < 0 || !id || Number.isNaN(startsAt.getTime())) throw new AppError("VALIDATION", "cursor is not one this service returned");
  return { startsAt, id };
}

/**
 * Pauses or resumes an activity (an operator, with a reason), audited in the
 * same transaction; Redis learns it at once, so the gate refuses (or admits)
 * the next reservation. Pausing a paused activity changes nothing.
 */
export async function setActivityPaused(
  deps: Deps,
  input: { activityId: string; paused: boolean; reason: string },
  caller: Caller,
): Promise<ActivityView> {
  const row = await deps.db.$transaction(async (tx) => {
    const [before] = await tx.$queryRaw<{ paused: boolean }[]>`
      SELECT paused FROM flash_sale_activities WHERE id = ${input.activityId} FOR UPDATE`;
    if (!before) throw new AppError("ACTIVITY_NOT_FOUND", `no activity ${input.activityId}`);
    const updated = await tx.flashSaleActivity.update({
      where: { id: input.activityId },
      data: { paused: input.paused, pausedReason: input.paused ? input.reason : null, version: { increment: 1 }, updatedAt: deps.clock.now() },
      select: activitySelect,
    });
    if (before.paused !== input.paused) {
      await writeAudit(tx, {
        actor: caller.actor,
        action: input.paused ? "flashSale.pause" : "flashSale.resume",
        target: `activity:${input.activityId}`,
        reason: input.reason,
        before: { paused: before.paused },
        after: { paused: input.paused },
        requestId: caller.requestId ?? null,
      });
    }
    return updated;
  });
  await warmActivity(deps, input.activityId).catch((err: unknown) =>
    deps.log.warn({ err, activityId: input.activityId }, "could not tell Redis about the pause; the worker will within a second"),
  );
  return toActivityView(row, deps.clock.nowMs());
}

/** An item's units as the Redis gate counts them right now. */
export type LiveStock = { itemId: string; left: number | null; reserved: number };

/**
 * What the gate holds for each item of an activity: units left to reserve
 * and reservations not yet confirmed (null `left`: not loaded into Redis).
 */
export async function liveStock(deps: Pick<Deps, "db" | "redis">, activityId: string): Promise<LiveStock[]> {
  const items = await deps.db.flashSaleItem.findMany({ where: { activityId }, select: { id: true }, orderBy: { createdAt: "asc" } });
  if (items.length === 0 && !(await deps.db.flashSaleActivity.findUnique({ where: { id: activityId }, select: { id: true } }))) {
    throw new AppError("ACTIVITY_NOT_FOUND", `no activity ${activityId}`);
  }
  return Promise.all(
    items.map(async ({ id }) => {
      const k = itemKeys(id);
      const [left, reserved] = await Promise.all([deps.redis.get(k.stock), deps.redis.hlen(k.res)]);
      return { itemId: id, left: left === null ? null : Number(left), reserved };
    }),
  );
}
