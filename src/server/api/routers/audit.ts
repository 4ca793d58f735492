import { z } from "zod";
import { createTRPCRouter, viewerProcedure } from "../trpc";
import { ZCursor, ZPageFields } from "../schemas";
import { listAudit } from "~/server/audit/audit-log";

export const auditRouter = createTRPCRouter({
  list: viewerProcedure
    .input(
      z
        .object({ ...ZPageFields, cursor: z.string().regex(/^\d{1,19}$/).pipe(ZCursor).optional() })
        .strict()
        .default({ limit: 20 }),
    )
    .query(({ ctx, input }) => listAudit(ctx.deps.db, input)),
});
