import { z } from "zod";
import { createTRPCRouter, serviceProcedure } from "../trpc";
import { ZAccountRef, ZBalanceChangeRequestSchema } from "../schemas";
import { grantCredits } from "~/server/credit/grant";
import { getAccount } from "~/server/credit/accounts";

export const creditRouter = createTRPCRouter({
  grant: serviceProcedure
    .input(ZBalanceChangeRequestSchema)
    .mutation(({ ctx, input }) =>
      grantCredits(ctx.deps, input, { principal: `key:${ctx.principal.keyId}`, requestId: ctx.requestId }),
    ),

  account: serviceProcedure
    .input(ZAccountRef)
    .query(({ ctx, input }) => getAccount(ctx.deps.db, input.userId, input.creditTypeId)),
});

export type CreditRouterInput = z.input<typeof ZBalanceChangeRequestSchema>;
