import { createCallerFactory, createTRPCRouter } from "./trpc";
import { creditRouter } from "./routers/credit";
import { authRouter } from "./routers/auth";
import { auditRouter } from "./routers/audit";
import { systemRouter } from "./routers/system";
import { operationRouter } from "./routers/operation";
import { circuitRouter } from "./routers/circuit";
import { rateLimitRouter } from "./routers/rate-limit";
import { switchRouter } from "./routers/switch";
import { creditTypeRouter } from "./routers/credit-type";
import { refundRouter } from "./routers/refund";
import { flashSaleRouter } from "./routers/flash-sale";
import { adminUserRouter, apiKeyRouter } from "./routers/access";

export const appRouter = createTRPCRouter({
  credit: creditRouter,
  auth: authRouter,
  audit: auditRouter,
  system: systemRouter,
  operation: operationRouter,
  circuit: circuitRouter,
  rateLimit: rateLimitRouter,
  switch: switchRouter,
  creditType: creditTypeRouter,
  refund: refundRouter,
  flashSale: flashSaleRouter,
  apiKey: apiKeyRouter,
  adminUser: adminUserRouter,
});

export type AppRouter = typeof appRouter;

/** Server-side calls (server components, tests) through the same procedures and checks. */
export const createCaller = createCallerFactory(appRouter);
