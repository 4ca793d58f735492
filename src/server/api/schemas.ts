import { z } from "zod";
import type { BalanceChangeRequest } from "~/server/credit/types";

/** Shared input building blocks; limits are the public contract's (docs/api.md, "Identifiers and limits"). */
const ID_CHARS = /^[A-Za-z0-9_.:-]+$/;
const idChars = "letters, digits and _.:- only";

export const ZId = z.string().min(1).max(64).regex(ID_CHARS, idChars);
export const ZBusinessId = z.string().min(1).max(128).regex(ID_CHARS, idChars);
export const ZUuid = z.uuid();
export const ZAmount = z
  .number()
  .int()
  .min(1)
  .max(1_000_000_000_000);
export const ZLimit = z.number().int().min(1).max(100).default(20);
export const ZCursor = z.string().min(1).max(200);
export const ZReason = z.string().trim().min(3, "say why, in at least 3 characters").max(500);

export const ZAccountRef = z.object({ userId: ZId, creditTypeId: ZId }).strict();

export const ZBalanceChangeRequestSchema = z
  .object({
    userId: ZId,
    creditTypeId: ZId,
    amount: ZAmount,
    businessCode: ZId,
    businessId: ZBusinessId,
  })
  .strict() satisfies z.ZodType<BalanceChangeRequest>;

export const ZRefundRequestSchema = z
  .object({
    transactionId: ZUuid,
    amount: ZAmount.optional(),
    businessCode: ZId,
    businessId: ZBusinessId,
  })
  .strict();

/** Most items in one `credit.batchDeduct` / `credit.batchGrant`. */
export const BALANCE_BATCH_ITEMS_MAX = 1000;

export const ZBalanceBatchSchema = z
  .object({ items: z.array(ZBalanceChangeRequestSchema).min(1).max(BALANCE_BATCH_ITEMS_MAX) })
  .strict();

/**
 * Keyset page fields shared by every list. `direction` is what tRPC's infinite
 * query helpers add to the input; pages only go forward.
 */
export const ZPageFields = {
  limit: ZLimit,
  cursor: ZCursor.optional(),
  direction: z.literal("forward").optional(),
};
