/**
 * The floor a deduction is compared with: the same debit written by hand on
 * the pg driver, nothing else in between (no HTTP, no lock, no operation row,
 * no outbox). A closed loop of `workers` sharing a pool of `connections`:
 *
 *   BEGIN;
 *   UPDATE accounts SET balance = balance - 1, version = version + 1
 *     WHERE id = $1 AND user_id = $2 AND balance >= 1 RETURNING balance;
 *   WITH e AS (INSERT INTO ledger_entries (…, type 'DEBIT', amount 1, balance_after, business_code, business_id) RETURNING id)
 *     INSERT INTO business_keys (…) SELECT … FROM e;       -- the key's global claim, as the engine writes it
 *   COMMIT;
 *
 * Both statements name the user, so each touches the user's partition only
 * (the tables are hash-partitioned by user_id), as a hand-written debit would.
 *
 * Each transaction has a business key of its own; the books stay right.
 */
import { performance } from "node:perf_hooks";
import pg from "pg";
import type { AccountRow } from "./accounts";
import { countInto, nextId, type ErrorMix, type RawRun } from "./lib";

export type BareSqlSpec = {
  pool: pg.Pool;
  /** Each transaction debits one of these, at random. */
  accounts: readonly AccountRow[];
  workers: number;
  seconds: number;
  businessCode: string;
};

const DEBIT = {
  name: "bench-debit",
  text: "UPDATE accounts SET balance = balance - 1, version = version + 1 WHERE id = $1 AND user_id = $2 AND balance >= 1 RETURNING balance",
};
const ENTRY = {
  name: "bench-entry",
  text: `WITH e AS (
           INSERT INTO ledger_entries (account_id, user_id, credit_type_id, type, amount, balance_after, business_code, business_id)
           VALUES ($1, $2, $3, 'DEBIT', 1, $4, $5, $6) RETURNING id
         )
         INSERT INTO business_keys (business_code, business_id, user_id, credit_type_id, type, amount, transaction_id)
         SELECT $5, $6, $2, $3, 'DEBIT', 1, e.id FROM e`,
};

/** A pool of the service's role on the run's database. */
export function sqlPool(url: string, connections: number): pg.Pool {
  return new pg.Pool({ connectionString: url, max: connections, application_name: "bench-bare-sql" });
}

/** Opens every connection of the pool before anything is timed. */
export async function warmPool(pool: pg.Pool, connections: number): Promise<void> {
  const clients = await Promise.all(Array.from({ length: connections }, () => pool.connect()));
  for (const c of clients) c.release();
}

export async function runBareSql(spec: BareSqlSpec): Promise<RawRun> {
  const errors: ErrorMix = {};
  const latenciesMs: number[] = [];
  let ok = 0;
  const started = performance.now();
  const deadline = started + spec.seconds * 1000;
  const worker = async () => {
    while (performance.now() < deadline) {
      const account = spec.accounts[Math.floor(Math.random() * spec.accounts.length)]!;
      const t0 = performance.now();
      const client = await spec.pool.connect();
      let broken = false;
      try {
        await client.query("BEGIN");
        const { rows } = await client.query<{ balance: string }>({ ...DEBIT, values: [account.id, account.userId] });
        const balance = rows[0]?.balance;
        if (balance === undefined) {
          await client.query("ROLLBACK");
          countInto(errors, "INSUFFICIENT_BALANCE");
        } else {
          await client.query({
            ...ENTRY,
            values: [account.id, account.userId, account.creditTypeId, balance, spec.businessCode, nextId("sql")],
          });
          await client.query("COMMIT");
          ok++;
        }
        latenciesMs.push(performance.now() - t0);
      } catch (e) {
        countInto(errors, `pg ${(e as { code?: string }).code ?? "error"}`);
        broken = await client.query("ROLLBACK").then(
          () => false,
          () => true,
        );
      } finally {
        client.release(broken);
      }
    }
  };
  await Promise.all(Array.from({ length: spec.workers }, worker));
  const seconds = (performance.now() - started) / 1000;
  return { seconds, calls: ok + Object.values(errors).reduce((a, b) => a + b, 0), ok, errors, latenciesMs };
}
