-- A debit may be given back in parts (credit.refund): several refunds per
-- debit, their total kept within the debit by the debit's own row.
DROP INDEX "refunds_original_transaction_id_key";
CREATE INDEX "refunds_original_transaction_id_idx" ON "refunds"("original_transaction_id");

ALTER TABLE "ledger_entries" ADD COLUMN "refunded_amount" BIGINT NOT NULL DEFAULT 0;
ALTER TABLE "ledger_entries" ADD CONSTRAINT "ledger_entries_refunded_within_amount"
  CHECK ("refunded_amount" >= 0 AND "refunded_amount" <= "amount" AND ("type" = 'DEBIT' OR "refunded_amount" = 0));
