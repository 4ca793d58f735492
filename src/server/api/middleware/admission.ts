import type { Deps } from "~/server/infra/deps";
import { checkRateLimit } from "~/server/resilience/rate-limit";
import { admitCall, isInfrastructureFailure, recordOutcome, type CircuitName } from "~/server/resilience/circuit-breaker";
import { assertSwitchOn, type SwitchName } from "~/server/resilience/switches";
import { middleware } from "../trpc";

/**
 * Admission control as tRPC middlewares, applied after input parsing and the
 * request-id replay (a replayed result costs no token and no probe):
 *
 *   serviceProcedure.input(Z…).use(requestReplay).use(admission("credit.deduct"))
 *
 * Order inside `admission`: token bucket first (a refused call never takes a
 * half-open probe slot), then the circuit breaker around the rest of the call.
 */

/** Whose bucket a call takes from. */
export type BucketRef = { userId: string; creditTypeId: string };
/**
 * Picks the bucket from the parsed input; null = this call is not limited.
 * May look something up (e.g. a flash-sale item's credit type in the cache).
 */
export type BucketOf = (input: unknown, deps: Deps) => BucketRef | null | Promise<BucketRef | null>;

/**
 * `{userId, creditTypeId}` from the input. Without a credit type (e.g. a
 * purchase, whose item decides it) the user's calls share the bucket `any`.
 */
export const bucketOfInput = (input: unknown): BucketRef | null => {
  if (!input || typeof input !== "object") return null;
  const { userId, creditTypeId } = input as { userId?: unknown; creditTypeId?: unknown };
  if (typeof userId !== "string") return null;
  return { userId, creditTypeId: typeof creditTypeId === "string" ? creditTypeId : "any" };
};

export type AdmissionOptions = { bucket?: BucketOf };

/** Rate limit, then circuit breaker `name`: the admission control of a protected operation. */
export function admission(name: CircuitName, opts: AdmissionOptions = {}) {
  const bucketOf = opts.bucket ?? bucketOfInput;
  return middleware(async ({ ctx, path, input, next }) => {
    const ref = await bucketOf(input, ctx.deps);
    if (ref) await checkRateLimit(ctx.deps, { procedure: path, ...ref });
    const ticket = await admitCall(ctx.deps, name);
    const result = await next();
    // A business refusal is a healthy answer of the dependency: only infrastructure failures count.
    const failed = !result.ok && isInfrastructureFailure(result.error);
    await recordOutcome(ctx.deps, ticket, failed ? "failure" : "success");
    return result;
  });
}

/** The procedure answers 503 DEGRADED while the degradation switch `name` is off. */
export function requireSwitch(name: SwitchName) {
  return middleware(async ({ ctx, path, next }) => {
    await assertSwitchOn(ctx.deps, name, path);
    return next();
  });
}
