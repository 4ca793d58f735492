import pg from "pg";
import { counterOf, getMetrics } from "./metrics";
import { PrismaPg } from "@prisma/adapter-pg";
import { Prisma, PrismaClient } from "~/generated/prisma/client";
import { AppError } from "./app-error";

export type Db = PrismaClient;
export type Tx = Prisma.TransactionClient;

/** A value for a Json column: plain JSON, with bigints (amounts, balances) as numbers. */
export function toJson(v: unknown): Prisma.InputJsonValue {
  return JSON.parse(JSON.stringify(v, (_k, val: unknown) => (typeof val === "bigint" ? Number(val) : val))) as Prisma.InputJsonValue;
}
export { Prisma };

export type DbOptions = {
  url: string;
  poolMax: number;
  /** How long a query waits for a pooled connection before failing. */
  poolWaitMs: number;
  statementTimeoutMs: number;
  txTimeoutMs: number;
  applicationName?: string;
  /**
   * `pgbouncer`: `url` is a PgBouncer pool in transaction mode. It refuses
   * unknown startup parameters and hands each transaction to whichever server
   * connection is free, so the time limits are not sent at connect (PgBouncer's
   * `connect_query` sets them on its server connections) and statements are
   * never prepared under a name (sql.ts).
   */
  pooler?: "none" | "pgbouncer";
};

/**
 * Prisma over the pg driver adapter, with every wait bounded: pool size, pool
 * wait, statement timeout, and a cap on idle-in-transaction so a stuck client
 * cannot hold a row lock for ever.
 */
export function createDb(opts: DbOptions): Db {
  const pool = new pg.Pool({
    connectionString: opts.url,
    max: opts.poolMax,
    connectionTimeoutMillis: opts.poolWaitMs,
    idleTimeoutMillis: 30_000,
    ...(opts.pooler === "pgbouncer"
      ? {}
      : {
          statement_timeout: opts.statementTimeoutMs,
          idle_in_transaction_session_timeout: Math.max(opts.txTimeoutMs * 2, 10_000),
        }),
    application_name: opts.applicationName ?? "flashpoints",
  });
  releaseDeadConnections(pool);
  // Every round of database work takes a connection: how often the process goes to PostgreSQL at all.
  const checkouts = counterOf(getMetrics().registry, "fp_db_checkouts_total", "PostgreSQL connections taken from the pool (each query or transaction takes one)", []);
  pool.on("acquire", () => checkouts.inc());
  // An idle connection the server ended (a restart, pg_terminate_backend, a
  // dropped network) is reported here; the pool has already discarded it and
  // the next checkout opens a new one. Without a listener, Node would treat
  // the event as an uncaught error and end the process.
  const idleLost = counterOf(getMetrics().registry, "fp_db_idle_connections_lost_total", "idle PostgreSQL connections the server ended (discarded by the pool)", []);
  pool.on("error", () => idleLost.inc());
  const adapter = new PrismaPg(pool, { disposeExternalPool: true });
  const db = new PrismaClient({
    adapter,
    transactionOptions: { maxWait: opts.poolWaitMs, timeout: opts.txTimeoutMs },
  });
  pools.set(db, { pool, txTimeoutMs: opts.txTimeoutMs, namedStatements: opts.pooler !== "pgbouncer" });
  return db;
}

const pools = new WeakMap<Db, { pool: pg.Pool; txTimeoutMs: number; namedStatements: boolean }>();

/**
 * The pg pool beneath a client made by `createDb`: the same connections,
 * for the statements that run faster on the driver itself (infra/sql.ts).
 */
export function poolOf(db: Db): pg.Pool {
  const entry = pools.get(db);
  if (!entry) throw new Error("this database client was not made by createDb");
  return entry.pool;
}

/** Whether statements may be prepared under a name (not behind a transaction-mode pooler). */
export function namedStatementsOf(db: Db): boolean {
  return pools.get(db)?.namedStatements ?? true;
}

/** The transaction time limit a client made by `createDb` was given. */
export function txTimeoutOf(db: Db): number {
  return pools.get(db)?.txTimeoutMs ?? 5000;
}

/**
 * When the server ends a connection that a transaction holds (a cut network,
 * `pg_terminate_backend`, a restart), the driver adapter never gives it back
 * to the pool, and each such cut would cost the process one pool slot for
 * good. So a checked-out connection that ends is released (and discarded) at
 * once, and the adapter's own later release becomes a no-op.
 */
function releaseDeadConnections(pool: pg.Pool): void {
  type Release = (err?: Error | boolean) => void;
  const connect = pool.connect.bind(pool) as (...args: unknown[]) => unknown;
  const guarded = (...args: unknown[]): unknown => {
    if (args.length > 0) return connect(...args); // callback form: pool.query's own checkout
    return (connect() as Promise<pg.PoolClient>).then((client) => {
      const release = client.release.bind(client) as Release;
      let released = false;
      const onEnd = () => {
        if (released) return;
        released = true;
        release(new Error("connection ended while checked out"));
      };
      client.once("end", onEnd);
      client.release = ((err?: Error | boolean) => {
        client.removeListener("end", onEnd);
        if (released) return;
        released = true;
        release(err);
      }) as pg.PoolClient["release"];
      return client;
    });
  };
  pool.connect = guarded as pg.Pool["connect"];
}

const RETRYABLE_PRISMA_CODES = new Set(["P1001", "P1002", "P1008", "P1017", "P2024", "P2028", "P2034"]);
const RETRYABLE_SQLSTATES = new Set([
  "57014", // statement timeout / cancelled
  "57P01", // admin shutdown (pg_terminate_backend)
  "57P03", // cannot connect now (starting up, shutting down, a replica not yet consistent)
  "40001", // serialization failure
  "40P01", // deadlock
  "08000", // connection exception
  "08003", // connection does not exist
  "08006", // connection failure
  "25P03", // idle-in-transaction timeout
]);

/** Unique-key violation (P2002), optionally on a given constraint/target column. */
export function isUniqueViolation(e: unknown): boolean {
  if (e instanceof Prisma.PrismaClientKnownRequestError && e.code === "P2002") return true;
  return pgCode(e) === "23505";
}

export function isForeignKeyViolation(e: unknown): boolean {
  return pgCode(e) === "23503";
}

export function isCheckViolation(e: unknown): boolean {
  return pgCode(e) === "23514" || (e instanceof Error && /violates check constraint/.test(e.message));
}

type ErrorShape = {
  code?: unknown;
  originalCode?: unknown;
  cause?: unknown;
  meta?: { code?: unknown; driverAdapterError?: { cause?: unknown } };
};

/**
 * The SQLSTATE behind an error, wherever this stack puts it: pg's `code`,
 * Prisma's `meta.code`, or — for raw queries through the driver adapter (P2010)
 * — `meta.driverAdapterError.cause.originalCode`.
 */
function pgCode(e: unknown): string | undefined {
  let cur: unknown = e;
  for (let i = 0; i < 6 && cur && typeof cur === "object"; i++) {
    const c = cur as ErrorShape;
    if (typeof c.originalCode === "string") return c.originalCode;
    if (typeof c.code === "string" && /^[0-9A-Z]{5}$/.test(c.code) && !c.code.startsWith("P")) return c.code;
    if (typeof c.meta?.code === "string") return c.meta.code;
    cur = c.meta?.driverAdapterError?.cause ?? c.cause;
  }
  return undefined;
}

/**
 * This process's own overload: every pooled connection busy past the pool wait
 * (pg-pool's checkout timeout, Prisma's transaction `maxWait`). Not a failure
 * of PostgreSQL, so no circuit breaker counts it.
 */
function isLocalOverload(e: unknown, prismaCode: string | undefined, message: string): boolean {
  return (
    prismaCode === "P2024" ||
    /timeout exceeded when trying to connect|Unable to start a transaction in the given time/i.test(message) ||
    (e instanceof Error && e.cause !== undefined && e.cause !== e && isLocalOverload(e.cause, undefined, String((e.cause as Error).message ?? "")))
  );
}

/**
 * Turns a database failure that is about the infrastructure (pool exhausted,
 * transaction timeout, connection lost, statement timeout) into a typed,
 * retryable error; anything else is returned unchanged. A pool that stayed
 * busy is marked `details.overload`: it says this process is saturated, not
 * that the database failed.
 */
export function mapDbError(e: unknown): unknown {
  if (e instanceof AppError) return e;
  const prismaCode = e instanceof Prisma.PrismaClientKnownRequestError ? e.code : undefined;
  const sqlState = pgCode(e);
  const message = e instanceof Error ? e.message : String(e);
  if (isLocalOverload(e, prismaCode, message)) {
    return new AppError("UNAVAILABLE", "this instance is busy: every database connection is in use; retry shortly", {
      retryAfterMs: 500,
      details: { overload: "pool" },
      cause: e,
    });
  }
  const infra =
    (prismaCode !== undefined && RETRYABLE_PRISMA_CODES.has(prismaCode)) ||
    (sqlState !== undefined && RETRYABLE_SQLSTATES.has(sqlState)) ||
    e instanceof Prisma.PrismaClientInitializationError ||
    e instanceof Prisma.PrismaClientUnknownRequestError ||
    /Connection terminated|not queryable|ECONNREFUSED|ECONNRESET|terminating connection|Transaction already closed|Can't reach database server|the database system is (shutting down|starting up)/i.test(
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
