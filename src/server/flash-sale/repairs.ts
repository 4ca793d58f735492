import type { Deps } from "~/server/infra/deps";

/**
 * The reconciler's reports (`warm-up.ts`, `report`): each time Redis was set
 * right from Postgres — a counter re-warmed after Redis lost it, or a stock
 * count that had drifted — as recorded in the audit log, newest first, with
 * the item and sale they concern.
 */
export type RepairReport = {
  id: string;
  kind: "rewarmed" | "stock";
  itemId: string;
  itemName: string | null;
  activityId: string | null;
  activityName: string | null;
  /** The Redis counter before the repair (null: it was missing). */
  before: number | null;
  after: number | null;
  liveReservations: number | null;
  at: string;
};

const ACTIONS = { "flashSale.rewarm": "rewarmed", "flashSale.reconcile": "stock" } as const;

type Row = {
  id: bigint;
  action: keyof typeof ACTIONS;
  target: string;
  before: unknown;
  after: unknown;
  created_at: Date;
  item_name: string | null;
  activity_id: string | null;
  activity_name: string | null;
};

const numberAt = (value: unknown, key: string): number | null => {
  const v = value && typeof value === "object" ? (value as Record<string, unknown>)[key] : undefined;
  return typeof v === "number" ? v : null;
};

export async function listRepairs(
  deps: Pick<Deps, "db">,
  /** `cursor`: an audit id this function returned (the router checks its form). */
  input: { activityId?: string | undefined; limit: number; cursor?: string | undefined },
): Promise<{ items: RepairReport[]; nextCursor: string | null }> {
  const cursor = input.cursor === undefined ? null : BigInt(input.cursor);
  const rows = await deps.db.$queryRaw<Row[]>`
    SELECT a.id, a.action, a.target, a.before, a.after, a.created_at,
           i.name AS item_name, s.id AS activity_id, s.name AS activity_name
    FROM audit_log a
    LEFT JOIN flash_sale_items i ON a.target = 'item:' || i.id
    LEFT JOIN flash_sale_activities s ON s.id = i.activity_id
    WHERE a.action IN ('flashSale.rewarm', 'flashSale.reconcile')
      AND (${cursor}::bigint IS NULL OR a.id < ${cursor}::bigint)
      AND (${input.activityId ?? null}::text IS NULL OR i.activity_id = ${input.activityId ?? null}::text)
    ORDER BY a.id DESC
    LIMIT ${input.limit + 1}`;
  const page = rows.slice(0, input.limit);
  return {
    items: page.map((r) => ({
      id: r.id.toString(),
      kind: ACTIONS[r.action],
      itemId: r.target.replace(/^item:/, ""),
      itemName: r.item_name,
      activityId: r.activity_id,
      activityName: r.activity_name,
      before: numberAt(r.before, "redisStock"),
      after: numberAt(r.after, "redisStock"),
      liveReservations: numberAt(r.after, "liveReservations"),
      at: r.created_at.toISOString(),
    })),
    nextCursor: rows.length > input.limit ? (page.at(-1)?.id.toString() ?? null) : null,
  };
}
