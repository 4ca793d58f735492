import { z } from "zod";
import { adminProcedure, createTRPCRouter, operatorProcedure, viewerProcedure } from "../trpc";
import { ZReason } from "../schemas";
import { listCircuits, ZCircuitConfig, ZCircuitName, ZCircuitState } from "~/server/resilience/circuit-breaker";
import { forceCircuit, getCircuitConfig, resetCircuit, setCircuitConfig } from "~/server/resilience/circuit-control";
import { requestReplay } from "../middleware/request-replay";

export const circuitRouter = createTRPCRouter({
  list: viewerProcedure.input(z.object({}).strict().optional()).query(({ ctx }) => listCircuits(ctx.deps)),

  force: operatorProcedure
    .input(z.object({ name: ZCircuitName, state: ZCircuitState, reason: ZReason }).strict())
    .use(requestReplay)
    .mutation(({ ctx, input }) => forceCircuit(ctx.deps, input, { actor: ctx.admin, requestId: ctx.requestId })),

  reset: operatorProcedure
    .input(z.object({ name: ZCircuitName, reason: ZReason }).strict())
    .use(requestReplay)
    .mutation(({ ctx, input }) => resetCircuit(ctx.deps, input, { actor: ctx.admin, requestId: ctx.requestId })),

  /** Thresholds shared by every breaker. */
  config: viewerProcedure.input(z.object({}).strict().optional()).query(({ ctx }) => getCircuitConfig(ctx.deps)),

  configure: adminProcedure
    .input(ZCircuitConfig.partial().extend({ reason: ZReason }).strict())
    .use(requestReplay)
    .mutation(({ ctx, input }) => setCircuitConfig(ctx.deps, input, { actor: ctx.admin, requestId: ctx.requestId })),
});
