import type pg from "pg";
import { AppError } from "./app-error";
import { namedStatementsOf, poolOf, txTimeoutOf, type Db, type Tx } from "./db";

/**
 * Hand-written set-based statements (the balance engine's) run through a
 * `SqlRunner`: on the pg pool beneath Prisma's adapter (the same connections
 * Prisma uses), or on Prisma's raw queries. docs/architecture.md says which is
 * used and why; `scripts/bench/driver.ts` measures both.
 */
export type Query = <T = Record<string, unknown>>(text: string | Statement, values?: readonly unknown[]) => Promise<T[]>;

/**
 * A statement run many times: on the pg pool it is prepared once per
 * connection under its name (PostgreSQL parses and plans it once), which
 * matters for the engine's long set-based statements.
 */
export type Statement = { name: string; text: string };

const textOf = (s: string | Statement): string => (typeof s === "string" ? s : s.text);
const queryConfig = (named: boolean) => (s: string | Statement, values?: readonly unknown[]): pg.QueryConfig =>
  typeof s === "string" || !named ? { text: textOf(s), values: values as unknown[] | undefined } : { name: s.name, text: s.text, values: values as unknown[] | undefined };

export type SqlRunner = {
  /** One statement on its own (autocommit). */
  query: Query;
  /** `fn` inside BEGIN … COMMIT on one connection; ROLLBACK when it throws. */
  transaction<T>(fn: (query: Query) => Promise<T>): Promise<T>;
};

/**
 * Runs on the pg pool directly: one round trip per statement, no engine in
 * between. A transaction still running after `txTimeoutMs` is rolled back
 * instead of committed late (each statement is bounded by the pool's
 * statement timeout; this bounds the whole, pauses of the process included).
 */
export function pgRunner(pool: pg.Pool, opts: { txTimeoutMs: number; namedStatements?: boolean }): SqlRunner {
  // Behind a transaction-mode pooler a name prepared on one server connection
  // is unknown on the next: every statement goes unnamed (parsed each time).
  const pgQuery = queryConfig(opts.namedStatements ?? true);
  const query: Query = async <T>(text: string | Statement, values?: readonly unknown[]) =>
    (await pool.query(pgQuery(text, values))).rows as T[];
  return {
    query,
    async transaction<T>(fn: (q: Query) => Promise<T>): Promise<T> {
      const client = await pool.connect();
      let broken: Error | undefined;
      const onError = (e: Error) => {
        broken = e;
      };
      client.on("error", onError);
      try {
        const deadline = performance.now() + opts.txTimeoutMs;
        await client.query("BEGIN");
        const q: Query = async <R>(text: string | Statement, values?: readonly unknown[]) =>
          (await client.query(pgQuery(text, values))).rows as R[];
        const result = await fn(q);
        if (performance.now() > deadline) {
          throw new AppError("UNAVAILABLE", `the transaction ran past ${opts.txTimeoutMs} ms and was rolled back; retry shortly`, {
            retryAfterMs: 500,
          });
        }
        await client.query("COMMIT");
        return result;
      } catch (e) {
        // A connection that failed mid-transaction is discarded, not returned to the pool.
        if (!broken) await client.query("ROLLBACK").catch((re: unknown) => (broken = re as Error));
        throw e;
      } finally {
        client.removeListener("error", onError);
        client.release(broken ?? false);
      }
    },
  };
}

/** `Query` on a Prisma client or interactive transaction: statements that must commit with Prisma writes (audit rows). */
export function prismaQuery(client: Db | Tx): Query {
  return <T>(text: string | Statement, values: readonly unknown[] = []) => client.$queryRawUnsafe<T[]>(textOf(text), ...values);
}

/** Runs through Prisma's raw queries and interactive transactions (kept for measurement). */
export function prismaRunner(db: Db): SqlRunner {
  return {
    query: prismaQuery(db),
    transaction: <T>(fn: (q: Query) => Promise<T>) => db.$transaction((tx) => fn(prismaQuery(tx))),
  };
}

const runners = new WeakMap<Db, SqlRunner>();

/** The runner the engine uses for `db`. */
export function sqlOf(db: Db): SqlRunner {
  let r = runners.get(db);
  if (!r) {
    r = pgRunner(poolOf(db), { txTimeoutMs: txTimeoutOf(db), namedStatements: namedStatementsOf(db) });
    runners.set(db, r);
  }
  return r;
}
