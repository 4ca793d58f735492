import { z } from "zod";
import { createTRPCRouter, serviceProcedure, viewerProcedure } from "../trpc";
import { readOverview } from "~/server/overview/overview";
import { requestReplay } from "../middleware/request-replay";

export const systemRouter = createTRPCRouter({
  /** Authenticated no-op: the floor of the API's cost, used by the benchmarks. */
  ping: serviceProcedure
    .input(z.object({}).strict().optional())
    .use(requestReplay)
    .mutation(() => ({ ok: true as const })),

  /** The dashboard's overview: the whole deployment's traffic over 15 minutes, breakers, refund queue, live sales. */
  overview: viewerProcedure.input(z.object({}).strict().optional()).query(({ ctx }) => readOverview(ctx.deps)),
});
