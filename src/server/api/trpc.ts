import { initTRPC, TRPCError } from "@trpc/server";
import type { Context } from "./context";
import { errorData, isMapped, toTRPCError } from "./error-map";
import { AppError } from "~/server/infra/app-error";
import { mapDbError } from "~/server/infra/db";
import { isRedisUnavailable, redisUnavailable } from "~/server/infra/redis";
import { roleAtLeast, type AdminRole } from "~/server/identity/admin-users";
import type { ApiKeyScope } from "~/server/identity/api-keys";
import type { Principal } from "~/server/identity/principal";
import type { ServicePrincipal } from "~/server/identity/api-keys";
import { checkKeyRateLimit } from "~/server/resilience/rate-limit";
import { trafficStats } from "~/server/infra/traffic-stats";

/** Procedure metadata: who may call it, as docs/api.md says (generated from it). */
export type ProcedureMeta = { access: string };

const t = initTRPC.context<Context>().meta<ProcedureMeta>().create({
  // Stacks never go on the wire (the formatter below drops them), so they are never even formatted.
  isDev: false,
  errorFormatter({ shape, error }) {
    const data = errorData(error);
    const internal = data.appCode === "INTERNAL";
    return {
      ...shape,
      // A bug's details stay in the log (with the request id), not on the wire.
      message: internal
        ? "internal error; the request id identifies it in the logs"
        : data.zodError
          ? `invalid input: ${data.zodError.map((i) => `${i.path.join(".") || "(input)"}: ${i.message}`).join("; ")}`
          : shape.message,
      data: {
        code: shape.data.code,
        httpStatus: shape.data.httpStatus,
        path: shape.data.path,
        ...data,
      },
    };
  },
});

export const createTRPCRouter = t.router;
export const createCallerFactory = t.createCallerFactory;
export const middleware = t.middleware;

/**
 * Outermost middleware: typed errors become tRPC errors with the right status,
 * infrastructure failures become retryable UNAVAILABLE, everything is counted
 * and timed, and bugs are logged with the request id.
 */
const observed = t.middleware(async ({ ctx, path, next }) => {
  const started = process.hrtime.bigint();
  // Domain code logs through deps.log: hand it the request's logger, so every
  // line carries the request id.
  const result = await next({ ctx: { deps: { ...ctx.deps, log: ctx.log } } });
  let outcome = "ok";
  if (!result.ok) {
    const err = result.error;
    let cause: unknown = err.cause ?? err;
    if (!(cause instanceof AppError)) {
      const mapped = isRedisUnavailable(cause) ? redisUnavailable(cause) : mapDbError(cause);
      if (mapped instanceof AppError) cause = mapped;
    }
    if (cause instanceof AppError) {
      outcome = cause.code;
      if (cause.code === "INTERNAL" || cause.code === "UNAVAILABLE") ctx.log.error({ err: cause, path }, cause.message);
      const seconds = Number(process.hrtime.bigint() - started) / 1e9;
      ctx.deps.metrics.requests.inc({ procedure: path, outcome });
      ctx.deps.metrics.latency.observe({ procedure: path, outcome }, seconds);
      trafficStats(ctx.deps).record(path, outcome, seconds * 1000);
      // Thrown already mapped (toTRPCError): passed on as it is, not wrapped again.
      if (isMapped(err, cause)) return result;
      throw toTRPCError(cause);
    }
    outcome = errorData(err).appCode;
    if (outcome === "INTERNAL") ctx.log.error({ err: err.cause ?? err, path }, "unhandled error");
  }
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  ctx.deps.metrics.requests.inc({ procedure: path, outcome });
  ctx.deps.metrics.latency.observe({ procedure: path, outcome }, seconds);
  trafficStats(ctx.deps).record(path, outcome, seconds * 1000);
  return result;
});

export const publicProcedure = t.procedure.use(observed).meta({ access: "anyone" });

/**
 * Every call of a service key takes a token from that key's budget first, so
 * one key's flood (batched or not) is refused before it reaches the pools.
 */
async function admitKey(ctx: Context, path: string, service: ServicePrincipal): Promise<void> {
  await checkKeyRateLimit(ctx.deps, { procedure: path, keyId: service.keyId, keyName: service.name });
}

/** Calls from other services: `Authorization: Bearer <api key>`. */
export const serviceProcedure = publicProcedure.meta({ access: "service key" }).use(async ({ ctx, path, next }) => {
  const principal = await ctx.servicePrincipal();
  if (!principal) throw new AppError("UNAUTHENTICATED", "a valid API key is required (Authorization: Bearer <key>)");
  await admitKey(ctx, path, principal);
  return next({ ctx: { principal } });
});

/**
 * A service key (holding `scope`, when one is named) or an admin session of at
 * least `role`: e.g. reads that services make and the dashboard shows.
 */
export function principalProcedure(opts: { scope?: ApiKeyScope; role: AdminRole }) {
  const { scope, role } = opts;
  const access = scope ? `service key with scope ${scope}, or ${role}` : `service key or ${role}`;
  return publicProcedure.meta({ access }).use(async ({ ctx, path, next }) => {
    const service = await ctx.servicePrincipal();
    if (service) {
      if (scope && !service.scopes.includes(scope)) throw new AppError("FORBIDDEN", `this API key lacks the "${scope}" scope`);
      await admitKey(ctx, path, service);
      return next({ ctx: { principal: service as Principal } });
    }
    const admin = await ctx.adminPrincipal();
    if (!admin) throw new AppError("UNAUTHENTICATED", "an API key or an admin session is required");
    if (!roleAtLeast(admin.role, role)) throw new AppError("FORBIDDEN", `requires the ${role} role`);
    return next({ ctx: { principal: admin as Principal } });
  });
}

function roleProcedure(required: AdminRole) {
  return publicProcedure.meta({ access: required }).use(async ({ ctx, next }) => {
    const admin = await ctx.adminPrincipal();
    if (!admin) throw new AppError("UNAUTHENTICATED", "sign in first");
    // The role is checked here, inside the procedure chain, never by a proxy in front.
    if (!roleAtLeast(admin.role, required)) throw new AppError("FORBIDDEN", `requires the ${required} role`);
    return next({ ctx: { admin } });
  });
}

export const viewerProcedure = roleProcedure("viewer");
export const operatorProcedure = roleProcedure("operator");
export const adminProcedure = roleProcedure("admin");

export { TRPCError };
