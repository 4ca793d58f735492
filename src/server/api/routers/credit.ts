import { z } from "zod";
import { createTRPCRouter, serviceProcedure } from "../trpc";
import { ZAccountRef, ZBalanceChangeRequestSchema, ZCursor, ZLimit } from "../schemas";
import { grantCredits } from "~/server/credit/grant";
import { deductCredits } from "~/server/credit/deduct";
import { getAccount } from "~/server/credit/accounts";
import { listLedger } from "~/server/credit/ledger";
import { requestReplay, principalKey } from "~/server/resilience/request-replay";
import { admission, requireSwitch } from "~/server/resilience/admission";

export const ZLedgerQuerySchema = z
  .object({ userId: ZAccountRef.shape.userId, creditTypeId: ZAccountRef.shape.creditTypeId, limit: ZLimit, cursor: ZCursor.optional() })
  .strict();

export const creditRouter = createTRPCRouter({
  grant: serviceProcedure
    .input(ZBalanceChangeRequestSchema)
    .use(requestReplay)
    .mutation(({ ctx, input }) =>
      grantCredits(ctx.deps, input, {
        principal: principalKey(ctx.principal),
        requestId: ctx.requestId,
        recordRequest: ctx.recordRequest,
      }),
    ),

  deduct: serviceProcedure
    .input(ZBalanceChangeRequestSchema)
    .use(requestReplay)
    .use(admission("credit.deduct"))
    .mutation(({ ctx, input }) =>
      deductCredits(ctx.deps, input, {
        principal: principalKey(ctx.principal),
        requestId: ctx.requestId,
        recordRequest: ctx.recordRequest,
      }),
    ),

  account: serviceProcedure
    .input(ZAccountRef)
    .query(({ ctx, input }) => getAccount(ctx.deps.db, input.userId, input.creditTypeId)),

  ledger: serviceProcedure
    .input(ZLedgerQuerySchema)
    .use(requireSwitch("ledgerReads"))
    .query(({ ctx, input }) => listLedger(ctx.deps.db, input)),
});

export type CreditRouterInput = z.input<typeof ZBalanceChangeRequestSchema>;
