import { z } from "zod";
import { adminProcedure, createTRPCRouter, viewerProcedure } from "../trpc";
import { ZReason } from "../schemas";
import { getRateLimits, setRateLimits, ZRateLimits } from "~/server/resilience/rate-limit";

export const rateLimitRouter = createTRPCRouter({
  get: viewerProcedure.input(z.object({}).strict().optional()).query(({ ctx }) => getRateLimits(ctx.deps)),

  set: adminProcedure
    .input(ZRateLimits.extend({ reason: ZReason }).strict())
    .mutation(({ ctx, input }) => setRateLimits(ctx.deps, input, { actor: ctx.admin, requestId: ctx.requestId })),
});
