import { z } from "zod";
import { adminProcedure, createTRPCRouter, viewerProcedure } from "../trpc";
import { ZReason } from "../schemas";
import { getRateLimits, RATE_LIMIT_SCOPES, setRateLimits, ZRateLimits } from "~/server/resilience/rate-limit";
import { requestReplay } from "../middleware/request-replay";

export const rateLimitRouter = createTRPCRouter({
  get: viewerProcedure.input(z.object({}).strict().optional()).query(({ ctx }) => getRateLimits(ctx.deps)),

  set: adminProcedure
    .input(ZRateLimits.extend({ reason: ZReason, scope: z.enum(RATE_LIMIT_SCOPES).optional() }).strict())
    .use(requestReplay)
    .mutation(({ ctx, input }) => setRateLimits(ctx.deps, input, { actor: ctx.admin, requestId: ctx.requestId })),
});
