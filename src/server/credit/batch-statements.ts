import type { Query, Statement } from "~/server/infra/sql";
import type { LedgerType } from "~/generated/prisma/client";
import type { LedgerRow } from "./ledger";
import {
  accountKey,
  businessKey,
  pairKey,
  type AccountCreate,
  type AccountUpdate,
  type BatchState,
  type ExistingEntry,
  type RefundedUpdate,
  type SoldUpdate,
} from "./batch-plan";

/**
 * The balance engine's statements: arrays in, one round trip each, whatever
 * the batch's size. A batch costs BEGIN, `readBatchState`, `writeBatch`,
 * COMMIT — not a transaction per balance change.
 */

export type ReadKeys = {
  /**
   * Every user the batch's items are for: each per-user read is limited to
   * their partitions. The debits and queued refunds the batch names are its
   * items' users' own (one of another user is not found, as the plan wants).
   */
  users: string[];
  /** Debits the batch's refunds give back to. */
  debits: string[];
  /** Queued refund rows the batch applies. */
  refunds: string[];
  /** Flash-sale items the batch's purchases buy, and who buys them. */
  items: string[];
  buyers: { userId: string; itemId: string }[];
  businessKeys: { code: string; id: string }[];
  accounts: { userId: string; creditTypeId: string }[];
  creditTypes: string[];
  requestIds: { principal: string; requestId: string }[];
  now: Date;
};

/*
 * Partitioning (docs/architecture.md, "Partitioning"): every per-user table
 * is hash-partitioned by user_id, and every read or write of one below
 * carries `user_id = ANY(<the batch's users>)` besides its own key, so the
 * planner keeps only the partitions of the batch's users (one, for a batch of
 * one user). partitioning.int.test.ts proves it on these exact statements.
 * PostgreSQL 15 prunes on `= ANY($n)` when it plans with the values (a custom
 * plan, which it keeps choosing for these statements: a generic plan would
 * cost every partition); business keys are global and are read from their
 * unpartitioned claim table. A key claimed by a user outside the batch comes
 * without its ledger row (balance 0, no operation): the plan only ever
 * refuses it (IDEMPOTENCY_KEY_REUSED, another user), never answers with it.
 */
const READ_SQL: Statement = { name: "fp_batch_read", text: `
SELECT
  (SELECT coalesce(json_agg(json_build_object(
      'id', k.transaction_id, 'userId', k.user_id, 'creditTypeId', k.credit_type_id, 'type', k.type,
      'amount', k.amount::text, 'balanceAfter', coalesce(e.balance_after, 0)::text, 'operationId', e.operation_id,
      'businessCode', k.business_code, 'businessId', k.business_id)), '[]'::json)
     FROM business_keys k
     LEFT JOIN ledger_entries e ON e.id = k.transaction_id AND e.user_id = k.user_id AND e.user_id = ANY($14::text[])
    WHERE (k.business_code, k.business_id) IN (SELECT * FROM unnest($1::text[], $2::text[]))) AS entries,
  (SELECT coalesce(json_agg(json_build_object(
      'id', a.id, 'userId', a.user_id, 'creditTypeId', a.credit_type_id, 'balance', a.balance::text, 'version', a.version)), '[]'::json)
     FROM accounts a
    WHERE (a.user_id, a.credit_type_id) IN (SELECT * FROM unnest($3::text[], $4::text[])) AND a.user_id = ANY($14::text[])) AS accounts,
  (SELECT coalesce(json_agg(c.id), '[]'::json) FROM credit_types c WHERE c.id = ANY($5::text[])) AS credit_types,
  (SELECT coalesce(json_agg(json_build_object('principal', r.principal, 'requestId', r.request_id)), '[]'::json)
     FROM request_records r
    WHERE (r.principal, r.request_id) IN (SELECT * FROM unnest($6::text[], $7::text[])) AND r.expires_at > $8) AS records,
  (SELECT coalesce(json_agg(json_build_object(
      'id', d.id, 'userId', d.user_id, 'creditTypeId', d.credit_type_id, 'type', d.type,
      'amount', d.amount::text, 'refunded', d.refunded_amount::text)), '[]'::json)
     FROM ledger_entries d WHERE d.id = ANY($9::uuid[]) AND d.user_id = ANY($14::text[])) AS debits,
  (SELECT coalesce(json_agg(json_build_object('id', f.id, 'status', f.status)), '[]'::json)
     FROM refunds f WHERE f.id = ANY($10::uuid[]) AND f.user_id = ANY($14::text[])) AS refunds,
  (SELECT coalesce(json_agg(json_build_object('id', i.id, 'stock', i.stock, 'sold', i.sold)), '[]'::json)
     FROM flash_sale_items i WHERE i.id = ANY($11::text[])) AS items,
  (SELECT coalesce(json_agg(json_build_object(
      'userId', o.user_id, 'itemId', o.item_id, 'orderId', o.id, 'transactionId', o.transaction_id,
      'operationId', o.operation_id, 'balanceAfter', coalesce(e.balance_after, 0)::text)), '[]'::json)
     FROM flash_sale_orders o
     LEFT JOIN ledger_entries e ON e.id = o.transaction_id AND e.user_id = o.user_id AND e.user_id = ANY($14::text[])
    WHERE (o.user_id, o.item_id) IN (SELECT * FROM unnest($12::text[], $13::text[])) AND o.user_id = ANY($14::text[])) AS orders` };

type ReadRow = {
  entries: (Omit<ExistingEntry, "amount" | "balanceAfter"> & { amount: string; balanceAfter: string; businessCode: string; businessId: string })[];
  accounts: { id: string; userId: string; creditTypeId: string; balance: string; version: number }[];
  credit_types: string[];
  records: { principal: string; requestId: string }[];
  debits: { id: string; userId: string; creditTypeId: string; type: LedgerType; amount: string; refunded: string }[];
  refunds: { id: string; status: string }[];
  items: { id: string; stock: number; sold: number }[];
  orders: { userId: string; itemId: string; orderId: string; transactionId: string; operationId: string | null; balanceAfter: string }[];
};

export const requestKey = (principal: string, requestId: string): string => pairKey(principal, requestId);

/** What the batch needs to decide, in one statement: used business keys, accounts, credit types, recorded request ids, debits and refund rows. */
export async function readBatchState(q: Query, keys: ReadKeys): Promise<BatchState & { recorded: Set<string> }> {
  const [row] = await q<ReadRow>(READ_SQL, [
    keys.businessKeys.map((k) => k.code),
    keys.businessKeys.map((k) => k.id),
    keys.accounts.map((a) => a.userId),
    keys.accounts.map((a) => a.creditTypeId),
    keys.creditTypes,
    keys.requestIds.map((r) => r.principal),
    keys.requestIds.map((r) => r.requestId),
    keys.now,
    keys.debits,
    keys.refunds,
    keys.items,
    keys.buyers.map((b) => b.userId),
    keys.buyers.map((b) => b.itemId),
    keys.users,
  ]);
  if (!row) throw new Error("the batch read returned no row");
  return {
    entries: new Map(
      row.entries.map((e) => [
        businessKey(e.businessCode, e.businessId),
        {
          id: e.id,
          userId: e.userId,
          creditTypeId: e.creditTypeId,
          type: e.type,
          amount: BigInt(e.amount),
          balanceAfter: BigInt(e.balanceAfter),
          operationId: e.operationId,
        },
      ]),
    ),
    accounts: new Map(
      row.accounts.map((a) => [accountKey(a.userId, a.creditTypeId), { id: a.id, balance: BigInt(a.balance), version: a.version }]),
    ),
    creditTypes: new Set(row.credit_types),
    recorded: new Set(row.records.map((r) => requestKey(r.principal, r.requestId))),
    debits: new Map(
      row.debits.map((d) => [
        d.id,
        { userId: d.userId, creditTypeId: d.creditTypeId, type: d.type, amount: BigInt(d.amount), refunded: BigInt(d.refunded) },
      ]),
    ),
    refunds: new Map(row.refunds.map((f) => [f.id, f.status])),
    items: new Map(row.items.map((i) => [i.id, { stock: i.stock, sold: i.sold }])),
    orders: new Map(
      row.orders.map((o) => [
        pairKey(o.userId, o.itemId),
        { orderId: o.orderId, transactionId: o.transactionId, operationId: o.operationId, balanceAfter: BigInt(o.balanceAfter) },
      ]),
    ),
  };
}

/** A ledger row as the batch writes it: every column but the ones PostgreSQL fills (created_at, seq). */
export type LedgerInsert = Omit<LedgerRow, "createdAt" | "seq" | "operationId"> & { operationId: string };
export type EventInsert = { type: string; userId: string; payload: unknown };
export type OperationFinish = {
  id: string;
  userId: string;
  status: "completed" | "skipped" | "failed";
  result: unknown;
  errorCode: string | null;
  errorMessage: string | null;
};
export type RecordInsert = {
  principal: string;
  requestId: string;
  procedure: string;
  inputHash: string;
  userId: string;
  operationId: string;
  response: unknown;
  expiresAt: Date;
};

/** A refund that applied: its row, SUCCEEDED, beside the credit (`transactionId`) that gave the points back. */
export type RefundInsert = {
  id: string;
  userId: string;
  creditTypeId: string;
  amount: bigint;
  reason: string;
  originalTransactionId: string;
  transactionId: string;
};

/** A queued refund the batch applied: its row becomes SUCCEEDED with the credit (`transactionId`). */
export type RefundMark = { refundId: string; userId: string; transactionId: string };

/** A flash-sale order a purchase placed, paid by its debit (`transactionId`). */
export type OrderInsert = {
  id: string;
  userId: string;
  activityId: string;
  itemId: string;
  creditTypeId: string;
  pointsPaid: bigint;
  transactionId: string;
  operationId: string;
};

export type BatchWrite = {
  orders: OrderInsert[];
  sold: SoldUpdate[];
  refunded: RefundedUpdate[];
  refunds: RefundInsert[];
  marks: RefundMark[];
  updates: AccountUpdate[];
  creates: AccountCreate[];
  ledger: LedgerInsert[];
  events: EventInsert[];
  operations: OperationFinish[];
  records: RecordInsert[];
  now: Date;
};

export type WriteCounts = {
  updated: number;
  created: number;
  recorded: number;
  refunded: number;
  marked: number;
  ordered: number;
  soldUpdated: number;
};

/**
 * Every per-user write names its rows by (id, user_id) and is limited to the
 * batch's users ($60), so it touches their partitions only; inserts are
 * routed by PostgreSQL. `keys` claims each new ledger row's business key in
 * business_keys (global): a key another batch claimed meanwhile is a unique
 * violation, and the batch reads again (apply-batch.ts).
 */
const WRITE_SQL: Statement = { name: "fp_batch_write", text: `
WITH upd AS (
  UPDATE accounts a SET balance = u.balance, version = u.new_version, updated_at = $1
  FROM unnest($2::uuid[], $3::int[], $4::int[], $5::bigint[], $61::text[]) AS u(id, version, new_version, balance, user_id)
  WHERE a.id = u.id AND a.user_id = u.user_id AND a.version = u.version AND a.user_id = ANY($60::text[])
  RETURNING a.id
), created AS (
  INSERT INTO accounts (id, user_id, credit_type_id, balance, version, created_at, updated_at)
  SELECT n.id, n.user_id, n.credit_type_id, n.balance, n.version, $1, $1
  FROM unnest($6::uuid[], $7::text[], $8::text[], $9::bigint[], $10::int[]) AS n(id, user_id, credit_type_id, balance, version)
  ON CONFLICT (user_id, credit_type_id) DO NOTHING
  RETURNING id
), ledger AS (
  INSERT INTO ledger_entries (id, account_id, user_id, credit_type_id, type, amount, balance_after, business_code, business_id, operation_id, created_at)
  SELECT l.id, l.account_id, l.user_id, l.credit_type_id, l.type::"LedgerType", l.amount, l.balance_after, l.code, l.bid, l.op, $1
  FROM unnest($11::uuid[], $12::uuid[], $13::text[], $14::text[], $15::text[], $16::bigint[], $17::bigint[], $18::text[], $19::text[], $20::uuid[])
       WITH ORDINALITY AS l(id, account_id, user_id, credit_type_id, type, amount, balance_after, code, bid, op, ord)
  ORDER BY l.ord
), keys AS (
  INSERT INTO business_keys (business_code, business_id, user_id, credit_type_id, type, amount, transaction_id, created_at)
  SELECT k.code, k.bid, k.user_id, k.credit_type_id, k.type::"LedgerType", k.amount, k.id, $1
  FROM unnest($11::uuid[], $13::text[], $14::text[], $15::text[], $16::bigint[], $18::text[], $19::text[])
       AS k(id, user_id, credit_type_id, type, amount, code, bid)
), events AS (
  INSERT INTO outbox_events (type, user_id, payload, created_at)
  SELECT v.type, v.user_id, v.payload, $1
  FROM unnest($21::text[], $22::text[], $23::jsonb[]) WITH ORDINALITY AS v(type, user_id, payload, ord)
  ORDER BY v.ord
), ops AS (
  UPDATE operations o SET status = v.status::"OperationStatus", result = v.result, error_code = v.code, error_message = v.message, finished_at = $1
  FROM unnest($24::uuid[], $25::text[], $26::jsonb[], $27::text[], $28::text[], $62::text[]) AS v(id, status, result, code, message, user_id)
  WHERE o.id = v.id AND o.user_id = v.user_id AND o.user_id = ANY($60::text[])
), records AS (
  INSERT INTO request_records (principal, request_id, procedure, input_hash, user_id, operation_id, outcome, response, created_at, expires_at)
  SELECT r.principal, r.request_id, r.procedure, r.hash, r.user_id, r.op, 'success', r.response, $1, r.expires_at
  FROM unnest($29::text[], $30::text[], $31::text[], $32::text[], $33::text[], $34::uuid[], $35::jsonb[], $36::timestamptz[])
       AS r(principal, request_id, procedure, hash, user_id, op, response, expires_at)
  ON CONFLICT (principal, request_id) DO UPDATE SET
    procedure = EXCLUDED.procedure, input_hash = EXCLUDED.input_hash, user_id = EXCLUDED.user_id,
    operation_id = EXCLUDED.operation_id, outcome = EXCLUDED.outcome, response = EXCLUDED.response,
    created_at = EXCLUDED.created_at, expires_at = EXCLUDED.expires_at
    WHERE request_records.expires_at <= EXCLUDED.created_at
  RETURNING 1
), refunded AS (
  UPDATE ledger_entries d SET refunded_amount = r.to_amount
  FROM unnest($37::uuid[], $38::bigint[], $39::bigint[], $63::text[]) AS r(id, from_amount, to_amount, user_id)
  WHERE d.id = r.id AND d.user_id = r.user_id AND d.refunded_amount = r.from_amount AND d.user_id = ANY($60::text[])
  RETURNING 1
), refund_rows AS (
  INSERT INTO refunds (id, user_id, credit_type_id, amount, reason, original_transaction_id, status, attempts, refund_transaction_id,
                       next_attempt_at, created_at, updated_at)
  SELECT f.id, f.user_id, f.credit_type_id, f.amount, f.reason, f.original, 'SUCCEEDED', 1, f.tx, $1, $1, $1
  FROM unnest($40::uuid[], $41::text[], $42::text[], $43::bigint[], $44::text[], $45::uuid[], $46::uuid[])
       AS f(id, user_id, credit_type_id, amount, reason, original, tx)
), marks AS (
  UPDATE refunds f SET status = 'SUCCEEDED', refund_transaction_id = m.tx, last_error = NULL,
                       version = f.version + 1, updated_at = $1
  FROM unnest($47::uuid[], $48::uuid[], $64::text[]) AS m(id, tx, user_id)
  WHERE f.id = m.id AND f.user_id = m.user_id AND f.status IN ('PENDING', 'RETRYING') AND f.user_id = ANY($60::text[])
  RETURNING 1
), orders AS (
  INSERT INTO flash_sale_orders (id, user_id, activity_id, item_id, credit_type_id, points_paid, transaction_id, operation_id, created_at)
  SELECT o.id, o.user_id, o.activity_id, o.item_id, o.credit_type_id, o.points, o.tx, o.op, $1
  FROM unnest($49::uuid[], $50::text[], $51::text[], $52::text[], $53::text[], $54::bigint[], $55::uuid[], $56::uuid[])
       AS o(id, user_id, activity_id, item_id, credit_type_id, points, tx, op)
  ON CONFLICT DO NOTHING
  RETURNING 1
), sold AS (
  UPDATE flash_sale_items i SET sold = s.to_sold, version = i.version + 1
  FROM unnest($57::text[], $58::int[], $59::int[]) AS s(id, from_sold, to_sold)
  WHERE i.id = s.id AND i.sold = s.from_sold
  RETURNING 1
)
SELECT (SELECT count(*) FROM upd)::int AS updated, (SELECT count(*) FROM created)::int AS created,
       (SELECT count(*) FROM records)::int AS recorded, (SELECT count(*) FROM refunded)::int AS refunded,
       (SELECT count(*) FROM marks)::int AS marked, (SELECT count(*) FROM orders)::int AS ordered,
       (SELECT count(*) FROM sold)::int AS "soldUpdated"` };

/** The users whose rows the batch updates: what its UPDATEs prune to. */
function usersOf(w: BatchWrite): string[] {
  const users = new Set<string>();
  for (const rows of [w.updates, w.operations, w.refunded, w.marks]) for (const r of rows) users.add(r.userId);
  return [...users];
}

const json = (v: unknown): string | null => (v === null || v === undefined ? null : JSON.stringify(v));

/**
 * Everything the batch changes, in one statement. The account updates are
 * versioned: the caller compares `updated`/`created`/`recorded` with what it
 * asked for and rolls back if someone else changed an account in between
 * (the fence that never depends on the lock).
 */
export async function writeBatch(q: Query, w: BatchWrite): Promise<WriteCounts> {
  const [row] = await q<WriteCounts>(WRITE_SQL, [
    w.now,
    w.updates.map((u) => u.id),
    w.updates.map((u) => u.version),
    w.updates.map((u) => u.newVersion),
    w.updates.map((u) => u.balance.toString()),
    w.creates.map((c) => c.id),
    w.creates.map((c) => c.userId),
    w.creates.map((c) => c.creditTypeId),
    w.creates.map((c) => c.balance.toString()),
    w.creates.map((c) => c.version),
    w.ledger.map((l) => l.id),
    w.ledger.map((l) => l.accountId),
    w.ledger.map((l) => l.userId),
    w.ledger.map((l) => l.creditTypeId),
    w.ledger.map((l) => l.type),
    w.ledger.map((l) => l.amount.toString()),
    w.ledger.map((l) => l.balanceAfter.toString()),
    w.ledger.map((l) => l.businessCode),
    w.ledger.map((l) => l.businessId),
    w.ledger.map((l) => l.operationId),
    w.events.map((e) => e.type),
    w.events.map((e) => e.userId),
    w.events.map((e) => json(e.payload)),
    w.operations.map((o) => o.id),
    w.operations.map((o) => o.status),
    w.operations.map((o) => json(o.result)),
    w.operations.map((o) => o.errorCode),
    w.operations.map((o) => o.errorMessage),
    w.records.map((r) => r.principal),
    w.records.map((r) => r.requestId),
    w.records.map((r) => r.procedure),
    w.records.map((r) => r.inputHash),
    w.records.map((r) => r.userId),
    w.records.map((r) => r.operationId),
    w.records.map((r) => json(r.response)),
    w.records.map((r) => r.expiresAt),
    w.refunded.map((r) => r.debitId),
    w.refunded.map((r) => r.from.toString()),
    w.refunded.map((r) => r.to.toString()),
    w.refunds.map((f) => f.id),
    w.refunds.map((f) => f.userId),
    w.refunds.map((f) => f.creditTypeId),
    w.refunds.map((f) => f.amount.toString()),
    w.refunds.map((f) => f.reason),
    w.refunds.map((f) => f.originalTransactionId),
    w.refunds.map((f) => f.transactionId),
    w.marks.map((m) => m.refundId),
    w.marks.map((m) => m.transactionId),
    w.orders.map((o) => o.id),
    w.orders.map((o) => o.userId),
    w.orders.map((o) => o.activityId),
    w.orders.map((o) => o.itemId),
    w.orders.map((o) => o.creditTypeId),
    w.orders.map((o) => o.pointsPaid.toString()),
    w.orders.map((o) => o.transactionId),
    w.orders.map((o) => o.operationId),
    w.sold.map((x) => x.itemId),
    w.sold.map((x) => x.from),
    w.sold.map((x) => x.to),
    usersOf(w),
    w.updates.map((u) => u.userId),
    w.operations.map((o) => o.userId),
    w.refunded.map((r) => r.userId),
    w.marks.map((m) => m.userId),
  ]);
  if (!row) throw new Error("the batch write returned no row");
  return row;
}
