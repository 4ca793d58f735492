/**
 * The server of the admission scenario (started by scenarios.ts through tsx,
 * never on its own): one API process serving the same procedure with the
 * token bucket and the circuit breaker in front (`admission("credit.deduct")`:
 * two Redis Lua calls) and without, side by side, so that the only difference
 * between the two is the middleware (same router code, context, pools and warm
 * caches):
 *
 *   bench.deductOn / bench.deductOff   credit.deduct's work
 *   bench.pingOn   / bench.pingOff     an authenticated no-op
 *
 * Prints `{"url": …}` on stdout once listening; stops on SIGTERM.
 */
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { z } from "zod";
import { createHTTPHandler } from "@trpc/server/adapters/standalone";
import { loadEnv } from "../../src/server/infra/env";
import { closeDeps, createDeps } from "../../src/server/infra/deps";
import { waitForRedis } from "../../src/server/infra/redis";
import { createContextInner } from "../../src/server/api/context";
import { createTRPCRouter, serviceProcedure } from "../../src/server/api/trpc";
import { ZBalanceChangeRequestSchema } from "../../src/server/api/schemas";
import { admission } from "../../src/server/api/middleware/admission";
import { deductCredits } from "../../src/server/credit/deduct";

function benchRouter() {
  const deduct = serviceProcedure.input(ZBalanceChangeRequestSchema);
  const ping = serviceProcedure.input(z.object({ userId: z.string(), creditTypeId: z.string() }).strict());
  const caller = (ctx: { principal: { keyId: string }; requestId: string }) => ({
    principal: `key:${ctx.principal.keyId}`,
    requestId: ctx.requestId,
  });
  return createTRPCRouter({
    bench: createTRPCRouter({
      deductOn: deduct.use(admission("credit.deduct")).mutation(({ ctx, input }) => deductCredits(ctx.deps, input, caller(ctx))),
      deductOff: deduct.mutation(({ ctx, input }) => deductCredits(ctx.deps, input, caller(ctx))),
      pingOn: ping.use(admission("credit.deduct")).mutation(() => ({ ok: true as const })),
      pingOff: ping.mutation(() => ({ ok: true as const })),
    }),
  });
}

async function serve(): Promise<void> {
  const env = loadEnv();
  const deps = createDeps(env, {}, "bench-admission");
  await waitForRedis(deps.redis, 3_000);
  const handler = createHTTPHandler({
    router: benchRouter(),
    basePath: "/api/trpc/",
    createContext: ({ req }) => createContextInner({ deps, authorization: req.headers.authorization ?? null }),
  });
  const server = createServer((req, res) => void handler(req, res));
  server.keepAliveTimeout = 65_000;
  await new Promise<void>((r) => server.listen(Number(process.env.PORT ?? 0), "127.0.0.1", r));
  const { port } = server.address() as AddressInfo;
  process.stdout.write(`${JSON.stringify({ url: `http://127.0.0.1:${port}` })}\n`);
  const stop = () => {
    server.closeAllConnections();
    server.close(() => void closeDeps(deps).then(() => process.exit(0)));
  };
  process.once("SIGTERM", stop);
  process.once("SIGINT", stop);
}

serve().catch((e: unknown) => {
  console.error(e);
  process.exit(1);
});
