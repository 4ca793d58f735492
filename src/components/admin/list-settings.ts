/**
 * What the dashboard's server pages and client components must agree on
 * (a page prefetches exactly the query its client component then reads).
 * Plain constants: a "use client" module's exports are only references on
 * the server.
 */

/** The refund tabs, FAILED first: what needs a person. */
export const REFUND_TABS = ["FAILED", "RETRYING", "PENDING", "SUCCEEDED", "RESOLVED"] as const;
export type RefundTab = (typeof REFUND_TABS)[number];
export const REFUNDS_PAGE_SIZE = 25;
export const SALES_PAGE_SIZE = 20;
export const LEDGER_PAGE_SIZE = 25;

/** Audit rows on the overview. */
export const RECENT_AUDIT_LIMIT = 5;
/** Reconciliation reports on the sales page. */
export const REPAIRS_PAGE_SIZE = 10;
