import { z } from "zod";
import { createTRPCRouter, principalProcedure, serviceProcedure } from "../trpc";
import { ZAccountRef, ZBalanceBatchSchema, ZBalanceChangeRequestSchema, ZPageFields, ZRefundRequestSchema } from "../schemas";
import { requestReplay } from "../middleware/request-replay";
import { admission, requireSwitch } from "../middleware/admission";
import { grantCredits } from "~/server/credit/grant";
import { deductCredits } from "~/server/credit/deduct";
import { batchDeduct, batchGrant } from "~/server/credit/batch";
import { refundDebit } from "~/server/credit/refund";
import { getAccount } from "~/server/credit/accounts";
import { listLedger } from "~/server/credit/ledger";
import type { CallerInfo } from "~/server/credit/types";
import type { RequestRecordTicket } from "~/server/resilience/request-record";
import { principalKey, type Principal } from "~/server/identity/principal";

export const ZLedgerQuerySchema = z.object({ ...ZAccountRef.shape, ...ZPageFields }).strict();

/** Who asked, and how to record the answer for X-Request-Id replay. */
function callerOf(ctx: { principal: Principal; requestId: string; requestRecord: RequestRecordTicket | null }): CallerInfo {
  return { principal: principalKey(ctx.principal), requestId: ctx.requestId, record: ctx.requestRecord };
}

/** Reads a service makes and the dashboard shows. */
const readProcedure = principalProcedure({ role: "viewer" });

export const creditRouter = createTRPCRouter({
  grant: serviceProcedure
    .input(ZBalanceChangeRequestSchema)
    .use(requestReplay)
    .mutation(({ ctx, input }) => grantCredits(ctx.deps, input, callerOf(ctx))),

  deduct: serviceProcedure
    .input(ZBalanceChangeRequestSchema)
    .use(requestReplay)
    .use(admission("credit.deduct"))
    .mutation(({ ctx, input }) => deductCredits(ctx.deps, input, callerOf(ctx))),

  refund: serviceProcedure
    .input(ZRefundRequestSchema)
    .use(requestReplay)
    .mutation(({ ctx, input }) => refundDebit(ctx.deps, input, callerOf(ctx))),

  batchGrant: serviceProcedure
    .input(ZBalanceBatchSchema)
    .use(requestReplay)
    .mutation(({ ctx, input }) => batchGrant(ctx.deps, input.items, { principal: principalKey(ctx.principal) })),

  // The breaker guards the call; each item takes its user's token inside.
  batchDeduct: serviceProcedure
    .input(ZBalanceBatchSchema)
    .use(requestReplay)
    .use(admission("credit.deduct", { bucket: () => null }))
    .mutation(({ ctx, input }) => batchDeduct(ctx.deps, input.items, { principal: principalKey(ctx.principal) })),

  account: readProcedure
    .input(ZAccountRef)
    .query(({ ctx, input }) => getAccount(ctx.deps.db, input.userId, input.creditTypeId)),

  ledger: readProcedure
    .input(ZLedgerQuerySchema)
    .use(requireSwitch("ledgerReads"))
    .query(({ ctx, input }) => ctx.deps.reads.run((db) => listLedger(db, input))),
});
