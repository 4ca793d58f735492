import { z } from "zod";
import { createTRPCRouter, middleware, operatorProcedure, principalProcedure, serviceProcedure } from "../trpc";
import { toTRPCError } from "../error-map";
import { ZAmount, ZId, ZPageFields, ZReason } from "../schemas";
import { requestReplay } from "../middleware/request-replay";
import { admission, requireSwitch } from "../middleware/admission";
import { createActivity, getActivity, listActivities, liveStock, setActivityPaused } from "~/server/flash-sale/activities";
import { answerFromCache, purchase, type PurchaseRequest } from "~/server/flash-sale/purchase";
import { listRepairs } from "~/server/flash-sale/repairs";
import { auditActorOf, principalKey } from "~/server/identity/principal";

export const ACTIVITY_STATUSES = ["SCHEDULED", "ACTIVE", "ENDED", "PAUSED"] as const;

const ZInstant = z.iso.datetime({ offset: true }).transform((s) => new Date(s));

export const ZCreateActivitySchema = z
  .object({
    name: z.string().trim().min(1).max(200),
    startsAt: ZInstant,
    endsAt: ZInstant,
    items: z
      .array(
        z
          .object({
            name: z.string().trim().min(1).max(200),
            creditTypeId: ZId,
            pointsPrice: ZAmount,
            stock: z.number().int().min(0).max(1_000_000),
          })
          .strict(),
      )
      .min(1)
      .max(50),
    /** Recorded in the audit log. */
    reason: ZReason.optional(),
  })
  .strict()
  .refine((a) => a.endsAt.getTime() > a.startsAt.getTime(), { message: "endsAt must be after startsAt", path: ["endsAt"] });

export const ZPurchaseSchema = z.object({ userId: ZId, activityId: ZId, itemId: ZId }).strict();

/**
 * What this process already knows answers before admission control: the
 * sold-out flood costs no token, no breaker call and no Redis round trip.
 */
const answerKnown = middleware(async ({ ctx, input, next }) => {
  const known = await answerFromCache(ctx.deps, input as PurchaseRequest);
  // Mapped here, so tRPC does not wrap it first: the flood's refusal makes no stack at all.
  if (known) throw toTRPCError(known);
  return next();
});

const readProcedure = principalProcedure({ role: "viewer" });

export const flashSaleRouter = createTRPCRouter({
  createActivity: principalProcedure({ scope: "catalog", role: "operator" })
    .input(ZCreateActivitySchema)
    .use(requestReplay)
    .mutation(({ ctx, input }) => createActivity(ctx.deps, input, { actor: auditActorOf(ctx.principal), requestId: ctx.requestId })),

  activity: readProcedure.input(z.object({ activityId: ZId }).strict()).query(({ ctx, input }) => getActivity(ctx.deps, input.activityId)),

  liveStock: readProcedure
    .input(z.object({ activityId: ZId }).strict())
    .query(({ ctx, input }) => liveStock(ctx.deps, input.activityId)),

  list: readProcedure
    .input(z.object({ status: z.enum(ACTIVITY_STATUSES).optional(), ...ZPageFields }).strict().default({ limit: 20 }))
    .query(({ ctx, input }) => ctx.deps.reads.run((db) => listActivities({ db, clock: ctx.deps.clock }, input))),

  /** The reconciler's reports (Redis set right from Postgres), newest first; optionally of one sale. */
  repairs: readProcedure
    .input(
      z
        .object({
          activityId: ZId.optional(),
          ...ZPageFields,
          cursor: z.string().regex(/^\d{1,18}$/, "cursor is not one this service returned").optional(),
        })
        .strict()
        .default({ limit: 20 }),
    )
    .query(({ ctx, input }) => listRepairs(ctx.deps, input)),

  purchase: serviceProcedure
    .input(ZPurchaseSchema)
    .use(requestReplay)
    .use(requireSwitch("flashSalePurchases"))
    .use(answerKnown)
    .use(admission("flashSale.purchase"))
    .mutation(({ ctx, input }) =>
      purchase(ctx.deps, input, { principal: principalKey(ctx.principal), requestId: ctx.requestId, record: ctx.requestRecord }),
    ),

  pause: operatorProcedure
    .input(z.object({ activityId: ZId, reason: ZReason }).strict())
    .use(requestReplay)
    .mutation(({ ctx, input }) =>
      setActivityPaused(ctx.deps, { ...input, paused: true }, { actor: auditActorOf(ctx.admin), requestId: ctx.requestId }),
    ),

  resume: operatorProcedure
    .input(z.object({ activityId: ZId, reason: ZReason }).strict())
    .use(requestReplay)
    .mutation(({ ctx, input }) =>
      setActivityPaused(ctx.deps, { ...input, paused: false }, { actor: auditActorOf(ctx.admin), requestId: ctx.requestId }),
    ),
});
