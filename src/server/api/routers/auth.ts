import { z } from "zod";
import { createTRPCRouter, publicProcedure } from "../trpc";
import { ZEmail } from "~/server/identity/admin-users";
import { login } from "~/server/identity/login";
import { clearSessionCookie, revokeSession, sessionCookie } from "~/server/identity/sessions";

export const authRouter = createTRPCRouter({
  login: publicProcedure
    .input(z.object({ email: ZEmail, password: z.string().min(1).max(200) }).strict())
    .mutation(async ({ ctx, input }) => {
      const session = await login(ctx.deps, { ...input, ip: ctx.ip, userAgent: ctx.userAgent });
      ctx.setCookie?.(sessionCookie(session.token, ctx.deps.env.SESSION_TTL_S, ctx.secure));
      ctx.log.info({ email: session.user.email }, "admin signed in");
      return { user: session.user };
    }),

  logout: publicProcedure.input(z.object({}).strict().optional()).mutation(async ({ ctx }) => {
    const admin = await ctx.adminPrincipal();
    if (admin) await revokeSession(ctx.deps.db, ctx.deps.clock, admin.sessionId);
    ctx.setCookie?.(clearSessionCookie(ctx.secure));
    return { ok: true as const };
  }),

  /** The signed-in operator, or null. */
  me: publicProcedure.query(async ({ ctx }) => {
    const admin = await ctx.adminPrincipal();
    return admin ? { email: admin.email, role: admin.role } : null;
  }),
});
