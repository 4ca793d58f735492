import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type pg from "pg";
import { closeDeps, createTestDeps, uid } from "~/test/deps";
import { ensureCreditType, serviceCaller } from "~/test/api";
import type { Deps } from "~/server/infra/deps";
import { poolOf } from "~/server/infra/db";
import { sqlOf } from "~/server/infra/sql";
import { createActivity } from "~/server/flash-sale/activities";
import { purchase } from "~/server/flash-sale/purchase";
import { claimDueRefunds, enqueueRefund } from "~/server/refund/refund-queue";
import { attemptRefund, leaseUntil } from "~/server/refund/refund-attempt";
import { getOperationStatus } from "~/server/operations/status";
import { BalanceEngine } from "./balance-engine";
import { batchGrant } from "./batch";
import { getAccount } from "./accounts";
import { deductCredits } from "./deduct";
import { grantCredits } from "./grant";
import { listLedger } from "./ledger";
import { refundDebit } from "./refund";
import { NO_RATE_LIMIT } from "./testing";
import type { BalanceChange } from "./types";

/**
 * docs/architecture.md, "Partitioning": the per-user tables are hash
 * partitioned by user_id, and every hot query names its user so PostgreSQL
 * reads one partition. These tests run the service's own calls, capture every
 * statement they send to PostgreSQL (text and bound values, on the pool the
 * engine and Prisma share), and EXPLAIN each one with the same values: only
 * the user's partition of each table may appear. A negative control shows
 * the same statement without its user predicate reading every partition.
 */

const PARTITIONED = ["accounts", "ledger_entries", "operations", "refunds", "flash_sale_orders"] as const;
type Partitioned = (typeof PARTITIONED)[number];
const PARTITION_NAME = new RegExp(`^(${PARTITIONED.join("|")})_p(\\d+)$`);

/** What the migration was asked for: flashpoints.partitions in PGOPTIONS when the test database was migrated, else 8. */
function expectedPartitions(): number {
  const m = /flashpoints\.partitions=(\d+)/.exec(process.env.PGOPTIONS ?? "");
  return m ? Number(m[1]) : 8;
}

type Captured = { text: string; values: unknown[] };

/**
 * Records every statement sent through the pool while `fn` runs, on the
 * clients the pool hands out: autocommit ones (pool.query, as Prisma's
 * adapter and the engine send them, checks a client out too) and those of
 * transactions.
 */
async function capture(pool: pg.Pool, fn: () => Promise<unknown>): Promise<Captured[]> {
  const seen: Captured[] = [];
  type AnyQuery = (...args: unknown[]) => unknown;
  type Connect = (cb?: (err: Error | undefined, client: pg.PoolClient | undefined, done: unknown) => void) => unknown;
  const wrapped = new Map<pg.PoolClient, AnyQuery>();
  const wrap = (client: pg.PoolClient | undefined) => {
    if (!client || wrapped.has(client)) return;
    const own = client.query.bind(client) as unknown as AnyQuery;
    wrapped.set(client, own);
    (client as unknown as { query: AnyQuery }).query = (...args: unknown[]) => {
      const [config, values] = args;
      if (typeof config === "string") seen.push({ text: config, values: Array.isArray(values) ? values : [] });
      else if (config && typeof config === "object" && "text" in config) {
        const c = config as { text: string; values?: unknown[] };
        seen.push({ text: c.text, values: c.values ?? (Array.isArray(values) ? values : []) });
      }
      return own(...args);
    };
  };
  const target = pool as unknown as { connect: Connect };
  const connect = target.connect.bind(pool) as Connect;
  // pg's pool.query checks a client out with a callback; transactions with the promise form.
  target.connect = (cb) =>
    cb
      ? connect((err, client, done) => {
          wrap(client);
          cb(err, client, done);
        })
      : (connect() as Promise<pg.PoolClient>).then((client) => {
          wrap(client);
          return client;
        });
  try {
    await fn();
  } finally {
    target.connect = connect;
    for (const [client, own] of wrapped) (client as unknown as { query: AnyQuery }).query = own;
  }
  return seen;
}

/** Every relation a plan reads or writes, by the JSON plan's "Relation Name". */
function relationsOf(plan: unknown, into = new Set<string>()): Set<string> {
  if (Array.isArray(plan)) for (const p of plan) relationsOf(p, into);
  else if (plan && typeof plan === "object") {
    for (const [k, v] of Object.entries(plan)) {
      if (k === "Relation Name" && typeof v === "string") into.add(v);
      else relationsOf(v, into);
    }
  }
  return into;
}

type Pruning = { text: string; parents: Set<Partitioned>; partitions: Map<Partitioned, Set<string>> };

describe("hash partitioning by user_id", () => {
  let deps: Deps;
  let pool: pg.Pool;
  let explainer: pg.PoolClient;
  let creditTypeId: string;
  const n = expectedPartitions();
  const internal = { principal: null, requestId: null };

  /** EXPLAIN (FORMAT JSON) with the values the code bound: which partitions of which per-user tables the plan touches. */
  async function explain(s: Captured): Promise<Pruning> {
    const { rows } = await explainer.query<{ "QUERY PLAN": unknown }>({ text: `EXPLAIN (FORMAT JSON) ${s.text}`, values: s.values });
    const parents = new Set<Partitioned>();
    const partitions = new Map<Partitioned, Set<string>>();
    for (const rel of relationsOf(rows[0]?.["QUERY PLAN"])) {
      const m = PARTITION_NAME.exec(rel);
      if (m) {
        const parent = m[1] as Partitioned;
        parents.add(parent);
        partitions.set(parent, (partitions.get(parent) ?? new Set()).add(rel));
      } else if ((PARTITIONED as readonly string[]).includes(rel)) parents.add(rel as Partitioned);
    }
    return { text: s.text, parents, partitions };
  }

  /** The partition of `table` whose hash bound `userId` satisfies, as PostgreSQL computes it. */
  async function partitionOf(table: Partitioned, userId: string): Promise<string> {
    const { rows } = await explainer.query<{ relname: string }>(
      `SELECT c.relname
         FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
        CROSS JOIN LATERAL regexp_match(pg_get_expr(c.relpartbound, c.oid), 'modulus (\\d+), remainder (\\d+)') AS b(m)
        WHERE i.inhparent = $1::regclass
          AND satisfies_hash_partition($1::regclass, b.m[1]::int, b.m[2]::int, $2::varchar)`,
      [table, userId],
    );
    expect(rows).toHaveLength(1);
    return rows[0]!.relname;
  }

  /**
   * Runs `fn`, EXPLAINs every statement it sent that touches a per-user table,
   * and checks that each reads at most the partitions of `users` — one, for
   * one user. Returns the plans, for what the caller wants to see in them.
   */
  async function expectPruned(users: string[], fn: () => Promise<unknown>): Promise<Pruning[]> {
    const statements = await capture(pool, fn);
    const allowed = new Map<Partitioned, Set<string>>();
    for (const t of PARTITIONED) allowed.set(t, new Set(await Promise.all(users.map((u) => partitionOf(t, u)))));
    const plans: Pruning[] = [];
    for (const s of statements) {
      if (!/\b(accounts|ledger_entries|operations|refunds|flash_sale_orders)\b/.test(s.text)) continue;
      const p = await explain(s);
      if (p.parents.size === 0) continue;
      for (const [table, parts] of p.partitions) {
        expect([...parts].filter((x) => !allowed.get(table)!.has(x)), `${table} partitions beyond the user's in:\n${s.text}`).toEqual([]);
      }
      plans.push(p);
    }
    return plans;
  }

  /** The tables whose partitions the plans read (inserts are routed and list none). */
  const readTables = (plans: Pruning[]): Set<Partitioned> => new Set(plans.flatMap((p) => [...p.partitions.keys()]));
  const planOf = (plans: Pruning[], fragment: string): Pruning => {
    const p = plans.find((x) => x.text.includes(fragment));
    expect(p, `a statement with ${fragment}`).toBeDefined();
    return p!;
  };

  beforeAll(async () => {
    deps = await createTestDeps({ ...NO_RATE_LIMIT });
    pool = poolOf(deps.db);
    explainer = await pool.connect();
    creditTypeId = await ensureCreditType(deps, "partition-points");
  });

  afterAll(async () => {
    explainer?.release();
    if (deps) await closeDeps(deps);
  });

  it("has the partition count the migration set, HASH on user_id, and rows land where PostgreSQL's hash says", async () => {
    const { rows } = await explainer.query<{ parent: string; strategy: string; key: string; children: number; moduli: number[] }>(
      `SELECT p.partrelid::regclass::text AS parent, p.partstrat AS strategy,
              (SELECT string_agg(a.attname, ',') FROM pg_attribute a WHERE a.attrelid = p.partrelid AND a.attnum = ANY(p.partattrs)) AS key,
              (SELECT count(*)::int FROM pg_inherits i WHERE i.inhparent = p.partrelid) AS children,
              (SELECT array_agg(DISTINCT (regexp_match(pg_get_expr(c.relpartbound, c.oid), 'modulus (\\d+)'))[1]::int)
                 FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid WHERE i.inhparent = p.partrelid) AS moduli
         FROM pg_partitioned_table p ORDER BY 1`,
    );
    expect(rows.map((r) => r.parent).sort()).toEqual([...PARTITIONED].sort());
    for (const r of rows) expect(r).toMatchObject({ strategy: "h", key: "user_id", children: n, moduli: [n] });
    // business_keys is global on purpose: not partitioned.
    const { rows: bk } = await explainer.query<{ relkind: string }>("SELECT relkind FROM pg_class WHERE relname = 'business_keys'");
    expect(bk).toEqual([{ relkind: "r" }]);

    const users = Array.from({ length: 12 }, () => uid("place"));
    for (const userId of users) {
      const g = await grantCredits(deps, { userId, creditTypeId, amount: 5, businessCode: "test.place", businessId: userId }, internal);
      const expected = await partitionOf("accounts", userId);
      const { rows: placed } = await explainer.query<{ account: string; entry: string; operation: string }>(
        `SELECT (SELECT tableoid::regclass::text FROM accounts WHERE user_id = $1) AS account,
                (SELECT tableoid::regclass::text FROM ledger_entries WHERE user_id = $1 AND id = $2) AS entry,
                (SELECT tableoid::regclass::text FROM operations WHERE user_id = $1 AND id = $3) AS operation`,
        [userId, g.transactionId, g.operationId],
      );
      const suffix = expected.replace("accounts", "");
      expect(placed[0]).toEqual({ account: expected, entry: `ledger_entries${suffix}`, operation: `operations${suffix}` });
    }
  });

  it("a grant, a deduction, the balance, the ledger and operation.status by business key and by request id each read the user's partition alone", async () => {
    const userId = uid("hot");
    const grant = await expectPruned([userId], () =>
      grantCredits(deps, { userId, creditTypeId, amount: 100, businessCode: "test.grant", businessId: userId }, internal),
    );
    // The engine's three statements: operation start rows, the batch read, the batch write.
    expect(grant.map((p) => p.text).join("\n")).toContain("INSERT INTO operations");
    // (A list the batch does not use — no debits, no queued refunds — is an
    // empty array: the planner drops that table from the plan altogether.)
    expect([...readTables([planOf(grant, "FROM business_keys k")])]).toEqual(expect.arrayContaining(["ledger_entries", "accounts", "flash_sale_orders"]));
    expect([...readTables([planOf(grant, "WITH upd AS")])]).toEqual(expect.arrayContaining(["accounts", "operations"]));

    const deduct = await expectPruned([userId], () =>
      deductCredits(deps, { userId, creditTypeId, amount: 30, businessCode: "test.deduct", businessId: userId }, internal),
    );
    expect([...readTables([planOf(deduct, "WITH upd AS")])]).toEqual(expect.arrayContaining(["accounts", "operations", "ledger_entries", "refunds"]));

    const reads = await expectPruned([userId], async () => {
      expect(await getAccount(deps.db, userId, creditTypeId)).toMatchObject({ balance: 70 });
      expect((await listLedger(deps.db, { userId, creditTypeId, limit: 10 })).items).toHaveLength(2);
      // The key was claimed: its user is known, the operation read from one partition.
      expect(await getOperationStatus(deps, { businessCode: "test.deduct", businessId: userId }, "nobody")).toMatchObject({ status: "completed" });
    });
    expect(readTables(reads)).toEqual(new Set(["accounts", "ledger_entries", "operations"]));

    // operation.status by X-Request-Id: the record written with the effect names the user.
    const requestId = uid("req");
    const fp = await serviceCaller(deps, { requestId, requestIdFromClient: true });
    await fp.credit.deduct({ userId, creditTypeId, amount: 1, businessCode: "test.deduct", businessId: requestId });
    const byRequest = await expectPruned([userId], async () => expect(await fp.operation.status({ requestId })).toMatchObject({ status: "completed" }));
    expect(readTables(byRequest)).toEqual(new Set(["operations"]));
  });

  it("a purchase, its repeat, a cancelled purchase's refund and credit.refund stay in the buyer's partition", async () => {
    const userId = uid("buyer");
    await grantCredits(deps, { userId, creditTypeId, amount: 500, businessCode: "test.grant", businessId: userId }, internal);
    const now = Date.now();
    const activity = await createActivity(
      deps,
      {
        name: `partitioning ${userId}`,
        startsAt: new Date(now - 1_000),
        endsAt: new Date(now + 3_600_000),
        items: [{ name: "mug", creditTypeId, pointsPrice: 40, stock: 5 }],
      },
      { actor: { email: "ops@test.local", role: "operator" } },
    );
    const itemId = activity.items[0]!.id;
    const buy = await expectPruned([userId], () => purchase(deps, { userId, activityId: activity.id, itemId }, internal));
    expect([...readTables([planOf(buy, "FROM business_keys k")])]).toEqual(expect.arrayContaining(["ledger_entries", "accounts", "flash_sale_orders"]));
    // The repeat is answered from the buyer's order (Redis knows the buyer).
    const again = await expectPruned([userId], () => purchase(deps, { userId, activityId: activity.id, itemId }, internal));
    expect(readTables(again)).toContain("flash_sale_orders");

    // credit.refund knows only the transaction id: business_keys names the user.
    const debit = await deductCredits(deps, { userId, creditTypeId, amount: 50, businessCode: "test.deduct", businessId: uid("d") }, internal);
    const refunded = await expectPruned([userId], () =>
      refundDebit(deps, { transactionId: debit.transactionId, amount: 20, businessCode: "test.refund", businessId: uid("r") }, internal),
    );
    expect([...readTables([planOf(refunded, "FROM business_keys k")])]).toEqual(expect.arrayContaining(["ledger_entries", "accounts"]));
    expect(readTables(refunded)).toContain("refunds");

    // A queued refund (a purchase that failed after its debit), then the worker's attempt.
    const queued = await expectPruned([userId], () =>
      sqlOf(deps.db).transaction((q) => enqueueRefund(q, { debitId: debit.transactionId, userId, reason: "test" }, deps.clock.now())),
    );
    expect(readTables(queued)).toEqual(new Set(["ledger_entries"]));
    // Claiming due refunds has no user by contract: a fan-out (not checked here).
    const claimed = (await claimDueRefunds(sqlOf(deps.db).query, { now: deps.clock.now(), limit: 100, leaseUntil: leaseUntil(deps) })).filter(
      (c) => c.userId === userId,
    );
    expect(claimed).toHaveLength(1);
    const attempt = await expectPruned([userId], () => attemptRefund(deps, claimed[0]!));
    expect(readTables([planOf(attempt, "FROM business_keys k")])).toContain("refunds");
    expect(readTables([planOf(attempt, "WITH upd AS")])).toContain("refunds");
  });

  it("a batch of several users reads and writes only their partitions", async () => {
    const users = [uid("b1"), uid("b2"), uid("b3")];
    const plans = await expectPruned(users, () =>
      batchGrant(deps, users.map((userId) => ({ userId, creditTypeId, amount: 9, businessCode: "test.batch", businessId: userId })), internal),
    );
    const read = planOf(plans, "FROM business_keys k");
    const mine = new Set(await Promise.all(users.map((u) => partitionOf("accounts", u))));
    expect(read.partitions.get("accounts")).toEqual(mine);
  });

  it("negative control: the same batch read without its user predicates reads every partition", async () => {
    const userId = uid("ctl");
    const read = (await capture(pool, () =>
      grantCredits(deps, { userId, creditTypeId, amount: 1, businessCode: "test.grant", businessId: userId }, internal),
    )).find((s) => s.text.includes("FROM business_keys k"))!;
    expect((await explain(read)).partitions.get("accounts")).toEqual(new Set([await partitionOf("accounts", userId)]));
    // Every user predicate dropped ($14 still bound, so the values fit the statement).
    const unpruned = read.text.replace(/ AND [a-z]\.user_id = ANY\(\$14::text\[\]\)/g, " AND $14::text[] IS NOT NULL");
    expect(unpruned).not.toBe(read.text);
    const p = await explain({ text: unpruned, values: read.values });
    for (const t of ["accounts", "ledger_entries", "flash_sale_orders"] as const) expect(p.partitions.get(t)?.size, t).toBe(n);
    // And a fan-out by contract (due refunds, no user) reads every partition through its index.
    const due = await capture(pool, () => claimDueRefunds(sqlOf(deps.db).query, { now: deps.clock.now(), limit: 1, leaseUntil: leaseUntil(deps) }));
    expect((await explain(due[0]!)).partitions.get("refunds")?.size).toBe(n);
  });

  it("the engine's named statements keep being planned with their values (a generic plan could not prune = ANY($n))", async () => {
    const userId = uid("plan");
    const sent = await capture(pool, async () => {
      await grantCredits(deps, { userId, creditTypeId, amount: 10, businessCode: "test.grant", businessId: userId }, internal);
      await deductCredits(deps, { userId, creditTypeId, amount: 1, businessCode: "test.deduct", businessId: userId }, internal);
    });
    const read = sent.find((s) => s.text.includes("FROM business_keys k"))!;
    const write = sent.find((s) => s.text.includes("WITH upd AS"))!;
    // As the pool runs them: prepared once per connection under a name, then
    // executed again and again (each in a savepoint rolled back: the write's
    // keys are taken already, and a plan is made before the statement fails).
    await explainer.query("BEGIN");
    try {
      for (let i = 0; i < 20; i++) {
        for (const [name, s] of [["probe_batch_read", read], ["probe_batch_write", write]] as const) {
          await explainer.query("SAVEPOINT probe");
          await explainer.query({ name, text: s.text, values: s.values }).catch(() => undefined);
          await explainer.query("ROLLBACK TO SAVEPOINT probe");
        }
      }
      const { rows } = await explainer.query<{ name: string; generic_plans: string; custom_plans: string }>(
        "SELECT name, generic_plans::text, custom_plans::text FROM pg_prepared_statements WHERE name LIKE 'probe_batch_%' ORDER BY name",
      );
      expect(rows).toEqual([
        { name: "probe_batch_read", generic_plans: "0", custom_plans: "20" },
        { name: "probe_batch_write", generic_plans: "0", custom_plans: "20" },
      ]);
    } finally {
      await explainer.query("ROLLBACK");
    }
  });

  it("a business key stays unique across users in different partitions, also when two engines race on it", async () => {
    const a = uid("ka");
    let b = uid("kb");
    while (n > 1 && (await partitionOf("accounts", b)) === (await partitionOf("accounts", a))) b = uid("kb");
    const grant = (userId: string, businessId: string): BalanceChange => ({
      type: "CREDIT",
      operationType: "credit.grant",
      eventType: "credit.granted",
      request: { userId, creditTypeId, amount: 7, businessCode: "test.shared", businessId },
      caller: internal,
    });
    const first = uid("key");
    await grantCredits(deps, grant(a, first).request, internal);
    await expect(grantCredits(deps, grant(b, first).request, internal)).rejects.toMatchObject({ code: "IDEMPOTENCY_KEY_REUSED" });

    // Two engines (as two instances would be), each with one of the users: nothing but the claim table stands between them.
    const limits = { batchMax: 64, inFlight: 2 };
    const [one, two] = [new BalanceEngine(deps, limits), new BalanceEngine(deps, limits)];
    const keys = Array.from({ length: 20 }, () => uid("race"));
    const outcomes = await Promise.all(keys.flatMap((k) => [one.submit(grant(a, k)), two.submit(grant(b, k))]));
    for (let i = 0; i < keys.length; i++) {
      const pair = [outcomes[2 * i]!, outcomes[2 * i + 1]!];
      expect(pair.filter((o) => o.ok && !o.result.idempotent), keys[i]).toHaveLength(1);
      expect(pair.filter((o) => !o.ok).map((o) => (o.ok ? null : o.error.code)), keys[i]).toEqual(["IDEMPOTENCY_KEY_REUSED"]);
    }
    const { rows } = await explainer.query<{ n: number }>(
      "SELECT count(*)::int AS n FROM ledger_entries WHERE business_code = 'test.shared' AND business_id = ANY($1::text[])",
      [[first, ...keys]],
    );
    expect(rows[0]!.n).toBe(keys.length + 1);
  });
});
