import type { Deps } from "~/server/infra/deps";
import { readTraffic, type ProcedureTotals, type TrafficPoint } from "~/server/infra/traffic-stats";
import { listCircuits } from "~/server/resilience/circuit-breaker";
import { refundQueueState, type RefundQueueState } from "~/server/refund/refund-metrics";
import { listActivities, liveStock } from "~/server/flash-sale/activities";

/** What the dashboard's overview shows: the whole deployment over the last 15 minutes, and what stands now. */
export type Overview = {
  traffic: TrafficPoint[];
  procedures: ProcedureTotals[];
  circuits: { name: string; state: string; forced: boolean }[];
  refunds: RefundQueueState | null;
  sales: { id: string; name: string; items: { id: string; name: string; stock: number; sold: number; left: number | null; reserved: number }[] }[];
  at: string;
};

/** Each part is read on its own: a dependency that fails leaves its part empty, not the page. */
export async function readOverview(deps: Deps): Promise<Overview> {
  const [traffic, circuits, refunds, sales] = await Promise.all([
    readTraffic(deps).catch(() => ({ points: [], procedures: [] })),
    listCircuits(deps).catch(() => []),
    refundQueueState(deps).catch(() => null),
    listActivities(deps, { status: "ACTIVE", limit: 10 })
      .then((page) =>
        Promise.all(
          page.items.map(async (a) => {
            const live = await liveStock(deps, a.id).catch(() => []);
            return {
              id: a.id,
              name: a.name,
              items: a.items.map((i) => {
                const l = live.find((x) => x.itemId === i.id);
                return { id: i.id, name: i.name, stock: i.stock, sold: i.sold, left: l?.left ?? null, reserved: l?.reserved ?? 0 };
              }),
            };
          }),
        ),
      )
      .catch(() => []),
  ]);
  return {
    traffic: traffic.points,
    procedures: traffic.procedures,
    circuits: circuits.map((c) => ({ name: c.name, state: c.state, forced: c.forced })),
    refunds,
    sales,
    at: deps.clock.now().toISOString(),
  };
}
