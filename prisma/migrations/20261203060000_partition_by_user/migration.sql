-- Scale-out, part 3: the per-user tables become HASH-partitioned by user_id
-- (docs/architecture.md, "Partitioning"), so every hot query touches one
-- partition and the schema already obeys Citus' rules (the distribution
-- column in every primary and unique key; foreign keys between these tables
-- include it).
--
-- Partition count: 8, or the custom setting flashpoints.partitions when it is
-- set for the migrating session, e.g.
--   PGOPTIONS='-c flashpoints.partitions=16' npm run db:deploy
--   ALTER DATABASE flashpoints SET flashpoints.partitions = 16;  -- then deploy
-- It is fixed once the migration has run (changing it means re-partitioning).
--
-- Existing rows are carried over: each table is renamed away, a partitioned
-- copy of its columns, defaults, NOT NULLs and CHECKs is created under its
-- name, the rows are copied, the old table dropped, and the keys, indexes and
-- foreign keys are created again with the names they had (keys now including
-- user_id).

ALTER TABLE "ledger_entries" RENAME TO "ledger_entries_unpartitioned";
ALTER TABLE "flash_sale_orders" RENAME TO "flash_sale_orders_unpartitioned";
ALTER TABLE "refunds" RENAME TO "refunds_unpartitioned";
ALTER TABLE "operations" RENAME TO "operations_unpartitioned";
ALTER TABLE "accounts" RENAME TO "accounts_unpartitioned";

CREATE TABLE "accounts" (LIKE "accounts_unpartitioned" INCLUDING DEFAULTS INCLUDING CONSTRAINTS) PARTITION BY HASH ("user_id");
CREATE TABLE "ledger_entries" (LIKE "ledger_entries_unpartitioned" INCLUDING DEFAULTS INCLUDING CONSTRAINTS) PARTITION BY HASH ("user_id");
CREATE TABLE "operations" (LIKE "operations_unpartitioned" INCLUDING DEFAULTS INCLUDING CONSTRAINTS) PARTITION BY HASH ("user_id");
CREATE TABLE "refunds" (LIKE "refunds_unpartitioned" INCLUDING DEFAULTS INCLUDING CONSTRAINTS) PARTITION BY HASH ("user_id");
CREATE TABLE "flash_sale_orders" (LIKE "flash_sale_orders_unpartitioned" INCLUDING DEFAULTS INCLUDING CONSTRAINTS) PARTITION BY HASH ("user_id");

-- Every operation the service records has a user (OperationStart.userId);
-- only rows written by hand or by an older version may lack one. A partition
-- key (and a Citus distribution column) is never NULL: such operations get
-- user_id '' — no real user id is empty (the API's ZId needs one character).
ALTER TABLE "operations" ALTER COLUMN "user_id" SET DEFAULT '';
ALTER TABLE "operations" ALTER COLUMN "user_id" SET NOT NULL;

DO $$
DECLARE
  setting text := coalesce(nullif(current_setting('flashpoints.partitions', true), ''), '8');
  n int;
  t text;
BEGIN
  IF setting !~ '^[0-9]{1,4}$' OR setting::int NOT BETWEEN 1 AND 1024 THEN
    RAISE EXCEPTION 'flashpoints.partitions must be a whole number from 1 to 1024, not %', setting;
  END IF;
  n := setting::int;
  FOREACH t IN ARRAY ARRAY['accounts', 'ledger_entries', 'operations', 'refunds', 'flash_sale_orders'] LOOP
    FOR r IN 0 .. n - 1 LOOP
      EXECUTE format('CREATE TABLE %I PARTITION OF %I FOR VALUES WITH (MODULUS %s, REMAINDER %s)', t || '_p' || r, t, n, r);
    END LOOP;
  END LOOP;
END
$$;

INSERT INTO "accounts" SELECT * FROM "accounts_unpartitioned";
INSERT INTO "operations" (id, type, status, user_id, credit_type_id, principal, request_id, business_code, business_id,
                          input, result, error_code, error_message, started_at, finished_at)
  SELECT id, type, status, coalesce(user_id, ''), credit_type_id, principal, request_id, business_code, business_id,
         input, result, error_code, error_message, started_at, finished_at
  FROM "operations_unpartitioned";
INSERT INTO "ledger_entries" SELECT * FROM "ledger_entries_unpartitioned";
INSERT INTO "refunds" SELECT * FROM "refunds_unpartitioned";
INSERT INTO "flash_sale_orders" SELECT * FROM "flash_sale_orders_unpartitioned";

-- seq keeps counting from where it was: the new column owns the same sequence
-- (else dropping the old table would drop it).
ALTER SEQUENCE "ledger_entries_seq_seq" OWNED BY "ledger_entries"."seq";

DROP TABLE "ledger_entries_unpartitioned";
DROP TABLE "flash_sale_orders_unpartitioned";
DROP TABLE "refunds_unpartitioned";
DROP TABLE "operations_unpartitioned";
DROP TABLE "accounts_unpartitioned";

-- Keys: (id, user_id), so a lookup by id alone (operation.status, refund.retry)
-- still has an index in every partition, and one with the user uses the same index.
ALTER TABLE "accounts" ADD CONSTRAINT "accounts_pkey" PRIMARY KEY ("id", "user_id");
ALTER TABLE "ledger_entries" ADD CONSTRAINT "ledger_entries_pkey" PRIMARY KEY ("id", "user_id");
ALTER TABLE "operations" ADD CONSTRAINT "operations_pkey" PRIMARY KEY ("id", "user_id");
ALTER TABLE "refunds" ADD CONSTRAINT "refunds_pkey" PRIMARY KEY ("id", "user_id");
ALTER TABLE "flash_sale_orders" ADD CONSTRAINT "flash_sale_orders_pkey" PRIMARY KEY ("id", "user_id");

CREATE UNIQUE INDEX "accounts_user_id_credit_type_id_key" ON "accounts"("user_id", "credit_type_id");
CREATE INDEX "ledger_entries_account_id_seq_idx" ON "ledger_entries"("account_id", "seq" DESC);
CREATE INDEX "ledger_entries_operation_id_idx" ON "ledger_entries"("operation_id");
CREATE INDEX "operations_request_id_idx" ON "operations"("request_id");
CREATE INDEX "operations_business_code_business_id_idx" ON "operations"("business_code", "business_id");
CREATE INDEX "operations_status_started_at_idx" ON "operations"("status", "started_at");
CREATE INDEX "refunds_status_next_attempt_at_idx" ON "refunds"("status", "next_attempt_at");
CREATE INDEX "refunds_user_id_idx" ON "refunds"("user_id");
CREATE INDEX "refunds_original_transaction_id_idx" ON "refunds"("original_transaction_id");
CREATE UNIQUE INDEX "flash_sale_orders_user_id_item_id_key" ON "flash_sale_orders"("user_id", "item_id");
CREATE UNIQUE INDEX "flash_sale_orders_transaction_id_user_id_key" ON "flash_sale_orders"("transaction_id", "user_id");
CREATE INDEX "flash_sale_orders_activity_id_idx" ON "flash_sale_orders"("activity_id");

ALTER TABLE "accounts" ADD CONSTRAINT "accounts_credit_type_id_fkey" FOREIGN KEY ("credit_type_id") REFERENCES "credit_types"("id") ON DELETE RESTRICT ON UPDATE CASCADE;
ALTER TABLE "ledger_entries" ADD CONSTRAINT "ledger_entries_account_id_user_id_fkey" FOREIGN KEY ("account_id", "user_id") REFERENCES "accounts"("id", "user_id") ON DELETE RESTRICT ON UPDATE CASCADE;
-- Only operation_id is set NULL should an operation go (PostgreSQL 15's column list): user_id stays.
ALTER TABLE "ledger_entries" ADD CONSTRAINT "ledger_entries_operation_id_user_id_fkey" FOREIGN KEY ("operation_id", "user_id") REFERENCES "operations"("id", "user_id") ON DELETE SET NULL ("operation_id") ON UPDATE CASCADE;

-- The global claim of each business key (docs/api.md, "Idempotency"): a partitioned
-- unique index must include user_id, so (business_code, business_id) is kept
-- unique here, in one small-rowed table the balance engine writes in the same
-- statement as the ledger row. transaction_id (the ledger row's id) is unique
-- here too, which makes ledger ids and the orders they pay for unique
-- globally, and resolves a transaction id to its user with one index lookup.
CREATE TABLE "business_keys" (
    "business_code" VARCHAR(64) NOT NULL,
    "business_id" VARCHAR(128) NOT NULL,
    "user_id" VARCHAR(64) NOT NULL,
    "credit_type_id" VARCHAR(64) NOT NULL,
    "type" "LedgerType" NOT NULL,
    "amount" BIGINT NOT NULL,
    "transaction_id" UUID NOT NULL,
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "business_keys_pkey" PRIMARY KEY ("business_code", "business_id")
);
CREATE UNIQUE INDEX "business_keys_transaction_id_key" ON "business_keys"("transaction_id");
ALTER TABLE "business_keys" ADD CONSTRAINT "business_keys_amount_positive" CHECK ("amount" > 0);

INSERT INTO "business_keys" (business_code, business_id, user_id, credit_type_id, type, amount, transaction_id, created_at)
  SELECT business_code, business_id, user_id, credit_type_id, type, amount, id, created_at FROM "ledger_entries";
