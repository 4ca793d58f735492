-- CreateEnum
CREATE TYPE "LedgerType" AS ENUM ('DEBIT', 'CREDIT');

-- CreateEnum
CREATE TYPE "OperationStatus" AS ENUM ('started', 'completed', 'failed', 'skipped');

-- CreateEnum
CREATE TYPE "RefundStatus" AS ENUM ('PENDING', 'RETRYING', 'SUCCEEDED', 'FAILED', 'RESOLVED');

-- CreateEnum
CREATE TYPE "AdminRole" AS ENUM ('viewer', 'operator', 'admin');

-- CreateTable
CREATE TABLE "credit_types" (
    "id" VARCHAR(64) NOT NULL,
    "name" VARCHAR(200) NOT NULL,
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "credit_types_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "accounts" (
    "id" UUID NOT NULL DEFAULT gen_random_uuid(),
    "user_id" VARCHAR(64) NOT NULL,
    "credit_type_id" VARCHAR(64) NOT NULL,
    "balance" BIGINT NOT NULL DEFAULT 0,
    "version" INTEGER NOT NULL DEFAULT 0,
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updated_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "accounts_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "ledger_entries" (
    "id" UUID NOT NULL DEFAULT gen_random_uuid(),
    "account_id" UUID NOT NULL,
    "user_id" VARCHAR(64) NOT NULL,
    "credit_type_id" VARCHAR(64) NOT NULL,
    "type" "LedgerType" NOT NULL,
    "amount" BIGINT NOT NULL,
    "balance_after" BIGINT NOT NULL,
    "business_code" VARCHAR(64) NOT NULL,
    "business_id" VARCHAR(128) NOT NULL,
    "operation_id" UUID,
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "ledger_entries_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "operations" (
    "id" UUID NOT NULL DEFAULT gen_random_uuid(),
    "type" VARCHAR(64) NOT NULL,
    "status" "OperationStatus" NOT NULL DEFAULT 'started',
    "user_id" VARCHAR(64),
    "credit_type_id" VARCHAR(64),
    "principal" VARCHAR(128),
    "request_id" VARCHAR(128),
    "business_code" VARCHAR(64),
    "business_id" VARCHAR(128),
    "input" JSONB NOT NULL,
    "result" JSONB,
    "error_code" VARCHAR(64),
    "error_message" TEXT,
    "started_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "finished_at" TIMESTAMPTZ(3),

    CONSTRAINT "operations_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "request_records" (
    "principal" VARCHAR(128) NOT NULL,
    "request_id" VARCHAR(128) NOT NULL,
    "procedure" VARCHAR(64) NOT NULL,
    "input_hash" VARCHAR(64) NOT NULL,
    "user_id" VARCHAR(64),
    "operation_id" UUID,
    "outcome" VARCHAR(16) NOT NULL,
    "response" JSONB NOT NULL,
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "expires_at" TIMESTAMPTZ(3) NOT NULL,

    CONSTRAINT "request_records_pkey" PRIMARY KEY ("principal","request_id")
);

-- CreateTable
CREATE TABLE "outbox_events" (
    "id" BIGSERIAL NOT NULL,
    "event_id" UUID NOT NULL DEFAULT gen_random_uuid(),
    "type" VARCHAR(64) NOT NULL,
    "user_id" VARCHAR(64),
    "payload" JSONB NOT NULL,
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "sent_at" TIMESTAMPTZ(3),
    "attempts" INTEGER NOT NULL DEFAULT 0,
    "last_error" TEXT,

    CONSTRAINT "outbox_events_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "refunds" (
    "id" UUID NOT NULL DEFAULT gen_random_uuid(),
    "user_id" VARCHAR(64) NOT NULL,
    "credit_type_id" VARCHAR(64) NOT NULL,
    "amount" BIGINT NOT NULL,
    "reason" VARCHAR(200) NOT NULL,
    "original_transaction_id" UUID NOT NULL,
    "status" "RefundStatus" NOT NULL DEFAULT 'PENDING',
    "attempts" INTEGER NOT NULL DEFAULT 0,
    "last_error" TEXT,
    "next_attempt_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "refund_transaction_id" UUID,
    "context" JSONB,
    "version" INTEGER NOT NULL DEFAULT 0,
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updated_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "refunds_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "flash_sale_activities" (
    "id" VARCHAR(64) NOT NULL DEFAULT gen_random_uuid()::text,
    "name" VARCHAR(200) NOT NULL,
    "starts_at" TIMESTAMPTZ(3) NOT NULL,
    "ends_at" TIMESTAMPTZ(3) NOT NULL,
    "paused" BOOLEAN NOT NULL DEFAULT false,
    "paused_reason" TEXT,
    "version" INTEGER NOT NULL DEFAULT 0,
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updated_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "flash_sale_activities_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "flash_sale_items" (
    "id" VARCHAR(64) NOT NULL DEFAULT gen_random_uuid()::text,
    "activity_id" VARCHAR(64) NOT NULL,
    "name" VARCHAR(200) NOT NULL,
    "credit_type_id" VARCHAR(64) NOT NULL,
    "points_price" BIGINT NOT NULL,
    "stock" INTEGER NOT NULL,
    "sold" INTEGER NOT NULL DEFAULT 0,
    "version" INTEGER NOT NULL DEFAULT 0,
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "flash_sale_items_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "flash_sale_orders" (
    "id" UUID NOT NULL DEFAULT gen_random_uuid(),
    "user_id" VARCHAR(64) NOT NULL,
    "activity_id" VARCHAR(64) NOT NULL,
    "item_id" VARCHAR(64) NOT NULL,
    "credit_type_id" VARCHAR(64) NOT NULL,
    "points_paid" BIGINT NOT NULL,
    "transaction_id" UUID NOT NULL,
    "operation_id" UUID,
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "flash_sale_orders_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "api_keys" (
    "id" UUID NOT NULL DEFAULT gen_random_uuid(),
    "name" VARCHAR(100) NOT NULL,
    "prefix" VARCHAR(16) NOT NULL,
    "key_hash" VARCHAR(64) NOT NULL,
    "scopes" TEXT[] DEFAULT ARRAY[]::TEXT[],
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "revoked_at" TIMESTAMPTZ(3),
    "last_used_at" TIMESTAMPTZ(3),

    CONSTRAINT "api_keys_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "admin_users" (
    "id" UUID NOT NULL DEFAULT gen_random_uuid(),
    "email" VARCHAR(254) NOT NULL,
    "password_hash" TEXT NOT NULL,
    "role" "AdminRole" NOT NULL,
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "disabled_at" TIMESTAMPTZ(3),

    CONSTRAINT "admin_users_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "admin_sessions" (
    "id" VARCHAR(64) NOT NULL,
    "user_id" UUID NOT NULL,
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "expires_at" TIMESTAMPTZ(3) NOT NULL,
    "revoked_at" TIMESTAMPTZ(3),
    "ip" VARCHAR(64),
    "user_agent" VARCHAR(400),

    CONSTRAINT "admin_sessions_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "audit_log" (
    "id" BIGSERIAL NOT NULL,
    "actor" VARCHAR(254) NOT NULL,
    "role" VARCHAR(32) NOT NULL,
    "action" VARCHAR(64) NOT NULL,
    "target" VARCHAR(200) NOT NULL,
    "reason" VARCHAR(500) NOT NULL,
    "before" JSONB,
    "after" JSONB,
    "request_id" VARCHAR(128),
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "audit_log_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "settings" (
    "key" VARCHAR(100) NOT NULL,
    "value" JSONB NOT NULL,
    "version" INTEGER NOT NULL DEFAULT 0,
    "updated_by" VARCHAR(254),
    "updated_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "settings_pkey" PRIMARY KEY ("key")
);

-- CreateIndex
CREATE UNIQUE INDEX "accounts_user_id_credit_type_id_key" ON "accounts"("user_id", "credit_type_id");

-- CreateIndex
CREATE INDEX "ledger_entries_account_id_created_at_id_idx" ON "ledger_entries"("account_id", "created_at" DESC, "id" DESC);

-- CreateIndex
CREATE INDEX "ledger_entries_operation_id_idx" ON "ledger_entries"("operation_id");

-- CreateIndex
CREATE UNIQUE INDEX "ledger_entries_business_code_business_id_key" ON "ledger_entries"("business_code", "business_id");

-- CreateIndex
CREATE INDEX "operations_request_id_idx" ON "operations"("request_id");

-- CreateIndex
CREATE INDEX "operations_business_code_business_id_idx" ON "operations"("business_code", "business_id");

-- CreateIndex
CREATE INDEX "operations_status_started_at_idx" ON "operations"("status", "started_at");

-- CreateIndex
CREATE INDEX "operations_user_id_idx" ON "operations"("user_id");

-- CreateIndex
CREATE INDEX "request_records_expires_at_idx" ON "request_records"("expires_at");

-- CreateIndex
CREATE UNIQUE INDEX "outbox_events_event_id_key" ON "outbox_events"("event_id");

-- CreateIndex
CREATE INDEX "outbox_events_sent_at_id_idx" ON "outbox_events"("sent_at", "id");

-- CreateIndex
CREATE UNIQUE INDEX "refunds_original_transaction_id_key" ON "refunds"("original_transaction_id");

-- CreateIndex
CREATE INDEX "refunds_status_next_attempt_at_idx" ON "refunds"("status", "next_attempt_at");

-- CreateIndex
CREATE INDEX "refunds_user_id_idx" ON "refunds"("user_id");

-- CreateIndex
CREATE INDEX "flash_sale_activities_starts_at_idx" ON "flash_sale_activities"("starts_at");

-- CreateIndex
CREATE INDEX "flash_sale_items_activity_id_idx" ON "flash_sale_items"("activity_id");

-- CreateIndex
CREATE UNIQUE INDEX "flash_sale_orders_transaction_id_key" ON "flash_sale_orders"("transaction_id");

-- CreateIndex
CREATE INDEX "flash_sale_orders_activity_id_idx" ON "flash_sale_orders"("activity_id");

-- CreateIndex
CREATE UNIQUE INDEX "flash_sale_orders_user_id_item_id_key" ON "flash_sale_orders"("user_id", "item_id");

-- CreateIndex
CREATE UNIQUE INDEX "api_keys_key_hash_key" ON "api_keys"("key_hash");

-- CreateIndex
CREATE UNIQUE INDEX "admin_users_email_key" ON "admin_users"("email");

-- CreateIndex
CREATE INDEX "admin_sessions_user_id_idx" ON "admin_sessions"("user_id");

-- CreateIndex
CREATE INDEX "admin_sessions_expires_at_idx" ON "admin_sessions"("expires_at");

-- CreateIndex
CREATE INDEX "audit_log_created_at_id_idx" ON "audit_log"("created_at" DESC, "id" DESC);

-- AddForeignKey
ALTER TABLE "accounts" ADD CONSTRAINT "accounts_credit_type_id_fkey" FOREIGN KEY ("credit_type_id") REFERENCES "credit_types"("id") ON DELETE RESTRICT ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "ledger_entries" ADD CONSTRAINT "ledger_entries_account_id_fkey" FOREIGN KEY ("account_id") REFERENCES "accounts"("id") ON DELETE RESTRICT ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "ledger_entries" ADD CONSTRAINT "ledger_entries_operation_id_fkey" FOREIGN KEY ("operation_id") REFERENCES "operations"("id") ON DELETE SET NULL ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "flash_sale_items" ADD CONSTRAINT "flash_sale_items_activity_id_fkey" FOREIGN KEY ("activity_id") REFERENCES "flash_sale_activities"("id") ON DELETE RESTRICT ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "flash_sale_items" ADD CONSTRAINT "flash_sale_items_credit_type_id_fkey" FOREIGN KEY ("credit_type_id") REFERENCES "credit_types"("id") ON DELETE RESTRICT ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "admin_sessions" ADD CONSTRAINT "admin_sessions_user_id_fkey" FOREIGN KEY ("user_id") REFERENCES "admin_users"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- Constraints Prisma's schema cannot express: the database itself refuses a
-- negative balance, an oversold item or a malformed ledger row.
ALTER TABLE "accounts" ADD CONSTRAINT "accounts_balance_non_negative" CHECK ("balance" >= 0);
ALTER TABLE "accounts" ADD CONSTRAINT "accounts_version_non_negative" CHECK ("version" >= 0);
ALTER TABLE "ledger_entries" ADD CONSTRAINT "ledger_entries_amount_positive" CHECK ("amount" > 0);
ALTER TABLE "ledger_entries" ADD CONSTRAINT "ledger_entries_balance_after_non_negative" CHECK ("balance_after" >= 0);
ALTER TABLE "refunds" ADD CONSTRAINT "refunds_amount_positive" CHECK ("amount" > 0);
ALTER TABLE "refunds" ADD CONSTRAINT "refunds_attempts_non_negative" CHECK ("attempts" >= 0);
ALTER TABLE "flash_sale_activities" ADD CONSTRAINT "flash_sale_activities_window" CHECK ("ends_at" > "starts_at");
ALTER TABLE "flash_sale_items" ADD CONSTRAINT "flash_sale_items_price_positive" CHECK ("points_price" > 0);
ALTER TABLE "flash_sale_items" ADD CONSTRAINT "flash_sale_items_stock_non_negative" CHECK ("stock" >= 0);
ALTER TABLE "flash_sale_items" ADD CONSTRAINT "flash_sale_items_sold_within_stock" CHECK ("sold" >= 0 AND "sold" <= "stock");
ALTER TABLE "flash_sale_orders" ADD CONSTRAINT "flash_sale_orders_points_positive" CHECK ("points_paid" > 0);

-- The audit log is append-only: no role, the service's included, may change
-- or remove what it says.
CREATE FUNCTION "audit_log_refuse_change"() RETURNS trigger AS $$
BEGIN
  RAISE EXCEPTION 'audit_log is append-only (% refused)', TG_OP USING ERRCODE = 'insufficient_privilege';
END;
$$ LANGUAGE plpgsql;

CREATE TRIGGER "audit_log_append_only"
  BEFORE UPDATE OR DELETE ON "audit_log"
  FOR EACH ROW EXECUTE FUNCTION "audit_log_refuse_change"();

CREATE TRIGGER "audit_log_no_truncate"
  BEFORE TRUNCATE ON "audit_log"
  FOR EACH STATEMENT EXECUTE FUNCTION "audit_log_refuse_change"();
