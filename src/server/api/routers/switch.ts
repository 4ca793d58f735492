import { z } from "zod";
import { adminProcedure, createTRPCRouter, viewerProcedure } from "../trpc";
import { ZReason } from "../schemas";
import { listSwitches, setSwitch, ZSwitchName } from "~/server/resilience/switches";
import { requestReplay } from "../middleware/request-replay";

export const switchRouter = createTRPCRouter({
  list: viewerProcedure.input(z.object({}).strict().optional()).query(({ ctx }) => listSwitches(ctx.deps)),

  set: adminProcedure
    .input(z.object({ name: ZSwitchName, on: z.boolean(), reason: ZReason }).strict())
    .use(requestReplay)
    .mutation(({ ctx, input }) => setSwitch(ctx.deps, input, { actor: ctx.admin, requestId: ctx.requestId })),
});
