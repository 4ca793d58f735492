import { z } from "zod";
import { createCallerFactory, createTRPCRouter, serviceProcedure } from "~/server/api/trpc";
import { createContextInner } from "~/server/api/context";
import { admission } from "~/server/api/middleware/admission";
import { AppError } from "~/server/infra/app-error";
import type { Deps } from "~/server/infra/deps";
import { makeApiKey } from "./api";

/**
 * Test support for admission control: a procedure guarded like
 * `credit.deduct`, whose outcome the test picks.
 */
export const guardedRouter = createTRPCRouter({
  guarded: serviceProcedure
    .input(
      z
        .object({
          userId: z.string(),
          creditTypeId: z.string(),
          outcome: z.enum(["ok", "infra", "business", "raw"]).default("ok"),
        })
        .strict(),
    )
    .use(admission("credit.deduct"))
    .mutation(async ({ ctx, input }) => {
      await ctx.deps.failpoints.hit("breaker.infraFailure");
      if (input.outcome === "infra") throw new AppError("UNAVAILABLE", "the database is unavailable");
      if (input.outcome === "business") throw new AppError("INSUFFICIENT_BALANCE", "balance too low");
      if (input.outcome === "raw") throw new Error("a bug");
      return { ok: true as const };
    }),
});

export async function guardedCaller(deps: Deps) {
  const key = await makeApiKey(deps);
  return createCallerFactory(guardedRouter)(createContextInner({ deps, authorization: `Bearer ${key}` }));
}

