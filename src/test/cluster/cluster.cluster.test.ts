import { randomBytes, randomUUID } from "node:crypto";
import { appendFileSync, chmodSync, mkdirSync, mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createDb, type Db } from "~/server/infra/db";
import { closeDeps, createDeps, type Deps } from "~/server/infra/deps";
import { loadEnv } from "~/server/infra/env";
import { sqlOf } from "~/server/infra/sql";
import { grantCredits } from "~/server/credit/grant";
import { createApiKey } from "~/server/identity/api-keys";
import { createActivity } from "~/server/flash-sale/activities";
import { purchase } from "~/server/flash-sale/purchase";
import { rateLimitSetting } from "~/server/resilience/rate-limit";
import { updateSetting } from "~/server/resilience/settings-update";
import { forceCircuit, resetCircuit } from "~/server/resilience/circuit-control";
import { setQuickBreakers } from "~/server/resilience/testing";
import { checkInvariants, describeViolations } from "~/test/invariants";
import { postJson } from "~/test/api";
import { Load, type LoadTarget } from "~/test/drills/load";
import { verdict } from "~/test/drills/verdict";
import { clusterDown, clusterUp, type ClusterState } from "../../../scripts/cluster/topology";
import { pgServer } from "../../../scripts/cluster/postgres";
import { stopProcess } from "../../../scripts/cluster/processes";
import { ask, clusterNodes } from "~/test/redis-cluster";

/**
 * The several-instance topology (`npm run cluster:up`) as processes: HAProxy in
 * front of two API-only instances and the dashboard, two workers, PgBouncer in
 * transaction mode before the primary, a streaming replica, Redis Cluster.
 * The deduction, refund and flash-sale contracts hold through the balancer;
 * rate limits, breakers and request-id replay are shared across instances; a
 * replica stopped or an API instance killed mid-load loses no request; the
 * invariants hold at the end.
 */

const CLUSTER_ENV = {
  RATE_LIMIT_PER_SECOND: "1000000",
  RATE_LIMIT_BURST: "1000000",
  KEY_RATE_LIMIT_PER_SECOND: "1000000",
  KEY_RATE_LIMIT_BURST: "1000000",
  DB_POOL_MAX: "10",
  DB_STATEMENT_TIMEOUT_MS: "3000",
  DB_TX_TIMEOUT_MS: "3000",
  LOCK_WAIT_MS: "2000",
  REPLICA_MAX_LAG_MS: "1000",
  FLASH_SALE_RESERVATION_TTL_MS: "3000",
  FLASH_SALE_RECONCILE_MS: "1000",
  REFUND_BACKOFF_BASE_MS: "50",
  REFUND_BACKOFF_MAX_MS: "500",
  LOG_LEVEL: "warn",
};

const REPORT = path.resolve("test-results/cluster.txt");
const OPERATOR = { actor: { email: "cluster@test.local", role: "admin" as const }, requestId: null };

let dir: string;
let state: ClusterState;
let deps: Deps;
let observer: Db;
let apiKey: string;
const tag = randomBytes(3).toString("hex");

type TrpcBody = { result?: { data: Record<string, unknown> }; error?: { data: { appCode: string } } };
const appCode = (json: unknown) => (json as TrpcBody).error?.data.appCode ?? null;
const dataOf = <T = Record<string, unknown>>(json: unknown) => (json as TrpcBody).result?.data as T;

function call(base: string, procedure: string, body: unknown, headers: Record<string, string> = {}) {
  return postJson(base, procedure, body, { authorization: `Bearer ${apiKey}`, ...headers });
}

/** Retries "not now" answers (lock busy, version conflict) with the same request id until a final one. */
async function callUntilFinal(base: string, procedure: string, body: unknown, headers: Record<string, string> = {}): Promise<{ status: number; json: unknown }> {
  const requestId = randomUUID();
  for (let i = 0; ; i++) {
    const res = await call(base, procedure, body, { ...headers, "x-request-id": requestId });
    const code = appCode(res.json);
    if (!["OPERATION_LOCKED", "VERSION_CONFLICT", "DUPLICATE_REQUEST_IN_FLIGHT", "UNAVAILABLE"].includes(code ?? "") || i > 40) return res;
    await new Promise((r) => setTimeout(r, 50 + Math.random() * 100));
  }
}

async function fund(userId: string, amount: number): Promise<void> {
  await grantCredits(deps, { userId, creditTypeId: "points", amount, businessCode: "cluster.open", businessId: `${userId}` }, { principal: null, requestId: null });
}

/** A sale on now for the next hour, opened by an operator. */
function openSale(name: string, items: { name: string; creditTypeId: string; pointsPrice: number; stock: number }[]) {
  return createActivity(deps, { name, startsAt: new Date(Date.now() - 1_000), endsAt: new Date(Date.now() + 3_600_000), items }, { actor: { email: "cluster@test.local", role: "operator" } });
}

async function balanceOf(userId: string): Promise<number> {
  const [row] = await sqlOf(observer).query<{ balance: string }>("SELECT balance::text FROM accounts WHERE user_id = $1 AND credit_type_id = 'points'", [userId]);
  return Number(row?.balance ?? 0);
}

/** Requests each API instance has been sent by the balancer (HAProxy's statistics, CSV). */
async function requestsPerInstance(): Promise<Record<string, number>> {
  const csv = await (await fetch(`${state.statsUrl};csv`)).text();
  const out: Record<string, number> = {};
  for (const line of csv.split("\n")) {
    const cols = line.split(",");
    if (cols[0] === "api" && cols[1]?.startsWith("api-")) out[cols[1]] = Number(cols[7]);
  }
  return out;
}

async function haproxyStatus(server: string): Promise<string> {
  const csv = await (await fetch(`${state.statsUrl};csv`)).text();
  return csv.split("\n").find((l) => l.startsWith(`api,${server},`))?.split(",")[17] ?? "?";
}

/** The Redis Cluster's nodes as the first node that answers sees them. */
const redisNodes = () => clusterNodes(state.redis.nodes.map((n) => n.port));

async function clusterStateOk(port: number): Promise<boolean> {
  return /cluster_state:ok/.test(String(await ask(port, "cluster", "info").catch(() => "")));
}

function report(line: string): void {
  mkdirSync(path.dirname(REPORT), { recursive: true });
  appendFileSync(REPORT, `${new Date().toISOString()} ${line}\n`);
  console.log(line);
}

beforeAll(async () => {
  dir = mkdtempSync(path.join(tmpdir(), "fp-cluster-"));
  chmodSync(dir, 0o777);
  const t0 = performance.now();
  // CLUSTER_REDIS=single: one redis-server instead of Redis Cluster (to tell the two apart when something fails).
  state = await clusterUp({ dir, redis: process.env.CLUSTER_REDIS === "single" ? "single" : "cluster", seed: false, env: CLUSTER_ENV });
  report(`cluster up in ${((performance.now() - t0) / 1000).toFixed(1)} s: ${state.api.length} API + dashboard + ${state.workers.length} workers, HAProxy, PgBouncer, primary + replica, Redis ${state.redis.mode} (${state.redis.nodes.length} nodes)`);
  deps = createDeps(loadEnv({ ...state.env, NODE_ENV: "test", LOG_LEVEL: "fatal" }), {}, "cluster-test");
  observer = createDb({ url: `postgresql://postgres@127.0.0.1:${state.postgres.primary.port}/${state.dbName}`, poolMax: 3, poolWaitMs: 10_000, statementTimeoutMs: 60_000, txTimeoutMs: 60_000, applicationName: "cluster-checker" });
  await deps.db.creditType.upsert({ where: { id: "points" }, create: { id: "points", name: "points" }, update: {} });
  apiKey = (await createApiKey(deps.db, { name: `cluster ${tag}`, scopes: [] })).key;
  await setQuickBreakers(deps, "cluster");
}, 240_000);

afterAll(async () => {
  if (deps) await closeDeps(deps);
  await observer?.$disconnect();
  if (dir) await clusterDown(dir);
}, 120_000);

describe("several instances behind a balancer", () => {
  it("deducts through the balancer: 300 at once on one account apply exactly what it holds, spread over both API instances", async () => {
    const user = `c-${tag}-hot`;
    await fund(user, 1_000);
    const before = await requestsPerInstance();
    const results = await Promise.all(
      Array.from({ length: 300 }, (_, i) =>
        callUntilFinal(state.url, "credit.deduct", { userId: user, creditTypeId: "points", amount: 5, businessCode: "cluster.hot", businessId: `${tag}-${i}` }),
      ),
    );
    const ok = results.filter((r) => r.status === 200).length;
    const refused = results.filter((r) => appCode(r.json) === "INSUFFICIENT_BALANCE").length;
    expect({ ok, refused, other: results.length - ok - refused }).toEqual({ ok: 200, refused: 100, other: 0 });
    expect(await balanceOf(user)).toBe(0);
    const after = await requestsPerInstance();
    for (const a of state.api) expect((after[a.name] ?? 0) - (before[a.name] ?? 0)).toBeGreaterThan(50);
  });

  it("sends one user's calls to one instance when they carry X-FlashPoints-User", async () => {
    const user = `c-${tag}-routed`;
    await fund(user, 1_000);
    const before = await requestsPerInstance();
    const results = await Promise.all(
      Array.from({ length: 40 }, (_, i) =>
        callUntilFinal(state.url, "credit.deduct", { userId: user, creditTypeId: "points", amount: 1, businessCode: "cluster.routed", businessId: `${tag}-${i}` }, { "x-flashpoints-user": user }),
      ),
    );
    expect(results.every((r) => r.status === 200)).toBe(true);
    const after = await requestsPerInstance();
    const deltas = state.api.map((a) => (after[a.name] ?? 0) - (before[a.name] ?? 0)).sort((x, y) => x - y);
    expect(deltas[0]).toBe(0); // none to the other instance
    expect(deltas[1]).toBeGreaterThanOrEqual(40); // (a call told "not now" is sent again)
    expect(await balanceOf(user)).toBe(960);
  });

  it("replays an X-Request-Id on another instance, and a business key anywhere, without applying twice", async () => {
    const user = `c-${tag}-replay`;
    await fund(user, 100);
    const [a1, a2] = state.api;
    const body = { userId: user, creditTypeId: "points", amount: 30, businessCode: "cluster.replay", businessId: tag };
    const first = await call(a1!.url, "credit.deduct", body, { "x-request-id": `replay-${tag}` });
    const again = await call(a2!.url, "credit.deduct", body, { "x-request-id": `replay-${tag}` });
    expect(first.status).toBe(200);
    expect(again.json).toEqual(first.json);
    const sameKey = await call(state.url, "credit.deduct", body);
    expect(dataOf(sameKey.json)).toMatchObject({ transactionId: dataOf(first.json).transactionId, idempotent: true });
    const otherInput = await call(a2!.url, "credit.deduct", { ...body, amount: 31 }, { "x-request-id": `replay-${tag}` });
    expect(appCode(otherInput.json)).toBe("IDEMPOTENCY_KEY_REUSED");
    expect(await balanceOf(user)).toBe(70);
  });

  it("shares one rate limit and one breaker state across instances", async () => {
    const user = `c-${tag}-limited`;
    await fund(user, 1_000);
    await updateSetting(deps, rateLimitSetting, { ...OPERATOR, action: "rateLimit.set", target: "rateLimit", reason: "cluster test: a small bucket", change: () => ({ perSecond: 0.001, burst: 6 }) });
    try {
      await new Promise((r) => setTimeout(r, 1_200)); // every instance hears of it (pub/sub; reload at worst every 5 s)
      const results = [];
      for (let i = 0; i < 12; i++) {
        const node = state.api[i % state.api.length]!;
        results.push(await call(node.url, "credit.deduct", { userId: user, creditTypeId: "points", amount: 1, businessCode: "cluster.limit", businessId: `${tag}-${i}` }));
      }
      expect(results.filter((r) => r.status === 200)).toHaveLength(6);
      expect(results.filter((r) => appCode(r.json) === "RATE_LIMITED")).toHaveLength(6);
    } finally {
      await updateSetting(deps, rateLimitSetting, { ...OPERATOR, action: "rateLimit.set", target: "rateLimit", reason: "cluster test: limits out of the way again", change: () => ({ perSecond: 1_000_000, burst: 1_000_000 }) });
    }

    await forceCircuit(deps, { name: "credit.deduct", state: "OPEN", reason: "cluster test" }, OPERATOR);
    try {
      for (const node of state.api) {
        const res = await call(node.url, "credit.deduct", { userId: user, creditTypeId: "points", amount: 1, businessCode: "cluster.breaker", businessId: `${tag}-${node.name}` });
        expect(appCode(res.json)).toBe("CIRCUIT_OPEN");
      }
    } finally {
      await resetCircuit(deps, { name: "credit.deduct", reason: "cluster test done" }, OPERATOR);
    }
    await new Promise((r) => setTimeout(r, 1_200));
    for (const node of state.api) {
      const res = await callUntilFinal(node.url, "credit.deduct", { userId: user, creditTypeId: "points", amount: 1, businessCode: "cluster.breaker2", businessId: `${tag}-${node.name}` });
      expect(res.status).toBe(200);
    }
  });

  it("sells a flash sale's stock exactly once through the balancer: 120 buyers, 40 units", async () => {
    const buyers = Array.from({ length: 120 }, (_, i) => `c-${tag}-buyer-${i}`);
    await Promise.all(buyers.map((u) => fund(u, 100)));
    const activity = await openSale(`cluster sale ${tag}`, [{ name: "lamp", creditTypeId: "points", pointsPrice: 40, stock: 40 }]);
    const itemId = activity.items[0]!.id;
    const results = await Promise.all(buyers.map((userId) => callUntilFinal(state.url, "flashSale.purchase", { userId, activityId: activity.id, itemId })));
    const ok = results.filter((r) => r.status === 200).length;
    const soldOut = results.filter((r) => appCode(r.json) === "SOLD_OUT").length;
    expect({ ok, soldOut }).toEqual({ ok: 40, soldOut: 80 });
    const [row] = await sqlOf(observer).query<{ sold: number; orders: number }>(
      "SELECT i.sold, (SELECT count(*)::int FROM flash_sale_orders o WHERE o.item_id = i.id) AS orders FROM flash_sale_items i WHERE i.id = $1",
      [itemId],
    );
    expect(row).toEqual({ sold: 40, orders: 40 });
    const charged = (await Promise.all(buyers.map(balanceOf))).filter((b) => b === 60).length;
    expect(charged).toBe(40);
  });

  it("gives back queued refunds exactly once with two workers competing for them, and keeps credit.refund's contract", async () => {
    // Purchases that fail after their debit committed: the refund is queued with the cancellation.
    const users = Array.from({ length: 12 }, (_, i) => `c-${tag}-refund-${i}`);
    await Promise.all(users.map((u) => fund(u, 100)));
    const activity = await openSale(`cluster refunds ${tag}`, [{ name: "mug", creditTypeId: "points", pointsPrice: 25, stock: 100 }]);
    deps.failpoints.set("flashSale.afterDebit=error");
    try {
      for (const userId of users) await expect(purchase(deps, { userId, activityId: activity.id, itemId: activity.items[0]!.id }, { principal: null, requestId: null })).rejects.toThrow();
    } finally {
      deps.failpoints.set(undefined);
    }
    const deadline = Date.now() + 30_000;
    let statuses: { status: string; n: number }[] = [];
    while (Date.now() < deadline) {
      statuses = await sqlOf(observer).query<{ status: string; n: number }>("SELECT status::text, count(*)::int AS n FROM refunds WHERE user_id = ANY($1) GROUP BY status", [users]);
      if (statuses.length === 1 && statuses[0]?.status === "SUCCEEDED") break;
      await new Promise((r) => setTimeout(r, 200));
    }
    expect(statuses).toEqual([{ status: "SUCCEEDED", n: users.length }]);
    for (const u of users) expect(await balanceOf(u)).toBe(100);

    // credit.refund over HTTP: parts of one debit, never more than it.
    const user = `c-${tag}-partial`;
    await fund(user, 100);
    const debit = dataOf<{ transactionId: string }>((await callUntilFinal(state.url, "credit.deduct", { userId: user, creditTypeId: "points", amount: 50, businessCode: "cluster.order", businessId: tag })).json);
    const part = (n: number, amount: number) => callUntilFinal(state.url, "credit.refund", { transactionId: debit.transactionId, amount, businessCode: "cluster.refund", businessId: `${tag}-${n}` });
    const [r1, r2] = await Promise.all([part(1, 20), part(2, 20)]);
    expect([r1.status, r2.status]).toEqual([200, 200]);
    expect(appCode((await part(3, 20)).json)).toBe("REFUND_EXCEEDS_DEBIT");
    expect(await balanceOf(user)).toBe(90);
  });

  it("serves lag-tolerant reads from the replica, and loses none when the replica stops mid-load", async () => {
    const user = `c-${tag}-reader`;
    await fund(user, 10);
    const replicaReads = async () => {
      let total = 0;
      for (const a of state.api) {
        const text = await (await fetch(`${a.url}/api/metrics`)).text();
        for (const m of text.matchAll(/^fp_replica_reads_total\{target="replica",reason="fresh"\} (\d+)/gm)) total += Number(m[1]);
      }
      return total;
    };
    const ledger = () =>
      fetch(`${state.url}/api/trpc/credit.ledger?input=${encodeURIComponent(JSON.stringify({ userId: user, creditTypeId: "points", limit: 5 }))}`, {
        headers: { authorization: `Bearer ${apiKey}` },
      }).then(async (r) => ({ status: r.status, items: r.ok ? ((await r.json()) as { result: { data: { items: unknown[] } } }).result.data.items.length : -1 }));

    const before = await replicaReads();
    for (let i = 0; i < 30; i++) await ledger();
    expect(await replicaReads()).toBeGreaterThan(before);

    const answers: { status: number; items: number }[] = [];
    let running = true;
    const loops = Array.from({ length: 8 }, async () => {
      while (running) answers.push(await ledger().catch(() => ({ status: 0, items: -1 })));
    });
    await new Promise((r) => setTimeout(r, 700));
    pgServer("replica", state.dir, state.postgres.replica.port).stop("fast");
    const atStop = answers.length;
    await new Promise((r) => setTimeout(r, 1_500));
    running = false;
    await Promise.all(loops);
    const failed = answers.filter((a) => a.status !== 200 || a.items !== 1);
    report(`replica stopped mid-load: ${answers.length} ledger reads through the balancer (${answers.length - atStop} after the stop), ${failed.length} failed`);
    expect(answers.length - atStop).toBeGreaterThan(20);
    expect(failed).toEqual([]);
    const health = (await (await fetch(`${state.api[0]!.url}/api/health`)).json()) as Record<string, string>;
    expect(health).toMatchObject({ status: "ok", replica: "down" });
  });

  it("loses no request when an API instance is killed mid-load: the balancer routes around it, clients retry with the same request id", async () => {
    const users = Array.from({ length: 30 }, (_, i) => `c-${tag}-load-${i}`);
    await Promise.all(users.map((u) => fund(u, 1_000)));
    const activity = await openSale(`cluster load ${tag}`, [{ name: "pen", creditTypeId: "points", pointsPrice: 40, stock: 30 }, { name: "cap", creditTypeId: "points", pointsPrice: 40, stock: 30 }]);
    const target: LoadTarget = { urls: () => [state.url], apiKey, users, sale: { activityId: activity.id, itemIds: activity.items.map((i) => i.id) }, creditTypeId: "points", observer };
    const t0 = performance.now();
    const load = new Load(target, { concurrency: 16 });
    load.start();
    await new Promise((r) => setTimeout(r, 1_500));
    load.phase = "fault";
    const victim = state.api[0]!;
    await stopProcess(victim.pid, 0, "SIGKILL");
    await new Promise((r) => setTimeout(r, 2_000));
    load.phase = "after";
    await new Promise((r) => setTimeout(r, 1_000));
    await load.stop();
    const { line, problems } = await verdict(target, load, `API instance ${victim.name} killed (SIGKILL) behind HAProxy`, t0);
    report(line);
    expect(problems).toEqual([]);
    expect(await haproxyStatus(victim.name)).toMatch(/DOWN/);
    expect(load.requests.filter((r) => r.answers.some((a) => a.during === "after")).length).toBeGreaterThan(20);
  });

  it("spreads its Redis state over every node of the Redis Cluster, masters and replicas", async () => {
    if (state.redis.mode !== "cluster") return;
    for (const node of state.redis.nodes) {
      expect(await clusterStateOk(node.port), `node :${node.port}`).toBe(true);
      // Buckets, markers, sale stock: hashed over the masters, copied to their replicas.
      expect(Number(await ask(node.port, "dbsize")), `node :${node.port}`).toBeGreaterThan(0);
    }
  });

  it("loses no request when a Redis master is killed mid-load: its replica takes over, the balancer keeps every instance", async () => {
    if (state.redis.mode !== "cluster") return;
    const users = Array.from({ length: 30 }, (_, i) => `c-${tag}-redis-${i}`);
    await Promise.all(users.map((u) => fund(u, 1_000)));
    const activity = await openSale(`cluster redis ${tag}`, [{ name: "mug", creditTypeId: "points", pointsPrice: 40, stock: 30 }, { name: "hat", creditTypeId: "points", pointsPrice: 40, stock: 30 }]);
    const target: LoadTarget = { urls: () => [state.url], apiKey, users, sale: { activityId: activity.id, itemIds: activity.items.map((i) => i.id) }, creditTypeId: "points", observer };
    const nodes = await redisNodes();
    const victim = nodes.find((n) => n.role === "master")!;
    const replica = nodes.find((n) => n.replicaOf === victim.id)!;
    expect(replica, "the master has a replica").toBeDefined();
    const entry = state.redis.nodes.find((n) => n.port === victim.port)!;
    const live = state.api.filter((a) => a.name !== state.api[0]!.name); // api-1 was killed above
    const t0 = performance.now();
    const load = new Load(target, { concurrency: 16 });
    load.start();
    await new Promise((r) => setTimeout(r, 1_500));
    load.phase = "fault";
    await stopProcess(entry.pid, 0, "SIGKILL");
    const killed = performance.now();
    // Failed over once its replica is a master and the cluster is whole again.
    let tookOverMs = -1;
    while (tookOverMs < 0 && performance.now() - killed < 20_000) {
      await new Promise((r) => setTimeout(r, 100));
      const now = await redisNodes().catch(() => []);
      const promoted = now.find((n) => n.id === replica.id)?.role === "master";
      if (promoted && (await clusterStateOk(replica.port))) tookOverMs = performance.now() - killed;
    }
    // Meanwhile the balancer kept the instances: readiness does not hang on the Redis they share.
    const statuses = await Promise.all(live.map((a) => haproxyStatus(a.name)));
    load.phase = "after";
    await new Promise((r) => setTimeout(r, 1_500));
    await load.stop();
    const { line, problems } = await verdict(target, load, `Redis master :${victim.port} killed (SIGKILL), failed over in ${Math.round(tookOverMs)} ms`, t0);
    report(line);
    expect(tookOverMs, "the replica took over").toBeGreaterThan(0);
    expect(problems).toEqual([]);
    expect(statuses.every((s) => s.startsWith("UP")), statuses.join(",")).toBe(true);
    expect(load.requests.filter((r) => r.answers.some((a) => a.during === "after" && a.kind === "answered" && a.status === 200)).length).toBeGreaterThan(20);
  });

  it("keeps every invariant over the whole database", async () => {
    const violations = await checkInvariants(observer, { settled: true });
    expect(violations, describeViolations(violations)).toEqual([]);
  });
});
