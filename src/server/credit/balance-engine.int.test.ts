import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createTestDeps, closeDeps, uid } from "~/test/deps";
import { ensureCreditType, makeApiKey, postJson, startApi } from "~/test/api";
import { testDatabaseUrl } from "~/test/env";
import { postOnOwnConnection, startServerProcess } from "~/test/server-process";
import type { Deps } from "~/server/infra/deps";
import { createDb } from "~/server/infra/db";
import { isAppError, type AppErrorCode } from "~/server/infra/app-error";
import type { RunningServer } from "~/server/http/server";
import { createFlashPointsClient, isFlashPointsError, withRequestId, withRetry, type FlashPointsClient } from "~/client";
import { balanceEngine } from "./balance-engine";
import { deductCredits, type DeductResult } from "./deduct";
import { grantCredits } from "./grant";
import { resolveStuckOperations } from "./abandoned-operations";
import { accountChecks, NO_RATE_LIMIT, startOwnRedis } from "./testing";
import { accountLockKey, acquireLocks } from "~/server/resilience/lock";
import type { BalanceChangeRequest } from "./types";

/**
 * The balance engine end to end: batching under load, credit.batchDeduct over
 * HTTP, a PostgreSQL backend terminated mid-batch, two engines racing on one
 * account, a process killed between its operations' start rows and their
 * commit, a transaction past its time limit, and Redis gone.
 */

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
const internal = { principal: null, requestId: null } as const;

type Settled<T> = { ok: true; value: T } | { ok: false; error: unknown };
const settle = <T>(p: Promise<T>): Promise<Settled<T>> =>
  p.then(
    (value) => ({ ok: true as const, value }),
    (error: unknown) => ({ ok: false as const, error }),
  );
/** The appCode of a domain error or of an error from the typed client. */
const codeOf = (e: unknown): string =>
  isAppError(e) ? e.code : isFlashPointsError(e) ? e.data.appCode : `untyped: ${e instanceof Error ? e.message : String(e)}`;

async function until(what: string, check: () => Promise<boolean>, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(25);
  }
}

describe("balance engine", () => {
  let deps: Deps;
  let api: RunningServer;
  let key: string;
  let fp: FlashPointsClient;
  let creditTypeId: string;

  beforeAll(async () => {
    deps = await createTestDeps({ ...NO_RATE_LIMIT });
    creditTypeId = await ensureCreditType(deps, "engine-points");
    api = await startApi(deps);
    key = await makeApiKey(deps);
    fp = createFlashPointsClient({ url: api.url, apiKey: key });
  });

  afterAll(async () => {
    await api?.close();
    await closeDeps(deps);
  });

  const fund = (d: Deps, userId: string, amount: number) =>
    grantCredits(d, { userId, creditTypeId, amount, businessCode: "test.grant", businessId: uid("g") }, internal);

  it("1,000 concurrent deductions on one account covering 600: exactly 600 apply (599 … 0), 400 refused, in a handful of transactions", async () => {
    // A queue wait of its own: this test is about batching, not the deadline,
    // and a loaded 2-core machine may take more than a second for the 4 batches.
    const own = await createTestDeps({ LOCK_WAIT_MS: "30000" });
    try {
      const userId = uid("hot");
      await fund(own, userId, 600);
      const engine = balanceEngine(own);
      const before = { ...engine.stats };
      const started = performance.now();
      const outcomes = await Promise.all(
        Array.from({ length: 1000 }, (_, i) =>
          settle(deductCredits(own, { userId, creditTypeId, amount: 1, businessCode: "flash.buy", businessId: `${userId}-${i}` }, internal)),
        ),
      );
      const ms = performance.now() - started;
      const applied = outcomes.flatMap((o) => (o.ok ? [o.value] : []));
      const refused = outcomes.flatMap((o) => (o.ok ? [] : [codeOf(o.error)]));
      expect(refused.filter((c) => c !== "INSUFFICIENT_BALANCE")).toEqual([]);
      expect(applied).toHaveLength(600);
      expect(refused).toHaveLength(400);
      expect(applied.every((r) => !r.idempotent)).toBe(true);
      expect(applied.map((r) => r.balanceAfter).sort((a, b) => a - b)).toEqual(Array.from({ length: 600 }, (_, i) => i));
      expect(new Set(applied.map((r) => r.transactionId)).size).toBe(600);

      const [check] = await accountChecks(own.db, [userId]);
      expect(check).toMatchObject({ balance: 0, credits: 600, debits: 600, ledgerRows: 601 });
      expect(check!.minBalanceAfter).toBeGreaterThanOrEqual(0);

      // ceil(1000 / 256) = 4 transactions; a small margin, never one per deduction.
      const batches = engine.stats.batches - before.batches;
      expect(own.env.BALANCE_BATCH_MAX).toBe(256);
      expect(batches, `${batches} batches in ${Math.round(ms)} ms`).toBeGreaterThanOrEqual(Math.ceil(1000 / 256));
      expect(batches).toBeLessThanOrEqual(8);
      expect(engine.stats.changes - before.changes).toBe(1000);
    } finally {
      await closeDeps(own);
    }
  });

  it("credit.batchDeduct over HTTP: every item its own answer in input order, a repeated batch changes nothing, bad sizes are refused whole", async () => {
    const funded = Array.from({ length: 20 }, () => uid("u"));
    for (const userId of funded) await fund(deps, userId, 10);
    const repeatUser = uid("rep");
    await fund(deps, repeatUser, 50);
    const shortUser = uid("short");
    await fund(deps, shortUser, 2);
    const ghost = uid("ghost");
    const keyId = uid("k");

    type Expect =
      | { kind: "applied"; userId: string; balanceAfter: number }
      | { kind: "repeat"; of: number }
      | { kind: "refused"; code: AppErrorCode };
    const items: BalanceChangeRequest[] = [];
    const expected: Expect[] = [];
    const add = (item: Omit<BalanceChangeRequest, "creditTypeId">, e: Expect) => {
      items.push({ ...item, creditTypeId });
      expected.push(e);
    };
    const specials = new Map<number, () => void>([
      [2, () => add({ userId: repeatUser, amount: 5, businessCode: "order.pay", businessId: keyId }, { kind: "applied", userId: repeatUser, balanceAfter: 45 })],
      [5, () => add({ userId: ghost, amount: 1, businessCode: "order.pay", businessId: uid("o") }, { kind: "refused", code: "ACCOUNT_NOT_FOUND" })],
      [8, () => add({ userId: repeatUser, amount: 5, businessCode: "order.pay", businessId: keyId }, { kind: "repeat", of: 2 })],
      [11, () => add({ userId: shortUser, amount: 5, businessCode: "order.pay", businessId: uid("o") }, { kind: "refused", code: "INSUFFICIENT_BALANCE" })],
      [14, () => add({ userId: repeatUser, amount: 6, businessCode: "order.pay", businessId: keyId }, { kind: "refused", code: "IDEMPOTENCY_KEY_REUSED" })],
      [17, () => add({ userId: repeatUser, amount: 5, businessCode: "order.pay", businessId: keyId }, { kind: "repeat", of: 2 })],
    ]);
    for (const userId of funded) {
      specials.get(items.length)?.();
      add({ userId, amount: 3, businessCode: "order.pay", businessId: uid("o") }, { kind: "applied", userId, balanceAfter: 7 });
    }
    expect(items).toHaveLength(26);

    const first = await fp.credit.batchDeduct.mutate({ items });
    expect(first.items).toHaveLength(items.length);
    const txOf = new Map<number, string>();
    first.items.forEach((answer, i) => {
      const e = expected[i]!;
      if (e.kind === "refused") {
        expect(answer, `item ${i}`).toMatchObject({ ok: false, error: { appCode: e.code, message: expect.any(String) } });
        return;
      }
      expect(answer.ok, `item ${i}: ${JSON.stringify(answer)}`).toBe(true);
      if (!answer.ok) return;
      if (e.kind === "applied") {
        expect(answer.result).toMatchObject({ success: true, idempotent: false, balanceAfter: e.balanceAfter });
        txOf.set(i, answer.result.transactionId);
      } else {
        expect(answer.result).toMatchObject({ success: true, idempotent: true, balanceAfter: 45, transactionId: txOf.get(e.of) });
      }
    });
    expect(txOf.size).toBe(21);

    // The books: each funded account debited once, the repeated key once, nothing else.
    const users = [...funded, repeatUser, shortUser, ghost];
    const books = async () => accountChecks(deps.db, users);
    const after = await books();
    expect(after).toHaveLength(22); // the ghost has no account
    for (const c of after) expect(c.balance).toBe(c.credits - c.debits);
    const byUser = new Map(after.map((c) => [c.userId, c]));
    for (const userId of funded) expect(byUser.get(userId)).toMatchObject({ balance: 7, debits: 3, ledgerRows: 2 });
    expect(byUser.get(repeatUser)).toMatchObject({ balance: 45, debits: 5, ledgerRows: 2 });
    expect(byUser.get(shortUser)).toMatchObject({ balance: 2, debits: 0, ledgerRows: 1 });
    for (const [i, tx] of txOf) {
      const row = await deps.db.ledgerEntry.findFirstOrThrow({ where: { id: tx } });
      expect(row).toMatchObject({ type: "DEBIT", userId: items[i]!.userId, businessId: items[i]!.businessId, amount: BigInt(items[i]!.amount) });
    }

    // The same batch again: every item that applied answers idempotently with its first transaction.
    const again = await fp.credit.batchDeduct.mutate({ items });
    again.items.forEach((answer, i) => {
      const e = expected[i]!;
      if (e.kind === "refused") {
        expect(answer, `item ${i}`).toMatchObject({ ok: false, error: { appCode: e.code } });
        return;
      }
      const tx = txOf.get(e.kind === "repeat" ? e.of : i);
      const balanceAfter = e.kind === "applied" ? e.balanceAfter : 45;
      expect(answer, `item ${i}`).toMatchObject({ ok: true, result: { idempotent: true, transactionId: tx, balanceAfter } });
    });
    expect(await books()).toEqual(after);

    // 0 and 1,001 items: 400 VALIDATION, nothing runs.
    const auth = { authorization: `Bearer ${key}` };
    const tooMany = Array.from({ length: 1001 }, (_, i) => ({
      userId: funded[i % funded.length]!,
      creditTypeId,
      amount: 1,
      businessCode: "order.pay",
      businessId: `${keyId}-big-${i}`,
    }));
    for (const body of [{ items: [] }, { items: tooMany }]) {
      const res = await postJson(api.url, "credit.batchDeduct", body, auth);
      expect(res.status).toBe(400);
      expect(res.json).toMatchObject({ error: { data: { appCode: "VALIDATION" } } });
    }
    expect(await deps.db.operation.count({ where: { businessId: { startsWith: `${keyId}-big-` } } })).toBe(0);
    expect(await deps.db.ledgerEntry.count({ where: { businessId: { startsWith: `${keyId}-big-` } } })).toBe(0);
    expect(await books()).toEqual(after);
  });

  it("credit.batchDeduct takes one token per item from its user's bucket: over the burst only that user's items are RATE_LIMITED", async () => {
    const limited = await createTestDeps({ RATE_LIMIT_PER_SECOND: "1", RATE_LIMIT_BURST: "3" });
    const server = await startApi(limited);
    try {
      const client = createFlashPointsClient({ url: server.url, apiKey: await makeApiKey(limited) });
      const [busy, calm] = [uid("busy"), uid("calm")];
      await fund(limited, busy, 100);
      await fund(limited, calm, 100);
      const owners = [busy, calm, busy, busy, calm, busy, busy, busy];
      const items = owners.map((userId) => ({ userId, creditTypeId, amount: 1, businessCode: "order.pay", businessId: uid("o") }));
      const { items: answers } = await client.credit.batchDeduct.mutate({ items });
      const of = (userId: string) => answers.filter((_, i) => owners[i] === userId);

      expect(of(calm).map((a) => a.ok)).toEqual([true, true]);
      const busyAnswers = of(busy);
      expect(busyAnswers.filter((a) => a.ok)).toHaveLength(3);
      const refused = busyAnswers.flatMap((a) => (a.ok ? [] : [a.error]));
      expect(refused).toHaveLength(3);
      for (const e of refused) {
        expect(e.appCode).toBe("RATE_LIMITED");
        expect(e.retryAfterMs).toBeGreaterThan(0);
      }
      // A limited item never reached the engine: no operation, no ledger row.
      const limitedKeys = items.filter((_, i) => !answers[i]!.ok).map((it) => it.businessId);
      expect(await limited.db.operation.count({ where: { businessId: { in: limitedKeys } } })).toBe(0);
      const checks = new Map((await accountChecks(limited.db, [busy, calm])).map((c) => [c.userId, c]));
      expect(checks.get(busy)).toMatchObject({ balance: 97, debits: 3, ledgerRows: 4 });
      expect(checks.get(calm)).toMatchObject({ balance: 98, debits: 2, ledgerRows: 3 });
    } finally {
      await server.close();
      await closeDeps(limited);
    }
  });

  it("credit.batchDeduct with X-Request-Id: items busy past the lock wait are not recorded under the id, so the same id runs them again; then it replays", async () => {
    // A batch's items wait for their accounts up to max(LOCK_WAIT_MS, DB_TX_TIMEOUT_MS).
    const own = await createTestDeps({ ...NO_RATE_LIMIT, LOCK_WAIT_MS: "300", DB_TX_TIMEOUT_MS: "800" });
    const server = await startApi(own);
    try {
      const client = createFlashPointsClient({ url: server.url, apiKey: await makeApiKey(own) });
      const [held, free] = [uid("held"), uid("free")];
      await fund(own, held, 100);
      await fund(own, free, 100);
      const owners = [free, held, free, held, free];
      const items = owners.map((userId) => ({ userId, creditTypeId, amount: 1, businessCode: "order.pay", businessId: uid("o") }));
      const requestId = uid("batch-req");
      const records = () => own.db.requestRecord.count({ where: { requestId } });

      // "Another instance" holds one account past the lock wait: its items are OPERATION_LOCKED.
      const other = await acquireLocks(own, [accountLockKey(held, creditTypeId)], 10_000);
      expect(other.held.size).toBe(1);
      let first;
      try {
        first = (await client.credit.batchDeduct.mutate({ items }, withRequestId(requestId))).items;
      } finally {
        await other.release();
      }
      expect(first.map((a) => (a.ok ? "ok" : a.error.appCode))).toEqual(["ok", "OPERATION_LOCKED", "ok", "OPERATION_LOCKED", "ok"]);
      // Worth retrying, so not the answer to this id.
      expect(await records()).toBe(0);

      const second = (await client.credit.batchDeduct.mutate({ items }, withRequestId(requestId))).items;
      second.forEach((answer, i) => {
        const before = first[i]!;
        expect(answer.ok, `item ${i}: ${JSON.stringify(answer)}`).toBe(true);
        if (!answer.ok) return;
        if (before.ok) expect(answer.result).toMatchObject({ idempotent: true, transactionId: before.result.transactionId });
        else expect(answer.result).toMatchObject({ idempotent: false });
      });
      expect(await records()).toBe(1);
      const books = async () => accountChecks(own.db, [held, free]);
      const settled = await books();
      expect(settled.find((c) => c.userId === held)).toMatchObject({ balance: 98, debits: 2 });
      expect(settled.find((c) => c.userId === free)).toMatchObject({ balance: 97, debits: 3 });

      // Every item final: the third send is the recorded answer, nothing runs.
      const third = (await client.credit.batchDeduct.mutate({ items }, withRequestId(requestId))).items;
      expect(third).toEqual(second);
      expect(await books()).toEqual(settled);
    } finally {
      await server.close();
      await closeDeps(own);
    }
  });

  it("a PostgreSQL backend terminated mid-batch: every call answered UNAVAILABLE, nothing applied, status failed, the retry applies once", async () => {
    const applicationName = uid("fp-terminate");
    const db = createDb({
      url: testDatabaseUrl(),
      poolMax: deps.env.DB_POOL_MAX,
      poolWaitMs: deps.env.DB_POOL_WAIT_MS,
      statementTimeoutMs: deps.env.DB_STATEMENT_TIMEOUT_MS,
      txTimeoutMs: deps.env.DB_TX_TIMEOUT_MS,
      applicationName,
    });
    // Room for every deduction in a batch of its own at once: none waits for a slot past LOCK_WAIT_MS.
    const own = await createTestDeps({ ...NO_RATE_LIMIT, BALANCE_BATCHES_IN_FLIGHT: "8" }, { db });
    const server = await startApi(own);
    try {
      const client = createFlashPointsClient({ url: server.url, apiKey: await makeApiKey(own) });
      const calls = Array.from({ length: 5 }, (_, i) => ({
        body: { userId: uid("u"), creditTypeId, amount: 3 + i, businessCode: "order.pay", businessId: uid("o") },
        requestId: uid("req"),
      }));
      for (const c of calls) await fund(own, c.body.userId, 20);

      own.failpoints.set("credit.beforeCommit=delay:1500");
      let settled = false;
      const answers = Promise.all(calls.map((c) => settle(client.credit.deduct.mutate(c.body, withRequestId(c.requestId))))).finally(() => {
        settled = true;
      });
      // Every transaction of that client that has written and now waits before
      // its commit is cut, from another session.
      let terminated = 0;
      while (!settled) {
        const rows = await deps.db.$queryRaw<{ ok: boolean }[]>`
          SELECT pg_terminate_backend(pid) AS ok FROM pg_stat_activity
          WHERE datname = current_database() AND application_name = ${applicationName} AND state = 'idle in transaction' AND backend_xid IS NOT NULL`;
        terminated += rows.filter((r) => r.ok).length;
        await sleep(20);
      }
      own.failpoints.set(undefined);
      const results = await answers;
      expect(terminated).toBeGreaterThanOrEqual(1);
      for (const r of results) {
        expect(r.ok).toBe(false);
        if (r.ok) continue;
        expect(isFlashPointsError(r.error, "UNAVAILABLE"), codeOf(r.error)).toBe(true);
        expect(isFlashPointsError(r.error) && r.error.data.retryAfterMs).toBeGreaterThan(0);
      }
      const users = calls.map((c) => c.body.userId);
      for (const c of await accountChecks(own.db, users)) expect(c).toMatchObject({ balance: 20, debits: 0, ledgerRows: 1 });
      for (const c of calls) {
        const byRequest = await client.operation.status.query({ requestId: c.requestId });
        expect(byRequest).toMatchObject({ type: "credit.deduct", status: "failed", error: { appCode: "UNAVAILABLE" } });
        const byKey = await client.operation.status.query({ businessCode: c.body.businessCode, businessId: c.body.businessId });
        expect(byKey).toMatchObject({ operationId: byRequest.operationId, status: "failed" });
      }

      // Retried with the same request id (the failure was not recorded): applies once.
      const retried = await Promise.all(calls.map((c) => client.credit.deduct.mutate(c.body, withRequestId(c.requestId))));
      retried.forEach((r, i) => expect(r).toMatchObject({ success: true, idempotent: false, balanceAfter: 20 - calls[i]!.body.amount }));
      const replayed = await Promise.all(calls.map((c) => client.credit.deduct.mutate(c.body, withRequestId(c.requestId))));
      expect(replayed).toEqual(retried);
      for (const c of await accountChecks(own.db, users)) {
        expect(c).toMatchObject({ balance: c.credits - c.debits, ledgerRows: 2 });
        expect(c.balance).toBe(20 - calls.find((x) => x.body.userId === c.userId)!.body.amount);
      }
      for (const c of calls) {
        expect(await client.operation.status.query({ requestId: c.requestId })).toMatchObject({ status: "completed", result: { idempotent: false } });
      }
    } finally {
      own.failpoints.set(undefined);
      await server.close();
      await closeDeps(own);
    }
  });

  it("two engines racing on one account past their lock TTL: the versioned update fences, the books balance", async () => {
    const fast = await createTestDeps({ LOCK_TTL_MS: "100" });
    const slow = await createTestDeps({
      LOCK_TTL_MS: "100",
      REDIS_KEY_PREFIX: fast.env.REDIS_KEY_PREFIX,
      FAILPOINTS: "credit.beforeCommit=delay:400",
    });
    try {
      const userId = uid("race");
      const funded = 10;
      await fund(fast, userId, funded);
      // Both pools connected beforehand, so the slow one's first batch starts at once.
      await Promise.all([fast, slow, fast, slow].map((d) => fund(d, uid("warm"), 1)));
      const deduct = (d: Deps, businessId: string) =>
        settle(deductCredits(d, { userId, creditTypeId, amount: 1, businessCode: "order.pay", businessId }, internal));

      // 1. The slow one writes and waits 400 ms before its commit; its lock is
      //    gone after 100. The fast one then takes the lock, reads the committed
      //    balance (10) and writes: only the version check makes it wait for the
      //    slow commit and plan again from 6.
      let slowDoneAt = 0;
      const slowFirst = Promise.all(Array.from({ length: 4 }, (_, j) => deduct(slow, `${userId}-slow-${j}`))).finally(() => {
        slowDoneAt = performance.now();
      });
      await sleep(250);
      const fastSentAt = performance.now();
      const fastFirst = await Promise.all(Array.from({ length: 4 }, (_, j) => deduct(fast, `${userId}-fast-${j}`)));
      const fastDoneAt = performance.now();
      const afterOf = (rs: Settled<DeductResult>[]) => rs.map((r) => (r.ok ? r.value.balanceAfter : codeOf(r.error)));
      expect(afterOf(await slowFirst).sort()).toEqual([6, 7, 8, 9]);
      expect(afterOf(fastFirst).sort()).toEqual([2, 3, 4, 5]);
      expect(fastSentAt).toBeLessThan(slowDoneAt);
      expect(fastDoneAt).toBeGreaterThanOrEqual(slowDoneAt);

      // 2. Waves from both "processes": 24 more deductions of 1 against the 2 left.
      const answers: Promise<Settled<DeductResult>>[] = [];
      for (let wave = 0; wave < 3; wave++) {
        for (const [name, d] of [["fast", fast], ["slow", slow]] as const) {
          for (let j = 0; j < 4; j++) answers.push(deduct(d, `${userId}-${name}-${wave}-${j}-w`));
        }
        await sleep(60);
      }
      const results = [...(await slowFirst), ...fastFirst, ...(await Promise.all(answers))];
      const ok = results.flatMap((r) => (r.ok ? [r.value] : []));
      const codes = results.flatMap((r) => (r.ok ? [] : [codeOf(r.error)]));
      const allowed = new Set(["INSUFFICIENT_BALANCE", "VERSION_CONFLICT", "OPERATION_LOCKED"]);
      expect(codes.filter((c) => !allowed.has(c))).toEqual([]);

      const [check] = await accountChecks(fast.db, [userId]);
      expect(check!.debits).toBeLessThanOrEqual(funded);
      expect(check!.balance).toBe(check!.credits - check!.debits);
      expect(check!.balance).toBeGreaterThanOrEqual(0);
      expect(check!.minBalanceAfter).toBeGreaterThanOrEqual(0);
      // What each success was told is in the ledger, and nothing else is.
      expect(check!.ledgerRows).toBe(1 + ok.length);
      expect(check!.debits).toBe(ok.length);
      const rows = await fast.db.ledgerEntry.findMany({ where: { id: { in: ok.map((r) => r.transactionId) } } });
      expect(rows).toHaveLength(ok.length);
      const told = new Map(ok.map((r) => [r.transactionId, r.balanceAfter]));
      for (const row of rows) expect(Number(row.balanceAfter)).toBe(told.get(row.id));
      // Each success saw its own balance: 9, 8, … down from the funded 10.
      expect(ok.map((r) => r.balanceAfter).sort((a, b) => b - a)).toEqual(Array.from({ length: ok.length }, (_, i) => funded - 1 - i));
      // Refused for want of a point means there was none left (only debits here).
      if (codes.includes("INSUFFICIENT_BALANCE")) expect(check!.balance).toBe(0);
    } finally {
      await closeDeps(slow);
      await closeDeps(fast);
    }
  });

  it("a process killed between its operations' start rows and their commit: in_progress, then failed by the resolver, then the retry applies once", async () => {
    const server = await startServerProcess(deps, {
      ...NO_RATE_LIMIT,
      FAILPOINTS: "credit.beforeCommit=delay:5000",
      // A slot for each deduction: with every slot held 5 s the later ones
      // would wait past LOCK_WAIT_MS and be answered before the kill.
      BALANCE_BATCHES_IN_FLIGHT: "8",
    });
    const { child, port } = server;
    try {
      const calls = Array.from({ length: 5 }, (_, i) => ({
        body: { userId: uid("u"), creditTypeId, amount: 2 + i, businessCode: "order.pay", businessId: uid("o") },
        requestId: uid("req"),
      }));
      for (const c of calls) await fund(deps, c.body.userId, 30);
      const requestIds = calls.map((c) => c.requestId);

      const sent = calls.map((c) => postOnOwnConnection(port, "/api/trpc/credit.deduct", c.body, { authorization: `Bearer ${key}`, "x-request-id": c.requestId }));
      await until("the 5 operations to be started", async () => {
        const n = await deps.db.operation.count({ where: { requestId: { in: requestIds }, status: "started" } });
        return n === calls.length;
      });
      // …and the child inside a transaction that has written, waiting before its commit.
      await until("a written transaction waiting before its commit", async () => {
        const [row] = await deps.db.$queryRaw<{ n: number }[]>`
          SELECT count(*)::int AS n FROM pg_stat_activity
          WHERE datname = current_database() AND application_name = 'flashpoints-web' AND state = 'idle in transaction' AND backend_xid IS NOT NULL`;
        return (row?.n ?? 0) >= 1;
      });
      child.kill("SIGKILL");
      expect((await server.exited).signal).toBe("SIGKILL");
      // No client heard anything: every connection was cut.
      expect((await Promise.all(sent)).map((r) => r.status)).toEqual([0, 0, 0, 0, 0]);
      await until("the dead process's sessions to end", async () => {
        const [row] = await deps.db.$queryRaw<{ n: number }[]>`
          SELECT count(*)::int AS n FROM pg_stat_activity
          WHERE datname = current_database() AND application_name = 'flashpoints-web'`;
        return row?.n === 0;
      });

      for (const c of calls) {
        expect(await fp.operation.status.query({ requestId: c.requestId })).toMatchObject({ type: "credit.deduct", status: "in_progress" });
        expect(await fp.operation.status.query({ businessCode: c.body.businessCode, businessId: c.body.businessId })).toMatchObject({
          status: "in_progress",
        });
      }
      expect(await resolveStuckOperations(deps, { olderThanMs: 0 })).toBeGreaterThanOrEqual(calls.length);
      for (const c of calls) {
        const byRequest = await fp.operation.status.query({ requestId: c.requestId });
        expect(byRequest).toMatchObject({ status: "failed", error: { appCode: "UNAVAILABLE" } });
        const byKey = await fp.operation.status.query({ businessCode: c.body.businessCode, businessId: c.body.businessId });
        expect(byKey).toMatchObject({ operationId: byRequest.operationId, status: "failed", error: { appCode: "UNAVAILABLE" } });
      }
      const users = calls.map((c) => c.body.userId);
      expect(await deps.db.ledgerEntry.count({ where: { userId: { in: users }, type: "DEBIT" } })).toBe(0);

      // Retried with the same request id and key: applies exactly once (once the
      // dead process's in-flight marker and account lock have expired).
      const retried = await Promise.all(
        calls.map((c) =>
          withRetry((call) => fp.credit.deduct.mutate(c.body, call.options), { requestId: c.requestId, attempts: 100, maxDelayMs: 500 }),
        ),
      );
      retried.forEach((r, i) => expect(r).toMatchObject({ success: true, idempotent: false, balanceAfter: 30 - calls[i]!.body.amount }));
      const replayed = await Promise.all(calls.map((c) => fp.credit.deduct.mutate(c.body, withRequestId(c.requestId))));
      expect(replayed).toEqual(retried);
      for (const c of await accountChecks(deps.db, users)) {
        const amount = calls.find((x) => x.body.userId === c.userId)!.body.amount;
        expect(c).toMatchObject({ balance: 30 - amount, credits: 30, debits: amount, ledgerRows: 2 });
      }
      for (const c of calls) {
        expect(await fp.operation.status.query({ requestId: c.requestId })).toMatchObject({ status: "completed" });
      }
    } finally {
      server.stop();
    }
  }, 120_000);

  it("a balance transaction that outlives DB_TX_TIMEOUT_MS is rolled back and answered UNAVAILABLE, not committed late", async () => {
    // DB_TX_TIMEOUT_MS is "transaction time limit" (infra/env.ts), and
    // docs/operations.md counts it among the bounds that make requests fail
    // fast with nothing half-applied. A transaction stalled past it (here in
    // the failpoint, as in a long pause of the process) must not commit.
    const own = await createTestDeps({ DB_TX_TIMEOUT_MS: "1000" });
    try {
      const userId = uid("u");
      await fund(own, userId, 10);
      const businessId = uid("o");
      own.failpoints.set("credit.beforeCommit=delay:3000");
      const started = performance.now();
      const outcome = await settle(deductCredits(own, { userId, creditTypeId, amount: 1, businessCode: "order.pay", businessId }, internal));
      own.failpoints.set(undefined);
      const ms = Math.round(performance.now() - started);
      expect(outcome.ok ? `committed after ${ms} ms` : codeOf(outcome.error), "past the 1,000 ms transaction limit").toBe("UNAVAILABLE");
      expect((await accountChecks(own.db, [userId]))[0]).toMatchObject({ balance: 10, debits: 0, ledgerRows: 1 });
      expect(await own.db.operation.findFirstOrThrow({ where: { businessId } })).toMatchObject({ status: "failed", errorCode: "UNAVAILABLE" });
    } finally {
      own.failpoints.set(undefined);
      await closeDeps(own);
    }
  });

  it("an account another instance holds: its changes wait their turn while others apply; past LOCK_WAIT_MS they are OPERATION_LOCKED and recorded failed", async () => {
    const own = await createTestDeps({ ...NO_RATE_LIMIT, REDIS_KEY_PREFIX: deps.env.REDIS_KEY_PREFIX, LOCK_WAIT_MS: "600" });
    try {
      const [held, free] = [uid("u"), uid("u")];
      await fund(own, held, 10);
      await fund(own, free, 10);
      // "Another instance" holds the first account's lock.
      const other = await acquireLocks(deps, [accountLockKey(held, creditTypeId)], 5000);
      expect(other.held.size).toBe(1);
      const waiting = settle(deductCredits(own, { userId: held, creditTypeId, amount: 3, businessCode: "order.pay", businessId: uid("o") }, internal));
      // The other account goes ahead meanwhile.
      const freeResult = await deductCredits(own, { userId: free, creditTypeId, amount: 4, businessCode: "order.pay", businessId: uid("o") }, internal);
      expect(freeResult.balanceAfter).toBe(6);
      let answered = false;
      void waiting.then(() => (answered = true));
      await sleep(150);
      // Still waiting for the lock: it did not go past the other holder.
      expect(answered).toBe(false);
      await other.release();
      const first = await waiting;
      expect(first.ok && first.value.balanceAfter).toBe(7);

      // Held past the wait: refused with a hint, nothing applied, the operation says why.
      const longer = await acquireLocks(deps, [accountLockKey(held, creditTypeId)], 5000);
      const businessId = uid("o");
      const started = performance.now();
      const late = await settle(deductCredits(own, { userId: held, creditTypeId, amount: 3, businessCode: "order.pay", businessId }, internal));
      const waited = performance.now() - started;
      await longer.release();
      expect(late.ok ? "applied" : codeOf(late.error)).toBe("OPERATION_LOCKED");
      expect(!late.ok && isAppError(late.error) && late.error.retryAfterMs).toBeGreaterThan(0);
      expect(waited).toBeGreaterThanOrEqual(550);
      expect(waited).toBeLessThan(3000);
      expect((await accountChecks(own.db, [held]))[0]).toMatchObject({ balance: 7, debits: 3 });
      await until("the operation to be recorded", async () =>
        (await own.db.operation.count({ where: { businessId, status: "failed", errorCode: "OPERATION_LOCKED" } })) === 1,
      );
    } finally {
      await closeDeps(own);
    }
  });

  it("changes on an account held elsewhere, with waits ending at every moment of its retry pauses: each is OPERATION_LOCKED, never UNAVAILABLE", async () => {
    const own = await createTestDeps({ ...NO_RATE_LIMIT, REDIS_KEY_PREFIX: deps.env.REDIS_KEY_PREFIX });
    try {
      const held = uid("u");
      await fund(own, held, 100);
      const other = await acquireLocks(deps, [accountLockKey(held, creditTypeId)], 10_000);
      expect(other.held.size).toBe(1);
      const engine = balanceEngine(own);
      // Deadlines 3 ms apart across ~1 s: some fall just as a pause ends, before the engine tries the account again.
      const outcomes = await Promise.all(
        Array.from({ length: 300 }, (_, i) =>
          engine.submit(
            {
              type: "DEBIT",
              operationType: "credit.deduct",
              eventType: "credit.deducted",
              caller: internal,
              request: { userId: held, creditTypeId, amount: 1, businessCode: "order.pay", businessId: uid("o") },
            },
            { waitMs: 100 + 3 * i },
          ),
        ),
      ).finally(() => other.release());
      const codes = new Map<string, number>();
      for (const o of outcomes) {
        const code = o.ok ? "applied" : o.error.code;
        codes.set(code, (codes.get(code) ?? 0) + 1);
      }
      expect(Object.fromEntries(codes)).toEqual({ OPERATION_LOCKED: 300 });
      expect((await accountChecks(own.db, [held]))[0]).toMatchObject({ balance: 100, debits: 0 });
    } finally {
      await closeDeps(own);
    }
  });

  it("Redis down: grants and deductions apply through the engine on the Postgres fence, and racing repeats of one key apply once", async () => {
    const redis = await startOwnRedis();
    const one = await createTestDeps({ REDIS_URL: redis.url });
    const two = await createTestDeps({ REDIS_URL: redis.url, REDIS_KEY_PREFIX: one.env.REDIS_KEY_PREFIX });
    try {
      await redis.kill("SIGKILL");
      await until("both clients to notice", async () => one.redis.status !== "ready" && two.redis.status !== "ready", 5000);
      const degradedLocks = async () =>
        (await one.metrics.degraded.get()).values.filter((v) => v.labels.component === "lock").reduce((s, v) => s + v.value, 0);
      const degradedBefore = await degradedLocks();

      const userId = uid("u");
      const granted = await grantCredits(one, { userId, creditTypeId, amount: 100, businessCode: "test.grant", businessId: uid("g") }, internal);
      expect(granted).toMatchObject({ idempotent: false, balanceAfter: 100 });
      const debited = await deductCredits(two, { userId, creditTypeId, amount: 30, businessCode: "order.pay", businessId: uid("o") }, internal);
      expect(debited).toMatchObject({ idempotent: false, balanceAfter: 70 });
      expect(await degradedLocks()).toBeGreaterThanOrEqual(degradedBefore + 2);

      // Repeats of one business key from both "processes" at once, no lock to keep them apart.
      const body = { userId, creditTypeId, amount: 9, businessCode: "order.pay", businessId: uid("o") };
      const results = await Promise.all(
        Array.from({ length: 10 }, (_, i) => settle(deductCredits(i % 2 === 0 ? one : two, body, internal))),
      );
      const ok = results.flatMap((r) => (r.ok ? [r.value] : []));
      expect(results.flatMap((r) => (r.ok ? [] : [codeOf(r.error)]))).toEqual([]);
      expect(new Set(ok.map((r) => r.transactionId)).size).toBe(1);
      expect(ok.filter((r) => !r.idempotent)).toHaveLength(1);
      expect(new Set(ok.map((r) => r.balanceAfter))).toEqual(new Set([61]));
      const [check] = await accountChecks(one.db, [userId]);
      expect(check).toMatchObject({ balance: 61, credits: 100, debits: 39, ledgerRows: 3 });
      const grant2 = body.businessId + "-g";
      const [g1, g2] = await Promise.all([
        grantCredits(one, { ...body, businessId: grant2 }, internal),
        grantCredits(two, { ...body, businessId: grant2 }, internal),
      ]);
      expect(g1.transactionId).toBe(g2.transactionId);
      expect([g1.idempotent, g2.idempotent].sort()).toEqual([false, true]);
      expect((await accountChecks(one.db, [userId]))[0]).toMatchObject({ balance: 70, credits: 109, ledgerRows: 4 });
    } finally {
      await closeDeps(two);
      await closeDeps(one);
      await redis.kill();
    }
  });
});
