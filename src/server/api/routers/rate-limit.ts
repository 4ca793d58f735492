import { z } from "zod";
import { adminProcedure, createTRPCRouter, viewerProcedure } from "../trpc";
import { ZReason } from "../schemas";
import { getRateLimits, setRateLimits } from "~/server/resilience/token-bucket";
import { ZRateLimits } from "~/server/resilience/settings";

export const rateLimitRouter = createTRPCRouter({
  get: viewerProcedure.input(z.object({}).strict().optional()).query(({ ctx }) => getRateLimits(ctx.deps)),

  set: adminProcedure
    .input(ZRateLimits.extend({ reason: ZReason }).strict())
    .mutation(({ ctx, input }) => setRateLimits(ctx.deps, input, { actor: ctx.admin, requestId: ctx.requestId })),
});
