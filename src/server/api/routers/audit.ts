import { z } from "zod";
import { createTRPCRouter, viewerProcedure } from "../trpc";
import { ZCursor, ZPageFields } from "../schemas";
import { listAudit } from "~/server/audit/audit-log";

/** Audit ids are Postgres bigints. */
const MAX_BIGINT = 2n ** 63n - 1n;

export const auditRouter = createTRPCRouter({
  list: viewerProcedure
    .input(
      z
        .object({
          ...ZPageFields,
          cursor: z
            .string()
            .regex(/^\d{1,19}$/)
            .refine((c) => BigInt(c) <= MAX_BIGINT, "cursor is not one this service returned")
            .pipe(ZCursor)
            .optional(),
        })
        .strict()
        .default({ limit: 20 }),
    )
    .query(({ ctx, input }) => ctx.deps.reads.run((db) => listAudit(db, input))),
});
