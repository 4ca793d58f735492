/**
 * The refund queue's drain rate: the production worker (`dist/worker.js`)
 * running, 1,000 refunds queued in one transaction (each of a 1-point debit
 * of a spread account, queued the way the service queues them), and the time
 * from that commit until all 1,000 are SUCCEEDED. Three drains; the median
 * counts.
 */
import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import type pg from "pg";
import { enqueueRefund } from "../../src/server/refund/refund-queue";
import type { Query } from "../../src/server/infra/sql";
import { CREDIT_TYPE, HOT_USER } from "./accounts";
import { SERVER_ENV, sleep, stopChild, type BenchDb, type Teardown } from "./lib";

export const REFUNDS_PER_DRAIN = 1_000;
export const DRAINS = 3;

export type Drains = { seconds: number[]; median: number };

export async function measureRefundDrains(db: BenchDb, pool: pg.Pool, teardown: Teardown): Promise<Drains> {
  if (!existsSync("dist/worker.js")) throw new Error("dist/worker.js is missing: run `npm run build`");
  const worker = spawn(process.execPath, ["dist/worker.js"], {
    env: { ...process.env, ...SERVER_ENV, LOG_LEVEL: "info", DATABASE_URL: db.url, REDIS_URL: db.redisUrl, REDIS_KEY_PREFIX: db.redisPrefix },
    stdio: ["ignore", "pipe", "inherit"],
  });
  const stop = () => stopChild(worker);
  teardown.add("stop the worker", stop);
  try {
    await started(worker);
    const seconds: number[] = [];
    for (let round = 0; round < DRAINS; round++) seconds.push(await drainOnce(pool, `bench.refund.${Date.now()}.${round}`));
    const sorted = [...seconds].sort((a, b) => a - b);
    return { seconds, median: sorted[Math.floor(sorted.length / 2)]! };
  } finally {
    await stop();
  }
}

function started(worker: ReturnType<typeof spawn>): Promise<void> {
  return new Promise((resolve, reject) => {
    let out = "";
    const timer = setTimeout(() => reject(new Error(`the worker did not start within 30 s:\n${out}`)), 30_000);
    worker.stdout!.on("data", (c: Buffer) => {
      if (out.length < 100_000) out += c.toString();
      if (out.includes('"msg":"worker started"')) {
        clearTimeout(timer);
        resolve();
      }
    });
    worker.once("exit", (code) => reject(new Error(`the worker exited with ${code}:\n${out}`)));
  });
}

/** Debits every spread account by 1, queues a refund of each, commits, and times the drain. */
async function drainOnce(pool: pg.Pool, tag: string): Promise<number> {
  const client = await pool.connect();
  try {
    await client.query("BEGIN");
    // Each debit claims its business key (business_keys), as the engine's do.
    const { rows } = await client.query<{ id: string; user_id: string }>(
      `WITH acc AS (
         UPDATE accounts SET balance = balance - 1, version = version + 1, updated_at = now()
         WHERE credit_type_id = $1 AND user_id <> $2 RETURNING id, user_id, credit_type_id, balance
       ), led AS (
         INSERT INTO ledger_entries (account_id, user_id, credit_type_id, type, amount, balance_after, business_code, business_id)
         SELECT id, user_id, credit_type_id, 'DEBIT', 1, balance, 'bench.refund-debit', $3 || ':' || user_id FROM acc
         RETURNING id, user_id, credit_type_id, type, amount, business_code, business_id
       ), claims AS (
         INSERT INTO business_keys (business_code, business_id, user_id, credit_type_id, type, amount, transaction_id)
         SELECT business_code, business_id, user_id, credit_type_id, type, amount, id FROM led
       )
       SELECT id, user_id FROM led`,
      [CREDIT_TYPE, HOT_USER, tag],
    );
    if (rows.length !== REFUNDS_PER_DRAIN) throw new Error(`expected ${REFUNDS_PER_DRAIN} debits, made ${rows.length}`);
    const q: Query = async <T>(text: string | { name: string; text: string }, values?: readonly unknown[]) =>
      (await client.query(typeof text === "string" ? { text, values: values as unknown[] } : { ...text, values: values as unknown[] })).rows as T[];
    const now = new Date();
    for (const r of rows) await enqueueRefund(q, { debitId: r.id, userId: r.user_id, reason: tag }, now);
    await client.query("COMMIT");
  } catch (e) {
    await client.query("ROLLBACK").catch(() => undefined);
    throw e;
  } finally {
    client.release();
  }
  const t0 = performance.now();
  for (;;) {
    const { rows } = await pool.query<{ n: number }>("SELECT count(*)::int AS n FROM refunds WHERE reason = $1 AND status = 'SUCCEEDED'", [tag]);
    if (rows[0]?.n === REFUNDS_PER_DRAIN) return (performance.now() - t0) / 1000;
    if (performance.now() - t0 > 60_000) throw new Error(`only ${rows[0]?.n ?? 0} of ${REFUNDS_PER_DRAIN} refunds applied within 60 s`);
    await sleep(10);
  }
}
