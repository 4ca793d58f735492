import type { Tx } from "~/server/infra/db";
import { toJson } from "~/server/operations/operation-log";

export type OutboxEventType = "credit.granted" | "credit.deducted" | "credit.refunded" | "flashSale.ordered";

/** Queues an event in the transaction of the change it announces; the worker publishes it. */
export async function enqueueEvent(
  tx: Tx,
  event: { type: OutboxEventType; userId: string | null; payload: Record<string, unknown> },
): Promise<void> {
  await tx.outboxEvent.create({ data: { type: event.type, userId: event.userId, payload: toJson(event.payload) } });
}
