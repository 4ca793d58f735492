import { z } from "zod";
import { createTRPCRouter, operatorProcedure, viewerProcedure } from "../trpc";
import { ZPageFields, ZUuid } from "../schemas";
import { requestReplay } from "../middleware/request-replay";
import { listRefunds, resolveRefund, retryRefund } from "~/server/refund/refunds";
import { auditActorOf } from "~/server/identity/principal";

export const REFUND_STATUSES = ["PENDING", "RETRYING", "SUCCEEDED", "FAILED", "RESOLVED"] as const;

export const refundRouter = createTRPCRouter({
  list: viewerProcedure
    .input(z.object({ status: z.enum(REFUND_STATUSES).optional(), ...ZPageFields }).strict().default({ limit: 20 }))
    .query(({ ctx, input }) => ctx.deps.reads.run((db) => listRefunds(db, input))),

  retry: operatorProcedure
    .input(z.object({ refundId: ZUuid, reason: z.string().trim().min(3).max(500) }).strict())
    .use(requestReplay)
    .mutation(({ ctx, input }) => retryRefund(ctx.deps, input, { actor: auditActorOf(ctx.admin), requestId: ctx.requestId })),

  resolve: operatorProcedure
    .input(z.object({ refundId: ZUuid, reason: z.string().trim().min(3).max(500) }).strict())
    .use(requestReplay)
    .mutation(({ ctx, input }) =>
      resolveRefund(ctx.deps, input, { actor: auditActorOf(ctx.admin), requestId: ctx.requestId }),
    ),
});
