import { z } from "zod";
import { createTRPCRouter, principalProcedure } from "../trpc";
import { ZId } from "../schemas";
import { createCreditType, listCreditTypes } from "~/server/credit/credit-types";
import { auditActorOf } from "~/server/identity/principal";
import { requestReplay } from "../middleware/request-replay";

export const ZCreditTypeCreateSchema = z
  .object({
    id: ZId,
    name: z.string().trim().min(1).max(200),
    /** Recorded in the audit log. */
    reason: z.string().trim().min(3).max(500).optional(),
  })
  .strict();

export const creditTypeRouter = createTRPCRouter({
  list: principalProcedure({ role: "viewer" })
    .input(z.object({}).strict().optional())
    .query(({ ctx }) => listCreditTypes(ctx.deps.db)),

  create: principalProcedure({ scope: "catalog", role: "admin" })
    .input(ZCreditTypeCreateSchema)
    .use(requestReplay)
    .mutation(({ ctx, input }) =>
      createCreditType(
        ctx.deps,
        { id: input.id, name: input.name, reason: input.reason ?? "created through the API" },
        { actor: auditActorOf(ctx.principal), requestId: ctx.requestId },
      ),
    ),
});
