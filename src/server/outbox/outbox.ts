/**
 * Events of the transactional outbox. Each is written in the transaction of
 * the change it announces (see writeEntry in src/server/credit/ledger.ts) and
 * published by the worker's relay (./relay.ts).
 */
export type OutboxEventType = "credit.granted" | "credit.deducted" | "credit.refunded" | "flashSale.ordered";
