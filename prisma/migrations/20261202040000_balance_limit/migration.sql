-- Balances stay exact on the wire: JSON numbers carry integers exactly up to
-- 2^53 - 1, so no balance (and no balance after a ledger entry) may pass it.
ALTER TABLE "accounts" ADD CONSTRAINT "accounts_balance_max" CHECK ("balance" <= 9007199254740991);
ALTER TABLE "ledger_entries" ADD CONSTRAINT "ledger_entries_balance_after_max" CHECK ("balance_after" <= 9007199254740991);
