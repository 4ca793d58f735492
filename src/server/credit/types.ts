import type { RequestRecorder } from "~/server/resilience/request-record";

/** A grant or a deduction as a service asks for it (the API validates it; docs/api.md). */
export type BalanceChangeRequest = {
  userId: string;
  creditTypeId: string;
  /** A positive whole number of points. */
  amount: number;
  businessCode: string;
  businessId: string;
};

/** Who asked, and how to record the answer for X-Request-Id replay. */
export type CallerInfo = {
  /** The caller's key (identity/principal.ts), or null for internal callers such as the seed. */
  principal: string | null;
  requestId: string | null;
  /** X-Request-Id replay: records this request's result inside the effect's transaction. */
  recordRequest?: RequestRecorder | null;
};
