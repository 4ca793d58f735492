/**
 * The run's data: a credit type, 1,000 accounts and one hot account, each
 * funded by one CREDIT ledger row (so balance = Σ ledger holds from the
 * start), an API key; and the books check run after every scenario.
 */
import pg from "pg";
import { createDb } from "../../src/server/infra/db";
import { createApiKey } from "../../src/server/identity/api-keys";

export const CREDIT_TYPE = "bench";
export const ACCOUNTS = 1000;
export const HOT_USER = "hot";
/** Opening balance of every account: far more than any run deducts, far below 2^53 − 1. */
export const OPENING_BALANCE = 1_000_000_000_000n;

export type AccountRow = { id: string; userId: string; creditTypeId: string };

export type Seeded = {
  apiKey: string;
  /** The 1,000 spread accounts, `u0` … `u999`. */
  spread: AccountRow[];
  hot: AccountRow;
};

/** `u0` … `u999`, uniformly at random. */
export function anySpreadUser(): string {
  return `u${Math.floor(Math.random() * ACCOUNTS)}`;
}

export async function seed(databaseUrl: string): Promise<Seeded> {
  const client = new pg.Client({ connectionString: databaseUrl });
  await client.connect();
  try {
    await client.query("BEGIN");
    await client.query("INSERT INTO credit_types (id, name) VALUES ($1, $1)", [CREDIT_TYPE]);
    await client.query(
      `INSERT INTO accounts (user_id, credit_type_id, balance, version)
       SELECT 'u' || g, $1, $2::bigint, 0 FROM generate_series(0, $3::int - 1) g
       UNION ALL SELECT $4, $1, $2::bigint, 0`,
      [CREDIT_TYPE, OPENING_BALANCE.toString(), ACCOUNTS, HOT_USER],
    );
    await client.query(
      `INSERT INTO ledger_entries (account_id, user_id, credit_type_id, type, amount, balance_after, business_code, business_id)
       SELECT id, user_id, credit_type_id, 'CREDIT', balance, balance, 'bench.open', user_id FROM accounts`,
    );
    // The opening credits claim their business keys, as the engine's do.
    await client.query(
      `INSERT INTO business_keys (business_code, business_id, user_id, credit_type_id, type, amount, transaction_id)
       SELECT business_code, business_id, user_id, credit_type_id, type, amount, id FROM ledger_entries WHERE business_code = 'bench.open'`,
    );
    await client.query("COMMIT");
    const { rows } = await client.query<{ id: string; user_id: string; credit_type_id: string }>(
      "SELECT id, user_id, credit_type_id FROM accounts WHERE credit_type_id = $1",
      [CREDIT_TYPE],
    );
    const all = rows.map((r) => ({ id: r.id, userId: r.user_id, creditTypeId: r.credit_type_id }));
    const hot = all.find((a) => a.userId === HOT_USER);
    if (!hot || all.length !== ACCOUNTS + 1) throw new Error(`seeding made ${all.length} accounts, expected ${ACCOUNTS + 1}`);
    return { apiKey: await newApiKey(databaseUrl), spread: all.filter((a) => a !== hot), hot };
  } finally {
    await client.end();
  }
}

/** A service key made the way the service makes them (so it authenticates as any other). */
async function newApiKey(databaseUrl: string): Promise<string> {
  const db = createDb({ url: databaseUrl, poolMax: 1, poolWaitMs: 5_000, statementTimeoutMs: 10_000, txTimeoutMs: 10_000 });
  try {
    return (await createApiKey(db, { name: "bench", scopes: [] })).key;
  } finally {
    await db.$disconnect();
  }
}

export type Books = {
  accounts: number;
  ledgerRows: number;
  debits: number;
  /** Accounts whose balance ≠ Σ credits − Σ debits, or < 0 (at most 20 listed). */
  mismatches: { userId: string; creditTypeId: string; balance: string; ledger: string }[];
  mismatchCount: number;
  ok: boolean;
};

/** For every account: balance = Σ credits − Σ debits of its ledger rows, and balance ≥ 0. */
export async function checkBooks(pool: pg.Pool): Promise<Books> {
  const { rows: totals } = await pool.query<{ accounts: string; rows: string; debits: string }>(
    `SELECT (SELECT count(*) FROM accounts)::text AS accounts,
            count(*)::text AS rows,
            count(*) FILTER (WHERE type = 'DEBIT')::text AS debits
     FROM ledger_entries`,
  );
  const { rows } = await pool.query<{ user_id: string; credit_type_id: string; balance: string; ledger: string; total: string }>(
    `WITH sums AS (
       SELECT account_id, sum(CASE WHEN type = 'CREDIT' THEN amount ELSE -amount END) AS net
       FROM ledger_entries GROUP BY account_id
     ), bad AS (
       SELECT a.user_id, a.credit_type_id, a.balance, COALESCE(s.net, 0) AS ledger
       FROM accounts a LEFT JOIN sums s ON s.account_id = a.id
       WHERE a.balance <> COALESCE(s.net, 0) OR a.balance < 0
     )
     SELECT user_id, credit_type_id, balance::text, ledger::text, (SELECT count(*) FROM bad)::text AS total
     FROM bad ORDER BY user_id LIMIT 20`,
  );
  const t = totals[0];
  const mismatchCount = Number(rows[0]?.total ?? 0);
  return {
    accounts: Number(t?.accounts ?? 0),
    ledgerRows: Number(t?.rows ?? 0),
    debits: Number(t?.debits ?? 0),
    mismatches: rows.map((r) => ({ userId: r.user_id, creditTypeId: r.credit_type_id, balance: r.balance, ledger: r.ledger })),
    mismatchCount,
    ok: mismatchCount === 0,
  };
}
