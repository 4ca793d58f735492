import type { Db } from "~/server/infra/db";
import { sqlOf, type Query } from "~/server/infra/sql";
import { PURCHASE_BUSINESS_CODE } from "~/server/flash-sale/purchase";
import { REFUND_BUSINESS_CODE } from "~/server/refund/refund-attempt";

/**
 * The books, checked as a whole (docs/architecture.md, "Invariants"): what
 * must hold in the database whatever happened to the processes, Redis or the
 * connections. Used after every step of the simulation (src/test/sim/) and
 * proved able to fail by invariants.int.test.ts. Every check is one SELECT
 * that returns one readable sentence per offending row; they run together as
 * one statement, so all of them read one snapshot and never mix two moments.
 */

export const INVARIANTS = [
  /** Invariant 1: no account and no ledger row below zero. */
  "account.negative",
  /** Invariant 4: balance == Σ credits − Σ debits. */
  "account.sum",
  /** Invariant 4: each ledger row's balance_after is the one before it (by seq) plus or minus its amount. */
  "ledger.chain",
  /** Invariant 2: one ledger row per business key, and its global claim in business_keys names that row. */
  "ledger.businessKey",
  /** Invariant 3: 0 ≤ sold ≤ stock. */
  "item.sold",
  /** Invariant 3: sold == the item's orders. */
  "item.orders",
  /** Invariant 3: each order is paid by exactly one debit of its price. */
  "order.debit",
  /** Invariant 5: a debit's refunds (queued and immediate) add up to its refunded_amount, within its amount. */
  "refund.total",
  /** Invariant 5: a SUCCEEDED refund has its one credit; any other status has none. */
  "refund.credit",
  /** Invariant 5: no refund credit without the refund it applies. */
  "refund.orphanCredit",
  /** Invariant 5: a purchase debit that did not end in an order is refunded in full. */
  "purchase.refunded",
  /** Invariant 5, settled: every refund SUCCEEDED, or FAILED with its error for a person to see (or RESOLVED by one). */
  "refund.unsettled",
  /** Invariant 6: an operation reported completed applied, one reported failed did not. */
  "operation.outcome",
  /** Invariant 6, settled: nothing left `started` past the bound. */
  "operation.stuck",
] as const;

export type InvariantName = (typeof INVARIANTS)[number];

export type Violation = { check: InvariantName; message: string };

export type CheckOptions = {
  /**
   * Everything has had time to finish (no call in flight, the worker has
   * drained the refund queue and resolved abandoned operations): the
   * "eventually" checks apply too.
   */
  settled?: boolean;
  /** With `settled`: how old a `started` operation may be (ms, by the database's clock). Default 60 s. */
  startedBoundMs?: number;
};

type CheckSql = { check: InvariantName; settledOnly?: boolean; sql: string };

/** Operation types that write a ledger row when they apply. */
const BALANCE_OPERATIONS = "('credit.grant', 'credit.deduct', 'credit.refund', 'refund.apply', 'flashSale.purchase')";
const purchase = `'${PURCHASE_BUSINESS_CODE}'`;
const refundCode = `'${REFUND_BUSINESS_CODE}'`;

const CHECKS: CheckSql[] = [
  {
    check: "account.negative",
    sql: `
      SELECT format('account %s (user %s, %s) has a negative balance: %s', id, user_id, credit_type_id, balance)
        FROM accounts WHERE balance < 0
      UNION ALL
      SELECT format('ledger row %s (account %s, seq %s) left a negative balance: %s', id, account_id, seq, balance_after)
        FROM ledger_entries WHERE balance_after < 0`,
  },
  {
    check: "account.sum",
    sql: `
      SELECT format('account %s (user %s, %s) has balance %s, but its ledger adds up to %s (credits %s − debits %s)',
                    id, user_id, credit_type_id, balance, credits - debits, credits, debits)
        FROM (SELECT a.id, a.user_id, a.credit_type_id, a.balance,
                     coalesce(sum(l.amount) FILTER (WHERE l.type = 'CREDIT'), 0) AS credits,
                     coalesce(sum(l.amount) FILTER (WHERE l.type = 'DEBIT'), 0) AS debits
                FROM accounts a LEFT JOIN ledger_entries l ON l.account_id = a.id
               GROUP BY a.id, a.user_id) s
       WHERE balance <> credits - debits`,
  },
  {
    // seq is the order an account's changes applied in (one batch at a time
    // per account, its rows inserted in plan order), so each row must
    // continue from the one before it; the first from zero.
    check: "ledger.chain",
    sql: `
      SELECT format('ledger row %s (account %s, seq %s, %s %s under %s/%s) has balance_after %s, but the row before it (seq %s) left %s',
                    id, account_id, seq, type, amount, business_code, business_id, balance_after,
                    coalesce(prev_seq::text, 'none'), coalesce(prev_after, 0))
        FROM (SELECT l.*, lag(l.balance_after) OVER w AS prev_after, lag(l.seq) OVER w AS prev_seq
                FROM ledger_entries l
              WINDOW w AS (PARTITION BY l.account_id ORDER BY l.seq)) x
       WHERE balance_after <> coalesce(prev_after, 0) + CASE WHEN type = 'CREDIT' THEN amount ELSE -amount END`,
  },
  {
    // The ledger is partitioned by user, so no index of its own can hold a
    // key once across users: business_keys holds the global claim, and each
    // ledger row and its claim must name each other exactly.
    check: "ledger.businessKey",
    sql: `
      SELECT format('business key %s/%s has %s ledger rows: %s', d.business_code, d.business_id, d.n,
                    (SELECT string_agg(l.id::text, ', ') FROM ledger_entries l WHERE l.business_code = d.business_code AND l.business_id = d.business_id))
        FROM (SELECT business_code, business_id, count(*) AS n FROM ledger_entries GROUP BY 1, 2 HAVING count(*) > 1) d
      UNION ALL
      SELECT format('ledger row %s (%s %s to %s in %s) under %s/%s %s', l.id, l.type, l.amount, l.user_id, l.credit_type_id, l.business_code, l.business_id,
                    CASE WHEN k.transaction_id IS NULL THEN 'has no claim of its business key'
                         ELSE format('does not match its claim: transaction %s, %s %s to %s in %s', k.transaction_id, k.type, k.amount, k.user_id, k.credit_type_id) END)
        FROM ledger_entries l
        LEFT JOIN business_keys k ON k.business_code = l.business_code AND k.business_id = l.business_id
       WHERE k.transaction_id IS NULL OR k.transaction_id <> l.id OR k.user_id <> l.user_id OR k.credit_type_id <> l.credit_type_id
          OR k.type <> l.type OR k.amount <> l.amount
      UNION ALL
      SELECT format('business key %s/%s is claimed by transaction %s, which is not in the ledger', k.business_code, k.business_id, k.transaction_id)
        FROM business_keys k
       WHERE NOT EXISTS (SELECT 1 FROM ledger_entries l WHERE l.id = k.transaction_id AND l.user_id = k.user_id)`,
  },
  {
    check: "item.sold",
    sql: `
      SELECT format('flash-sale item %s sold %s of a stock of %s', id, sold, stock)
        FROM flash_sale_items WHERE sold < 0 OR sold > stock`,
  },
  {
    check: "item.orders",
    sql: `
      SELECT format('flash-sale item %s says sold %s, but has %s orders', i.id, i.sold, count(o.id))
        FROM flash_sale_items i LEFT JOIN flash_sale_orders o ON o.item_id = i.id
       GROUP BY i.id HAVING i.sold <> count(o.id)`,
  },
  {
    check: "order.debit",
    sql: `
      SELECT format('order %s (user %s, item %s, price %s, paid %s) is not paid by one debit of its price: transaction %s is %s',
                    o.id, o.user_id, o.item_id, i.points_price, o.points_paid, o.transaction_id,
                    CASE WHEN l.id IS NULL THEN 'missing'
                         ELSE format('a %s of %s by %s under %s/%s', l.type, l.amount, l.user_id, l.business_code, l.business_id) END)
        FROM flash_sale_orders o
        JOIN flash_sale_items i ON i.id = o.item_id
        LEFT JOIN ledger_entries l ON l.id = o.transaction_id
       WHERE l.id IS NULL OR l.type <> 'DEBIT' OR l.amount <> o.points_paid OR o.points_paid <> i.points_price
          OR l.user_id <> o.user_id OR l.credit_type_id <> o.credit_type_id
          OR l.business_code <> ${purchase} OR l.business_id <> o.id::text`,
  },
  {
    check: "refund.total",
    sql: `
      WITH given AS (SELECT original_transaction_id AS id, sum(amount) AS total, count(*) AS n FROM refunds GROUP BY 1),
           ids AS (SELECT id FROM ledger_entries WHERE refunded_amount <> 0 UNION SELECT id FROM given)
      SELECT CASE
               WHEN l.id IS NULL THEN format('%s refunds (%s points) give back transaction %s, which does not exist', g.n, g.total, ids.id)
               WHEN l.type <> 'DEBIT' THEN format('ledger row %s is a %s, yet has refunded_amount %s and %s refunds', l.id, l.type, l.refunded_amount, coalesce(g.n, 0))
               ELSE format('debit %s (%s points, user %s) has refunded_amount %s, but its %s refunds add up to %s',
                           l.id, l.amount, l.user_id, l.refunded_amount, coalesce(g.n, 0), coalesce(g.total, 0))
             END
        FROM ids LEFT JOIN ledger_entries l ON l.id = ids.id LEFT JOIN given g ON g.id = ids.id
       WHERE l.id IS NULL OR l.type <> 'DEBIT' OR l.refunded_amount > l.amount OR l.refunded_amount <> coalesce(g.total, 0)`,
  },
  {
    // A queued refund's credit is keyed ('refund', its id); an immediate one
    // (credit.refund) is keyed by its caller. Either way the row names its
    // credit, and a row that is not SUCCEEDED has none.
    check: "refund.credit",
    sql: `
      SELECT format('refund %s (%s, %s points to %s) %s', f.id, f.status, f.amount, f.user_id,
               CASE
                 WHEN f.status <> 'SUCCEEDED' AND k.id IS NOT NULL THEN format('has a credit under its key: %s', k.id)
                 WHEN f.status <> 'SUCCEEDED' THEN format('names credit %s although it is not SUCCEEDED', f.refund_transaction_id)
                 WHEN c.id IS NULL THEN format('has no credit (refund_transaction_id %s)', coalesce(f.refund_transaction_id::text, 'null'))
                 WHEN k.id IS NOT NULL AND k.id <> c.id THEN format('names credit %s, but its key holds credit %s', c.id, k.id)
                 ELSE format('names credit %s, a %s of %s to %s', c.id, c.type, c.amount, c.user_id)
               END)
        FROM refunds f
        LEFT JOIN ledger_entries c ON c.id = f.refund_transaction_id
        LEFT JOIN ledger_entries k ON k.business_code = ${refundCode} AND k.business_id = f.id::text
       WHERE (f.status <> 'SUCCEEDED' AND (k.id IS NOT NULL OR f.refund_transaction_id IS NOT NULL))
          OR (f.status = 'SUCCEEDED' AND (c.id IS NULL OR c.type <> 'CREDIT' OR c.amount <> f.amount OR c.user_id <> f.user_id
                                          OR c.credit_type_id <> f.credit_type_id OR (k.id IS NOT NULL AND k.id <> c.id)))
      UNION ALL
      SELECT format('credit %s is named by %s refunds: %s', refund_transaction_id, count(*), string_agg(id::text, ', '))
        FROM refunds WHERE refund_transaction_id IS NOT NULL GROUP BY refund_transaction_id HAVING count(*) > 1`,
  },
  {
    // Queued refunds credit under ('refund', id); immediate ones under the
    // caller's key, recognised by their operation.
    check: "refund.orphanCredit",
    sql: `
      SELECT format('credit %s of %s to %s under %s/%s gives points back, but no refund names it',
                    l.id, l.amount, l.user_id, l.business_code, l.business_id)
        FROM ledger_entries l
       WHERE l.type = 'CREDIT'
         AND NOT EXISTS (SELECT 1 FROM refunds f WHERE f.refund_transaction_id = l.id)
         AND (l.business_code = ${refundCode}
              OR EXISTS (SELECT 1 FROM operations o WHERE o.id = l.operation_id AND o.type IN ('refund.apply', 'credit.refund')))`,
  },
  {
    check: "purchase.refunded",
    sql: `
      SELECT format('purchase debit %s (%s points, user %s, %s/%s) has no order and only %s refunded (%s)',
                    l.id, l.amount, l.user_id, l.business_code, l.business_id, coalesce(g.total, 0),
                    coalesce(g.statuses, 'no refund'))
        FROM ledger_entries l
        LEFT JOIN (SELECT original_transaction_id AS id, sum(amount) AS total, string_agg(format('%s %s', id, status), ', ') AS statuses
                     FROM refunds GROUP BY 1) g ON g.id = l.id
       WHERE l.business_code = ${purchase} AND l.type = 'DEBIT'
         AND NOT EXISTS (SELECT 1 FROM flash_sale_orders o WHERE o.transaction_id = l.id)
         AND coalesce(g.total, 0) <> l.amount`,
  },
  {
    check: "refund.unsettled",
    settledOnly: true,
    sql: `
      SELECT format('refund %s (%s points to %s, of debit %s) is %s after %s attempts%s', id, amount, user_id, original_transaction_id, status, attempts,
                    CASE WHEN status = 'FAILED' THEN ' with no error for an operator to see' ELSE '' END)
        FROM refunds
       WHERE status IN ('PENDING', 'RETRYING') OR (status = 'FAILED' AND coalesce(last_error, '') = '')`,
  },
  {
    // A cancelled purchase is the one failed operation that keeps its debit:
    // the order is gone and the debit is refunded (purchase.refunded).
    check: "operation.outcome",
    sql: `
      SELECT format('operation %s (%s, %s/%s) is %s, but %s', o.id, o.type, o.business_code, o.business_id, o.status,
                    CASE WHEN o.status = 'completed' THEN 'it wrote no ledger row' ELSE format('ledger row %s is its', l.id) END)
        FROM operations o
        LEFT JOIN ledger_entries l ON l.operation_id = o.id
       WHERE o.type IN ${BALANCE_OPERATIONS}
         AND ((o.status = 'completed' AND l.id IS NULL)
              OR (o.status = 'failed' AND l.id IS NOT NULL
                  AND NOT (o.type = 'flashSale.purchase' AND NOT EXISTS (SELECT 1 FROM flash_sale_orders fo WHERE fo.transaction_id = l.id))))`,
  },
  {
    check: "operation.stuck",
    settledOnly: true,
    sql: `
      SELECT format('operation %s (%s, %s/%s, request %s) is still started, since %s', id, type, business_code, business_id,
                    coalesce(request_id, 'none'), started_at)
        FROM operations
       WHERE status = 'started' AND started_at < now() - make_interval(secs => $1::double precision / 1000)`,
  },
];

/** Runs every check (one statement, one snapshot); an empty list means the books hold. */
export async function checkInvariants(db: Db, opts: CheckOptions = {}): Promise<Violation[]> {
  const bound = opts.startedBoundMs ?? 60_000;
  const checks = CHECKS.filter((c) => opts.settled || !c.settledOnly);
  const sql = checks.map((c) => `SELECT '${c.check}' AS check, message FROM (${c.sql}) AS ${c.check.replace(".", "_")}(message)`).join("\nUNION ALL\n");
  return sqlOf(db).transaction(async (q: Query) => {
    await q("SET TRANSACTION READ ONLY");
    // The checks aggregate whole tables after every simulation step: room to
    // hash in memory, and no JIT compilation (it costs more than these queries).
    await q("SET LOCAL work_mem = '64MB'");
    await q("SET LOCAL jit = off");
    return q<Violation>(sql, opts.settled ? [bound] : []);
  });
}

/** The violations as lines, for an error message. */
export function describeViolations(violations: readonly Violation[], limit = 20): string {
  const lines = violations.slice(0, limit).map((v) => `  [${v.check}] ${v.message}`);
  if (violations.length > limit) lines.push(`  … and ${violations.length - limit} more`);
  return lines.join("\n");
}
