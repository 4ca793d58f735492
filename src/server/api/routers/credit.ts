import { z } from "zod";
import { createTRPCRouter, principalProcedure, serviceProcedure } from "../trpc";
import { ZAccountRef, ZBalanceChangeRequestSchema, ZPageFields } from "../schemas";
import { requestReplay } from "../middleware/request-replay";
import { admission, requireSwitch } from "../middleware/admission";
import { grantCredits } from "~/server/credit/grant";
import { deductCredits } from "~/server/credit/deduct";
import { getAccount } from "~/server/credit/accounts";
import { listLedger } from "~/server/credit/ledger";
import type { CallerInfo } from "~/server/credit/types";
import type { RequestRecorder } from "~/server/resilience/request-record";
import { principalKey, type Principal } from "~/server/identity/principal";

export const ZLedgerQuerySchema = z.object({ ...ZAccountRef.shape, ...ZPageFields }).strict();

/** Who asked, and how to record the answer for X-Request-Id replay. */
function callerOf(ctx: { principal: Principal; requestId: string; recordRequest: RequestRecorder | null }): CallerInfo {
  return { principal: principalKey(ctx.principal), requestId: ctx.requestId, recordRequest: ctx.recordRequest };
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

  account: readProcedure
    .input(ZAccountRef)
    .query(({ ctx, input }) => getAccount(ctx.deps.db, input.userId, input.creditTypeId)),

  ledger: readProcedure
    .input(ZLedgerQuerySchema)
    .use(requireSwitch("ledgerReads"))
    .query(({ ctx, input }) => listLedger(ctx.deps.db, input)),
});
