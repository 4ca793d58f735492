import { z } from "zod";
import { adminProcedure, createTRPCRouter } from "../trpc";
import { ZReason, ZUuid } from "../schemas";
import { requestReplay } from "../middleware/request-replay";
import { ZApiKeyScope } from "~/server/identity/api-keys";
import { ZAdminRole, ZEmail, ZPassword } from "~/server/identity/admin-users";
import { auditActorOf } from "~/server/identity/principal";
import {
  changeAdminUser,
  createAdminUserAudited,
  createApiKeyAudited,
  listAdminUsers,
  listApiKeys,
  revokeApiKeyAudited,
} from "~/server/identity/access-admin";

const caller = (ctx: { admin: Parameters<typeof auditActorOf>[0]; requestId: string }) => ({ actor: auditActorOf(ctx.admin), requestId: ctx.requestId });

export const apiKeyRouter = createTRPCRouter({
  list: adminProcedure.input(z.object({}).strict().optional()).query(({ ctx }) => listApiKeys(ctx.deps)),

  create: adminProcedure
    .input(z.object({ name: z.string().trim().min(1).max(100), scopes: z.array(ZApiKeyScope).max(5).default([]), reason: ZReason }).strict())
    .use(requestReplay)
    .mutation(({ ctx, input }) => createApiKeyAudited(ctx.deps, input, caller(ctx))),

  revoke: adminProcedure
    .input(z.object({ id: ZUuid, reason: ZReason }).strict())
    .use(requestReplay)
    .mutation(({ ctx, input }) => revokeApiKeyAudited(ctx.deps, input, caller(ctx))),
});

export const adminUserRouter = createTRPCRouter({
  list: adminProcedure.input(z.object({}).strict().optional()).query(({ ctx }) => listAdminUsers(ctx.deps)),

  create: adminProcedure
    .input(z.object({ email: ZEmail, password: ZPassword, role: ZAdminRole, reason: ZReason }).strict())
    .use(requestReplay)
    .mutation(({ ctx, input }) => createAdminUserAudited(ctx.deps, input, caller(ctx))),

  setRole: adminProcedure
    .input(z.object({ id: ZUuid, role: ZAdminRole, reason: ZReason }).strict())
    .use(requestReplay)
    .mutation(({ ctx, input }) => changeAdminUser(ctx.deps, input, caller(ctx))),

  disable: adminProcedure
    .input(z.object({ id: ZUuid, reason: ZReason }).strict())
    .use(requestReplay)
    .mutation(({ ctx, input }) => changeAdminUser(ctx.deps, { ...input, disable: true }, caller(ctx))),
});
