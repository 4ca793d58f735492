import { z } from "zod";
import { createTRPCRouter, serviceProcedure } from "../trpc";
import { requestReplay } from "../middleware/request-replay";

export const systemRouter = createTRPCRouter({
  /** Authenticated no-op: the floor of the API's cost, used by the benchmarks. */
  ping: serviceProcedure
    .input(z.object({}).strict().optional())
    .use(requestReplay)
    .mutation(() => ({ ok: true as const })),
});
