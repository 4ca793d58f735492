import { z } from "zod";
import { createTRPCRouter, principalProcedure } from "../trpc";
import { ZBusinessId, ZId, ZUuid } from "../schemas";
import { REQUEST_ID_PATTERN } from "../context";
import { getOperationStatus } from "~/server/operations/status";
import { principalKey } from "~/server/identity/principal";

/** Exactly one way to name the operation; anything else (none, two, extra keys) is a VALIDATION error. */
export const ZOperationStatusQuery = z.union([
  z.object({ operationId: ZUuid }).strict(),
  z.object({ requestId: z.string().regex(REQUEST_ID_PATTERN, "1–128 of letters, digits and _.:-") }).strict(),
  z.object({ businessCode: ZId, businessId: ZBusinessId }).strict(),
]);

export const operationRouter = createTRPCRouter({
  status: principalProcedure({ role: "viewer" })
    .input(ZOperationStatusQuery)
    .query(({ ctx, input }) => getOperationStatus(ctx.deps, input, principalKey(ctx.principal))),
});
