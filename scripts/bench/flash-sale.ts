/**
 * The flash-sale scenarios of `npm run bench`, against the API-only server:
 *
 *   - the sold-out flood: a closed loop of purchases of an item that is gone,
 *     each answered `SOLD_OUT` from the instance's memory; compared with
 *     `system.ping` on the same server, run in slices alternating with the
 *     flood's (a machine whose speed drifts over a run moves both alike), and
 *     with the database work it caused (pool checkouts, read from the server's
 *     own metrics, per request);
 *   - the race: 1,000 funded buyers at once (each on a connection opened
 *     beforehand, from a client process of its own) for 100 units.
 */
import { spawn } from "node:child_process";
import path from "node:path";
import type pg from "pg";
import { createDb } from "../../src/server/infra/db";
import { createApiKey } from "../../src/server/identity/api-keys";
import { ACCOUNTS, CREDIT_TYPE, HOT_USER } from "./accounts";
import { appCodeOf, callOnce, countInto, mergeRuns, percentiles, runLoad, type ErrorMix, type RawRun } from "./lib";

const TRPC = "/api/trpc/";

/** A key with the `catalog` scope, made the way the service makes them. */
export async function catalogKey(databaseUrl: string): Promise<string> {
  const db = createDb({ url: databaseUrl, poolMax: 1, poolWaitMs: 5_000, statementTimeoutMs: 10_000, txTimeoutMs: 10_000 });
  try {
    return (await createApiKey(db, { name: "bench catalog", scopes: ["catalog"] })).key;
  } finally {
    await db.$disconnect();
  }
}

/** A sale on now with one item of `stock` units at 1 point; returns its ids. */
export async function openSale(url: string, key: string, name: string, stock: number): Promise<{ activityId: string; itemId: string }> {
  const now = Date.now();
  const res = await callOnce(url, `${TRPC}flashSale.createActivity`, key, {
    name,
    startsAt: new Date(now - 1_000).toISOString(),
    endsAt: new Date(now + 3_600_000).toISOString(),
    items: [{ name: `${name} item`, creditTypeId: CREDIT_TYPE, pointsPrice: 1, stock }],
  });
  if (res.status !== 200) throw new Error(`flashSale.createActivity answered ${res.status}: ${res.body.slice(0, 300)}`);
  const activity = (JSON.parse(res.body) as { result: { data: { id: string; items: { id: string }[] } } }).result.data;
  return { activityId: activity.id, itemId: activity.items[0]!.id };
}

/** The server's count of database connections taken (each query or transaction takes one). */
export async function dbCheckouts(url: string): Promise<number> {
  const text = await (await fetch(`${url}/api/metrics`)).text();
  const m = /^fp_db_checkouts_total (\d+(?:\.\d+)?)/m.exec(text);
  if (!m) throw new Error("fp_db_checkouts_total is not in /api/metrics");
  return Number(m[1]);
}

/** Slices of the flood and of its ping baseline, taking turns, s each. */
export const FLOOD_SLICE_SECONDS = 2;

/**
 * The sold-out flood: the unit is bought first; then every purchase is
 * answered SOLD_OUT (counted as the expected answer). `system.ping` runs in
 * the slices between, as long in all. Returns both runs and the database
 * checkouts the flood caused.
 */
export async function soldOutFlood(opts: {
  url: string;
  serviceKey: string;
  catalog: string;
  connections: number;
  warmSeconds: number;
  seconds: number;
}): Promise<{ raw: RawRun; ping: RawRun; checkouts: number }> {
  const { activityId, itemId } = await openSale(opts.url, opts.catalog, "bench sold out", 1);
  const first = await callOnce(opts.url, `${TRPC}flashSale.purchase`, opts.serviceKey, { userId: HOT_USER, activityId, itemId });
  if (first.status !== 200) throw new Error(`the one unit could not be bought (${first.status}): ${first.body.slice(0, 300)}`);
  const load = {
    url: opts.url,
    path: `${TRPC}flashSale.purchase`,
    apiKey: opts.serviceKey,
    body: () => ({ userId: `u${Math.floor(Math.random() * ACCOUNTS)}`, activityId, itemId }),
    connections: opts.connections,
  };
  const pingLoad = { url: opts.url, path: `${TRPC}system.ping`, apiKey: opts.serviceKey, body: () => ({}), connections: opts.connections };
  await runLoad({ ...load, seconds: opts.warmSeconds });
  await runLoad({ ...pingLoad, seconds: opts.warmSeconds });
  const floods: RawRun[] = [];
  const pings: RawRun[] = [];
  let checkouts = 0;
  const slices = Math.max(1, Math.round(opts.seconds / FLOOD_SLICE_SECONDS));
  const sliceSeconds = opts.seconds / slices;
  for (let i = 0; i < slices; i++) {
    const before = await dbCheckouts(opts.url);
    floods.push(await runLoad({ ...load, seconds: sliceSeconds }));
    checkouts += (await dbCheckouts(opts.url)) - before;
    pings.push(await runLoad({ ...pingLoad, seconds: sliceSeconds }));
  }
  const raw = mergeRuns(floods);
  // SOLD_OUT is this scenario's right answer; anything else stays in the error mix.
  const soldOut = raw.errors.SOLD_OUT ?? 0;
  const errors: ErrorMix = { ...raw.errors };
  delete errors.SOLD_OUT;
  if (raw.ok > 0) countInto(errors, "unexpected 200", raw.ok);
  return { raw: { ...raw, ok: soldOut, errors }, ping: mergeRuns(pings), checkouts };
}

export type RaceResult = {
  buyers: number;
  units: number;
  orders: number;
  sold: number;
  /** From the first call sent to the last answer. */
  maxMs: number;
  latenciesMs: number[];
  errors: ErrorMix;
};

/** 1,000 buyers (the spread accounts) at once for `units` units. */
export async function race(opts: { url: string; serviceKey: string; catalog: string; pool: pg.Pool; units: number }): Promise<RaceResult> {
  const { activityId, itemId } = await openSale(opts.url, opts.catalog, "bench race", opts.units);
  const bodies = Array.from({ length: ACCOUNTS }, (_, i) => ({ userId: `u${i}`, activityId, itemId }));
  const answers = await burst({
    url: opts.url,
    path: `${TRPC}flashSale.purchase`,
    headers: { authorization: `Bearer ${opts.serviceKey}` },
    bodies,
    warm: { path: `${TRPC}system.ping`, body: {} },
  });
  const errors: ErrorMix = {};
  for (const a of answers) if (a.status !== 200) countInto(errors, a.status === 0 ? "connection error" : appCodeOf(a.status, a.body));
  const { rows } = await opts.pool.query<{ orders: number; sold: number }>(
    "SELECT (SELECT count(*)::int FROM flash_sale_orders WHERE item_id = $1) AS orders, (SELECT sold FROM flash_sale_items WHERE id = $1) AS sold",
    [itemId],
  );
  return {
    buyers: bodies.length,
    units: opts.units,
    orders: rows[0]?.orders ?? -1,
    sold: rows[0]?.sold ?? -1,
    maxMs: Math.max(...answers.map((a) => a.ms)),
    latenciesMs: answers.map((a) => a.ms),
    errors,
  };
}

export { percentiles };

/** The test suite's burst client (src/test/burst-client.ts), as a process of its own. */
function burst(job: object): Promise<{ status: number; body: string; ms: number }[]> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ["--import", "tsx", path.join("src", "test", "burst-client.ts")], { stdio: ["pipe", "pipe", "inherit"] });
    let out = "";
    child.stdout.on("data", (c: Buffer) => (out += c.toString()));
    child.once("exit", (code) => {
      if (code !== 0) return reject(new Error(`the burst client exited with ${code}`));
      try {
        resolve(JSON.parse(out) as { status: number; body: string; ms: number }[]);
      } catch (e) {
        reject(e instanceof Error ? e : new Error(String(e)));
      }
    });
    child.stdin.end(JSON.stringify(job));
  });
}
