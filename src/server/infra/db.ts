import { PrismaPg } from "@prisma/adapter-pg";
import { Prisma, PrismaClient } from "~/generated/prisma/client";
import { AppError } from "./app-error";

export type Db = PrismaClient;
export type Tx = Prisma.TransactionClient;
export { Prisma };

export type DbOptions = {
  url: string;
  poolMax: number;
  /** How long a query waits for a pooled connection before failing. */
  poolWaitMs: number;
  statementTimeoutMs: number;
  txTimeoutMs: number;
  applicationName?: string;
};

/**
 * Prisma over the pg driver adapter, with every wait bounded: pool size, pool
 * wait, statement timeout, and a cap on idle-in-transaction so a stuck client
 * cannot hold a row lock for ever.
 */
export function createDb(opts: DbOptions): Db {
  const adapter = new PrismaPg({
    connectionString: opts.url,
    max: opts.poolMax,
    connectionTimeoutMillis: opts.poolWaitMs,
    idleTimeoutMillis: 30_000,
    statement_timeout: opts.statementTimeoutMs,
    idle_in_transaction_session_timeout: Math.max(opts.txTimeoutMs * 2, 10_000),
    application_name: opts.applicationName ?? "flashpoints",
  });
  return new PrismaClient({
    adapter,
    transactionOptions: { maxWait: opts.poolWaitMs, timeout: opts.txTimeoutMs },
  });
}

const RETRYABLE_PRISMA_CODES = new Set(["P1001", "P1002", "P1008", "P1017", "P2024", "P2028", "P2034"]);

/** Unique-key violation (P2002), optionally on a given constraint/target column. */
export function isUniqueViolation(e: unknown): boolean {
  if (e instanceof Prisma.PrismaClientKnownRequestError && e.code === "P2002") return true;
  return pgCode(e) === "23505";
}

export function isCheckViolation(e: unknown): boolean {
  return pgCode(e) === "23514" || (e instanceof Error && /violates check constraint/.test(e.message));
}

function pgCode(e: unknown): string | undefined {
  let cur: unknown = e;
  for (let i = 0; i < 5 && cur && typeof cur === "object"; i++) {
    const c = cur as { code?: unknown; cause?: unknown; meta?: { code?: unknown } };
    if (typeof c.code === "string" && /^[0-9A-Z]{5}$/.test(c.code) && !c.code.startsWith("P")) return c.code;
    if (typeof c.meta?.code === "string") return c.meta.code;
    cur = c.cause;
  }
  return undefined;
}

/**
 * Turns a database failure that is about the infrastructure (pool exhausted,
 * transaction timeout, connection lost, statement timeout) into a typed,
 * retryable error; anything else is returned unchanged.
 */
export function mapDbError(e: unknown): unknown {
  if (e instanceof AppError) return e;
  const code =
    e instanceof Prisma.PrismaClientKnownRequestError ? e.code : (pgCode(e) ?? undefined);
  const message = e instanceof Error ? e.message : String(e);
  const infra =
    (code !== undefined && RETRYABLE_PRISMA_CODES.has(code)) ||
    code === "57014" || // statement timeout / cancel
    code === "57P01" || // admin shutdown (pg_terminate_backend)
    code === "40001" || // serialization failure
    code === "40P01" || // deadlock
    code === "08006" ||
    code === "08003" ||
    e instanceof Prisma.PrismaClientInitializationError ||
    e instanceof Prisma.PrismaClientUnknownRequestError ||
    /timeout exceeded when trying to connect|Connection terminated|ECONNREFUSED|ECONNRESET|terminating connection|Transaction already closed|Unable to start a transaction/i.test(
      message,
    );
  if (infra) {
    return new AppError("UNAVAILABLE", "the database is unavailable or overloaded; retry shortly", {
      retryAfterMs: 500,
      cause: e,
    });
  }
  return e;
}
