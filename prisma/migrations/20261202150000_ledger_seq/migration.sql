-- The balance engine writes the ledger rows of a batch with one created_at;
-- seq records the order in which they applied, and the ledger pages by it.
DROP INDEX "ledger_entries_account_id_created_at_id_idx";

ALTER TABLE "ledger_entries" ADD COLUMN "seq" BIGSERIAL NOT NULL;

CREATE INDEX "ledger_entries_account_id_seq_idx" ON "ledger_entries"("account_id", "seq" DESC);
