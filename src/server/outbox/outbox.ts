/**
 * Events of the transactional outbox. Each is written in the transaction of
 * the change it announces (see writeBatch in src/server/credit/batch-statements.ts) and
 * published by the worker's relay (./relay.ts).
 */
export type OutboxEventType = "credit.granted" | "credit.deducted" | "credit.refunded" | "flashSale.ordered";
