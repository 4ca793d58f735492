import { z } from "zod";
import { createTRPCRouter, serviceProcedure } from "../trpc";
import { ZAccountRef, ZBalanceChangeRequestSchema, ZPageFields } from "../schemas";
import { grantCredits, type CallerInfo } from "~/server/credit/grant";
import { deductCredits } from "~/server/credit/deduct";
import { getAccount } from "~/server/credit/accounts";
import { listLedger } from "~/server/credit/ledger";
import { requestReplay, principalKey } from "~/server/resilience/request-replay";
import { admission, requireSwitch } from "~/server/resilience/admission";

export const ZLedgerQuerySchema = z.object({ ...ZAccountRef.shape, ...ZPageFields }).strict();

/** Who asked, and how to record the answer for X-Request-Id replay. */
function callerOf(ctx: {
  principal: Parameters<typeof principalKey>[0];
  requestId: string;
  recordRequest: CallerInfo["recordRequest"];
}): CallerInfo {
  return { principal: principalKey(ctx.principal), requestId: ctx.requestId, recordRequest: ctx.recordRequest };
}

export const creditRouter = createTRPCRouter({
  grant: serviceProcedure
    .input(ZBalanceChangeRequestSchema)
    .use(requestReplay)
    .mutation(({ ctx, input }) =>
      grantCredits(ctx.deps, input, callerOf(ctx)),
    ),

  deduct: serviceProcedure
    .input(ZBalanceChangeRequestSchema)
    .use(requestReplay)
    .use(admission("credit.deduct"))
    .mutation(({ ctx, input }) =>
      deductCredits(ctx.deps, input, callerOf(ctx)),
    ),

  account: serviceProcedure
    .input(ZAccountRef)
    .query(({ ctx, input }) => getAccount(ctx.deps.db, input.userId, input.creditTypeId)),

  ledger: serviceProcedure
    .input(ZLedgerQuerySchema)
    .use(requireSwitch("ledgerReads"))
    .query(({ ctx, input }) => listLedger(ctx.deps.db, input)),
});
