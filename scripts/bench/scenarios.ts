/**
 * The scenarios of `npm run bench`, in the order they run. Each measures for
 * `seconds` after a short unmeasured warm-up, and is followed by the books
 * check. What each one means and what it is compared with: docs/benchmarks.md.
 */
import { spawn } from "node:child_process";
import type pg from "pg";
import { anySpreadUser, checkBooks, CREDIT_TYPE, HOT_USER, type Books, type Seeded } from "./accounts";
import { runBareSql } from "./bare-sql";
import {
  appCodeOf,
  callOnce,
  countInto,
  freePort,
  GENEROUS_LIMITS,
  mergeRuns,
  nextId,
  percentiles,
  runLoad,
  SERVER_ENV,
  startServerProcess,
  stopChild,
  type BenchDb,
  type ErrorMix,
  type Percentiles,
  type RawRun,
  type ServerProcess,
  type Teardown,
} from "./lib";
import { runOpenLoop } from "./open-loop";
import { DRAINS, measureRefundDrains, REFUNDS_PER_DRAIN } from "./refunds";
import { catalogKey, race, soldOutFlood } from "./flash-sale";

export const GROUPS = ["ping", "sql", "sql-hot", "deduct", "deduct-hot", "open-loop", "batch", "flash-sale", "refunds", "admission"] as const;
export type Group = (typeof GROUPS)[number];

/** What a group's ratios are measured against: run along with it. */
const NEEDS: Partial<Record<Group, Group[]>> = {
  deduct: ["sql", "ping"],
  "deduct-hot": ["sql-hot"],
  "open-loop": ["deduct-hot"],
  batch: ["sql"],
  refunds: ["sql"],
};

/** The groups to run for `--only` (with what they are compared with), in run order. */
export function resolveGroups(only: readonly string[] | null): { groups: Group[]; added: Group[] } {
  if (!only) return { groups: [...GROUPS], added: [] };
  const unknown = only.filter((n) => !(GROUPS as readonly string[]).includes(n));
  if (unknown.length > 0) throw new Error(`unknown scenario ${unknown.join(", ")}; known: ${GROUPS.join(", ")}`);
  const chosen = new Set<Group>(only as Group[]);
  for (let grew = true; grew; ) {
    grew = false;
    for (const g of [...chosen])
      for (const n of NEEDS[g] ?? [])
        if (!chosen.has(n)) {
          chosen.add(n);
          grew = true;
        }
  }
  const groups = GROUPS.filter((g) => chosen.has(g));
  return { groups, added: groups.filter((g) => !only.includes(g)) };
}

export type ScenarioResult = {
  id: string;
  group: Group;
  label: string;
  /** What `rate` counts. */
  unit: "calls/s" | "tx/s" | "deductions/s" | "refunds/s";
  status: "ok" | "not available" | "failed";
  note?: string;
  seconds: number;
  calls: number;
  ok: number;
  /** ok per second (items applied per second for batches). */
  rate: number;
  /** Batches: calls answered 2xx per second. */
  callsPerSec?: number;
  latencyMs: Percentiles | null;
  errors: ErrorMix;
  itemErrors?: ErrorMix;
  books?: Books;
  extra?: Record<string, number | string>;
};

export type BenchSettings = {
  seconds: number;
  connections: number;
  warmSeconds: number;
  /** pg connections of the bare-SQL baseline, and its workers. */
  sqlConnections: number;
  sqlWorkers: number;
  batchItems: number;
  /** The open loop runs at this fraction of the hot account's closed-loop rate. */
  openLoopFraction: number;
};

export type BenchContext = {
  db: BenchDb;
  seeded: Seeded;
  pool: pg.Pool;
  settings: BenchSettings;
  teardown: Teardown;
};

const TRPC = "/api/trpc/";

/** Runs the groups in order; returns every scenario's result. */
export async function runScenarios(ctx: BenchContext, groups: readonly Group[]): Promise<ScenarioResult[]> {
  const results: ScenarioResult[] = [];
  const servers = new Servers(ctx);
  const by = (id: string) => results.find((r) => r.id === id);
  const done = async (r: Omit<ScenarioResult, "books">) => {
    const books = await checkBooks(ctx.pool);
    const result = { ...r, books };
    results.push(result);
    printProgress(result);
  };
  const { settings: s, seeded } = ctx;
  const spread = () => ({
    userId: anySpreadUser(),
    creditTypeId: CREDIT_TYPE,
    amount: 1,
    businessCode: "bench.deduct",
    businessId: nextId("d"),
  });
  const hot = () => ({ userId: HOT_USER, creditTypeId: CREDIT_TYPE, amount: 1, businessCode: "bench.hot", businessId: nextId("h") });

  for (const group of groups) {
    console.log(`\n── ${group}`);
    switch (group) {
      case "ping":
        for (const mode of ["api", "full"] as const) {
          const server = await servers.get(mode);
          await done(
            await closedLoop(ctx, group, {
              id: `ping.${mode}`,
              label: `system.ping, ${MODE_LABEL[mode]}`,
              url: server.url,
              procedure: "system.ping",
              body: () => ({}),
            }),
          );
        }
        break;
      case "sql":
      case "sql-hot": {
        const accounts = group === "sql" ? seeded.spread : [seeded.hot];
        const spec = { pool: ctx.pool, accounts, workers: s.sqlWorkers, businessCode: `bench.${group}` };
        await runBareSql({ ...spec, seconds: s.warmSeconds });
        const raw = await runBareSql({ ...spec, seconds: s.seconds });
        await done(
          summarize(raw, {
            id: group,
            group,
            label:
              group === "sql"
                ? `bare SQL debit, 1,000 accounts (${s.sqlConnections} pg connections, ${s.sqlWorkers} workers)`
                : `bare SQL debit, ONE hot row (${s.sqlConnections} pg connections, ${s.sqlWorkers} workers)`,
            unit: "tx/s",
          }),
        );
        break;
      }
      case "deduct":
        for (const mode of ["api", "full"] as const) {
          const server = await servers.get(mode);
          await done(
            await closedLoop(ctx, group, {
              id: `deduct.${mode}`,
              label: `credit.deduct, 1,000 accounts, ${MODE_LABEL[mode]}`,
              url: server.url,
              procedure: "credit.deduct",
              body: spread,
            }),
          );
        }
        break;
      case "deduct-hot": {
        const server = await servers.get("api");
        await done(
          await closedLoop(ctx, group, {
            id: "deduct-hot",
            label: `credit.deduct, ONE hot account, ${MODE_LABEL.api}`,
            url: server.url,
            procedure: "credit.deduct",
            body: hot,
          }),
        );
        break;
      }
      case "open-loop": {
        const peak = by("deduct-hot");
        const rate = peak && peak.status === "ok" ? peak.rate * s.openLoopFraction : 0;
        const label = `credit.deduct, ONE hot account, open loop at ${Math.round(s.openLoopFraction * 100)} % of its peak`;
        if (rate < 1) {
          await done(unavailable("open-loop", group, label, "calls/s", "no hot-account peak rate measured"));
          break;
        }
        const server = await servers.get("api");
        const spec = { url: server.url, path: `${TRPC}credit.deduct`, apiKey: seeded.apiKey, body: hot, rate };
        await runOpenLoop({ ...spec, seconds: s.warmSeconds });
        const raw = await runOpenLoop({ ...spec, seconds: s.seconds });
        await done(
          summarize(raw, {
            id: "open-loop",
            group,
            label: `${label} (${Math.round(rate).toLocaleString("en-US")} calls/s offered)`,
            unit: "calls/s",
            extra: { offeredPerSec: Math.round(rate), sent: raw.sent, maxSendLagMs: round1(raw.maxSendLagMs) },
          }),
        );
        break;
      }
      case "batch":
        await done(await batchScenario(ctx, await servers.get("api")));
        break;
      case "flash-sale": {
        const server = await servers.get("api");
        const catalog = await catalogKey(ctx.db.url);
        const flood = await soldOutFlood({
          url: server.url,
          serviceKey: seeded.apiKey,
          catalog,
          connections: s.connections,
          warmSeconds: s.warmSeconds,
          seconds: s.seconds,
        });
        await done(
          summarize(flood.ping, {
            id: "ping.between-floods",
            group,
            label: `system.ping, ${MODE_LABEL.api}, in slices taking turns with the sold-out flood below`,
            unit: "calls/s",
          }),
        );
        const result = summarize(flood.raw, {
          id: "flash-sale.sold-out",
          group,
          label: `flashSale.purchase of a sold-out item (answered from memory), ${MODE_LABEL.api}`,
          unit: "calls/s",
          extra: { dbCheckouts: flood.checkouts, dbCheckoutsPerCall: flood.raw.ok > 0 ? flood.checkouts / flood.raw.ok : 0 },
        });
        await done(result);
        const r = await race({ url: server.url, serviceKey: seeded.apiKey, catalog, pool: ctx.pool, units: 100 });
        await done({
          id: "flash-sale.race",
          group,
          label: `flashSale.purchase, ${r.buyers.toLocaleString("en-US")} buyers at once for ${r.units} units (${r.orders} orders, sold ${r.sold}), ${MODE_LABEL.api}`,
          unit: "calls/s",
          status: r.orders === r.units && r.sold === r.units ? "ok" : "failed",
          ...(r.orders === r.units && r.sold === r.units ? {} : { note: `${r.orders} orders and sold ${r.sold} for ${r.units} units` }),
          seconds: round1(r.maxMs / 1000),
          calls: r.buyers,
          ok: r.buyers - Object.entries(r.errors).reduce((n, [k, v]) => n + (k === "SOLD_OUT" ? 0 : v), 0),
          rate: r.buyers / (r.maxMs / 1000),
          latencyMs: roundPercentiles(percentiles(r.latenciesMs)),
          errors: Object.fromEntries(Object.entries(r.errors).filter(([k]) => k !== "SOLD_OUT")),
          extra: { maxMs: Math.round(r.maxMs), orders: r.orders, soldOut: r.errors.SOLD_OUT ?? 0 },
        });
        break;
      }
      case "refunds": {
        const drains = await measureRefundDrains(ctx.db, ctx.pool, ctx.teardown);
        await done({
          id: "refunds",
          group,
          label: `refund queue: ${REFUNDS_PER_DRAIN.toLocaleString("en-US")} due refunds drained by one worker (median of ${DRAINS})`,
          unit: "refunds/s",
          status: "ok",
          seconds: round1(drains.seconds.reduce((a, b) => a + b, 0)),
          calls: REFUNDS_PER_DRAIN * DRAINS,
          ok: REFUNDS_PER_DRAIN * DRAINS,
          rate: REFUNDS_PER_DRAIN / drains.median,
          latencyMs: null,
          errors: {},
          extra: { drainSeconds: drains.seconds.map((x) => x.toFixed(2)).join(" / ") },
        });
        break;
      }
      case "admission":
        // Its own server process; the two of dist/server.js are not needed any more.
        await servers.stopAll();
        for (const r of await admissionScenarios(ctx)) await done(r);
        break;
    }
  }
  await servers.stopAll();
  return results;
}

const MODE_LABEL = { api: "API-only", full: "full server" } as const;

/** Starts the API-only and the full server from dist/server.js when first needed; both serve the run's database. */
class Servers {
  private started = new Map<"api" | "full", ServerProcess>();
  constructor(private ctx: BenchContext) {}

  async get(mode: "api" | "full"): Promise<ServerProcess> {
    const have = this.started.get(mode);
    if (have) return have;
    const { db, seeded } = this.ctx;
    const t0 = Date.now();
    const server = await startServerProcess({
      DATABASE_URL: db.url,
      REDIS_URL: db.redisUrl,
      REDIS_KEY_PREFIX: db.redisPrefix,
      ...GENEROUS_LIMITS,
      ...(mode === "api" ? { API_ONLY: "1" } : {}),
    });
    this.ctx.teardown.add(`stop the ${MODE_LABEL[mode]} server`, server.stop);
    this.started.set(mode, server);
    if (mode === "full") {
      // A page first: Next is loaded and warm, and from then on the process pays its async-context cost.
      const page = await fetch(`${server.url}/admin/login`);
      if (!page.ok) throw new Error(`the dashboard did not render /admin/login (${page.status})`);
      await page.text();
    }
    const ping = await callOnce(server.url, `${TRPC}system.ping`, seeded.apiKey, {});
    if (ping.status !== 200) throw new Error(`system.ping on the ${MODE_LABEL[mode]} server answered ${ping.status}: ${ping.body}`);
    console.log(`${mode === "api" ? "API-only server" : "full server"} up at ${server.url} in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
    return server;
  }

  async stopAll(): Promise<void> {
    await Promise.all([...this.started.values()].map((s) => s.stop()));
    this.started.clear();
  }
}

type HttpSpec = {
  id: string;
  label: string;
  url: string;
  procedure: string;
  body: () => unknown;
  onOk?: (body: string) => void;
};

/** Warm-up, then a measured closed loop of `connections` connections. */
async function closedLoop(ctx: BenchContext, group: Group, spec: HttpSpec): Promise<Omit<ScenarioResult, "books">> {
  const { settings: s } = ctx;
  const load = { url: spec.url, path: `${TRPC}${spec.procedure}`, apiKey: ctx.seeded.apiKey, body: spec.body, connections: s.connections };
  await runLoad({ ...load, seconds: s.warmSeconds });
  const raw = await runLoad({ ...load, seconds: s.seconds, onOk: spec.onOk });
  return summarize(raw, { id: spec.id, group, label: spec.label, unit: "calls/s" });
}

function summarize(
  raw: RawRun,
  meta: Pick<ScenarioResult, "id" | "group" | "label" | "unit"> & { extra?: ScenarioResult["extra"] },
): Omit<ScenarioResult, "books"> {
  const base = {
    ...meta,
    status: "ok" as const,
    seconds: round1(raw.seconds),
    calls: raw.calls,
    ok: raw.ok,
    latencyMs: roundPercentiles(percentiles(raw.latenciesMs)),
    errors: raw.errors,
  };
  if (raw.items) {
    return { ...base, rate: raw.items.ok / raw.seconds, callsPerSec: raw.ok / raw.seconds, itemErrors: raw.items.errors };
  }
  return { ...base, rate: raw.ok / raw.seconds };
}

function unavailable(id: string, group: Group, label: string, unit: ScenarioResult["unit"], note: string): Omit<ScenarioResult, "books"> {
  return { id, group, label, unit, status: "not available", note, seconds: 0, calls: 0, ok: 0, rate: 0, latencyMs: null, errors: {} };
}

// ── credit.batchDeduct ─────────────────────────────────────────────────────────

type BatchItemAnswer = { ok: true } | { ok: false; error?: { appCode?: string } };

/** 100 deductions per call on the 1,000 accounts; counts items applied and each refused item's appCode. */
async function batchScenario(ctx: BenchContext, server: ServerProcess): Promise<Omit<ScenarioResult, "books">> {
  const { settings: s, seeded } = ctx;
  const id = "batch";
  const label = `credit.batchDeduct, ${s.batchItems} items per call, 1,000 accounts, ${MODE_LABEL.api}`;
  const item = () => ({ userId: anySpreadUser(), creditTypeId: CREDIT_TYPE, amount: 1, businessCode: "bench.batch", businessId: nextId("b") });
  const body = () => ({ items: Array.from({ length: s.batchItems }, item) });
  // Probe with one item: the procedure may not exist in this build.
  const probe = await callOnce(server.url, `${TRPC}credit.batchDeduct`, seeded.apiKey, { items: [item()] });
  if (probe.status === 404 && appCodeOf(probe.status, probe.body) === "NOT_FOUND") {
    return unavailable(id, "batch", label, "deductions/s", "credit.batchDeduct does not exist in this build (404)");
  }
  if (probe.status !== 200) {
    return unavailable(id, "batch", label, "deductions/s", `the probe call answered ${probe.status}: ${probe.body.slice(0, 300)}`);
  }
  let itemsOk = 0;
  const itemErrors: ErrorMix = {};
  const onOk = (text: string) => {
    try {
      const items = (JSON.parse(text) as { result?: { data?: { items?: BatchItemAnswer[] } } }).result?.data?.items;
      if (!Array.isArray(items)) return countInto(itemErrors, "answer without items");
      for (const it of items) {
        if (it.ok) itemsOk++;
        else countInto(itemErrors, it.error?.appCode ?? "no appCode");
      }
    } catch {
      countInto(itemErrors, "unparsable answer");
    }
  };
  const load = { url: server.url, path: `${TRPC}credit.batchDeduct`, apiKey: seeded.apiKey, body, connections: s.connections };
  await runLoad({ ...load, seconds: s.warmSeconds });
  const raw = await runLoad({ ...load, seconds: s.seconds, onOk });
  return summarize({ ...raw, items: { ok: itemsOk, errors: itemErrors } }, { id, group: "batch", label, unit: "deductions/s" });
}

// ── admission control on vs off ────────────────────────────────────────────────

/** A-B-B-A then B-A-A-B: a load that drifts during the run weighs on both variants alike. */
const INTERLEAVING = ["On", "Off", "Off", "On", "Off", "On", "On", "Off"] as const;

/**
 * The same procedure with `admission("credit.deduct")` (token bucket + circuit
 * breaker, limits far above the load) and without, on one process of its own
 * (admission-server.ts): for credit.deduct's work and for a no-op. Each
 * variant gets `seconds` in four segments interleaved with the other's.
 */
async function admissionScenarios(ctx: BenchContext): Promise<Omit<ScenarioResult, "books">[]> {
  const { settings: s, seeded } = ctx;
  const server = await startAdmissionServer(ctx);
  try {
    const segment = Math.max(1, Math.round(s.seconds / 4));
    const bodies = {
      deduct: () => ({ userId: anySpreadUser(), creditTypeId: CREDIT_TYPE, amount: 1, businessCode: "bench.adm", businessId: nextId("a") }),
      ping: () => ({ userId: anySpreadUser(), creditTypeId: CREDIT_TYPE }),
    };
    const out: Omit<ScenarioResult, "books">[] = [];
    for (const work of ["deduct", "ping"] as const) {
      const run = (variant: "On" | "Off", seconds: number) =>
        runLoad({ url: server.url, path: `${TRPC}bench.${work}${variant}`, apiKey: seeded.apiKey, body: bodies[work], connections: s.connections, seconds });
      await run("Off", s.warmSeconds);
      await run("On", s.warmSeconds);
      const parts: Record<"On" | "Off", RawRun[]> = { On: [], Off: [] };
      for (const variant of INTERLEAVING) parts[variant].push(await run(variant, segment));
      const what = work === "deduct" ? "credit.deduct, 1,000 accounts" : "no-op";
      for (const variant of ["On", "Off"] as const) {
        const merged = mergeRuns(parts[variant]);
        out.push({
          ...summarize(merged, {
            id: `admission.${work}.${variant.toLowerCase()}`,
            group: "admission",
            label: `${what}, rate limiter + breaker ${variant === "On" ? "on" : "off (middleware bypassed)"}`,
            unit: "calls/s",
          }),
          extra: { segments: parts[variant].map((p) => Math.round(p.ok / p.seconds)).join(" ") },
        });
      }
    }
    return out;
  } finally {
    await server.stop();
  }
}

async function startAdmissionServer(ctx: BenchContext): Promise<{ url: string; stop: () => Promise<void> }> {
  const { db } = ctx;
  const t0 = Date.now();
  const child = spawn(process.execPath, ["--import", "tsx", "scripts/bench/admission-server.ts"], {
    env: {
      ...process.env,
      ...SERVER_ENV,
      ...GENEROUS_LIMITS,
      PORT: String(await freePort()),
      DATABASE_URL: db.url,
      REDIS_URL: db.redisUrl,
      REDIS_KEY_PREFIX: db.redisPrefix,
    },
    stdio: ["ignore", "pipe", "inherit"],
  });
  const stop = () => stopChild(child);
  ctx.teardown.add("stop the admission server", stop);
  let out = "";
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error("the admission server did not start within 90 s")), 90_000);
    child.once("exit", (code) => {
      clearTimeout(timer);
      reject(new Error(`the admission server exited with ${code}`));
    });
    child.stdout.on("data", (c: Buffer) => {
      out += c.toString();
      const line = out.split("\n").find((l) => l.startsWith("{"));
      if (line) {
        clearTimeout(timer);
        resolve((JSON.parse(line) as { url: string }).url);
      }
    });
  });
  console.log(`admission server (tsx, both variants) up at ${url} in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
  return { url, stop };
}

// ── helpers ────────────────────────────────────────────────────────────────────

const round1 = (n: number) => Math.round(n * 10) / 10;

function roundPercentiles(p: Percentiles | null): Percentiles | null {
  return p && { p50: round1(p.p50), p99: round1(p.p99), p999: round1(p.p999) };
}

function printProgress(r: ScenarioResult): void {
  const rate = r.status === "ok" ? `${Math.round(r.rate).toLocaleString("en-US")} ${r.unit}` : r.status;
  const lat = r.latencyMs ? `, p50 ${r.latencyMs.p50} / p99 ${r.latencyMs.p99} / p999 ${r.latencyMs.p999} ms` : "";
  const errs = Object.entries(r.errors).map(([k, v]) => `${k} ${v}`);
  const itemErrs = Object.entries(r.itemErrors ?? {}).map(([k, v]) => `item ${k} ${v}`);
  const errors = [...errs, ...itemErrs].join(", ") || "none";
  const books = r.books?.ok
    ? `books ok (${r.books.ledgerRows.toLocaleString("en-US")} ledger rows)`
    : `BOOKS WRONG: ${r.books?.mismatchCount} accounts`;
  console.log(`${r.label}: ${rate}${lat}; errors: ${errors}; ${books}${r.note ? ` — ${r.note}` : ""}`);
  for (const m of r.books?.mismatches ?? []) {
    console.log(`  mismatch: ${m.userId}/${m.creditTypeId} balance ${m.balance}, ledger says ${m.ledger}`);
  }
}
