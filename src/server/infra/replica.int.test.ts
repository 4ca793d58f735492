import { chmodSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createDb, type Db } from "./db";
import { replicaRouter, type ReadRouter } from "./replica";
import { sparePort } from "~/server/credit/testing";
import { createPrimary, createReplica, waitForReplay, type PgServer } from "../../../scripts/cluster/postgres";

/**
 * The read router against a real streaming replica (a primary of the test's
 * own and a pg_basebackup clone of it): fresh reads go to the replica, a
 * replica held back past the bound or stopped is left for the primary, and no
 * read fails on the way.
 */

let dir: string;
let primary: PgServer;
let replica: PgServer;
let primaryDb: Db;
let replicaDb: Db;
let reads: ReadRouter;
let admin: pg.Client;
const MAX_LAG_MS = 300;

const dbOf = (url: string, name: string) =>
  createDb({ url, poolMax: 4, poolWaitMs: 2_000, statementTimeoutMs: 2_000, txTimeoutMs: 2_000, applicationName: name });

/** Which server answered: the replica is in recovery, the primary is not. */
const whoAnswers = () => reads.run(async (db) => (await db.$queryRaw<{ r: boolean }[]>`SELECT pg_is_in_recovery() AS r`)[0]!.r ? "replica" : "primary");

async function settle(ms: number) {
  await new Promise((r) => setTimeout(r, ms));
}

/** Reads until the router has probed and decided (a probe is asynchronous: the first reads of a state go where the last probe said). */
async function readsGoTo(target: "replica" | "primary", withinMs = 5_000): Promise<void> {
  const deadline = Date.now() + withinMs;
  let last = "";
  while (Date.now() < deadline) {
    last = await whoAnswers();
    if (last === target) return;
    await settle(25);
  }
  throw new Error(`reads still go to the ${last} after ${withinMs} ms`);
}

beforeAll(async () => {
  dir = mkdtempSync(path.join(tmpdir(), "fp-replica-"));
  chmodSync(dir, 0o777);
  primary = await createPrimary(dir, await sparePort());
  replica = await createReplica(dir, await sparePort(), primary);
  admin = new pg.Client({ connectionString: primary.adminUrl });
  await admin.connect();
  await admin.query("CREATE TABLE marks (n int PRIMARY KEY)");
  await waitForReplay(primary.adminUrl, replica.adminUrl);
  primaryDb = dbOf(primary.adminUrl, "replica-test-primary");
  replicaDb = dbOf(replica.adminUrl, "replica-test-replica");
  reads = replicaRouter({ primary: primaryDb, replica: replicaDb, maxLagMs: MAX_LAG_MS, probeEveryMs: 20 });
}, 120_000);

afterAll(async () => {
  await reads?.close();
  await primaryDb?.$disconnect();
  await admin?.end();
  for (const s of [replica, primary]) {
    try {
      s?.stop("immediate");
    } catch {
      // already stopped
    }
  }
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe("reads that tolerate lag, against a streaming replica", () => {
  it("go to the replica while it keeps up, and see what the primary committed within the bound", async () => {
    await readsGoTo("replica");
    await admin.query("INSERT INTO marks VALUES (1)");
    await settle(MAX_LAG_MS);
    const seen = await reads.run((db) => db.$queryRaw<{ n: number }[]>`SELECT n FROM marks`);
    expect(seen.map((r) => r.n)).toEqual([1]);
    // Measured now (the last probe may be older than the bound by the time the test looks).
    expect(await reads.check()).toMatchObject({ configured: true, serving: true });
  });

  it("go to the primary once the replica falls further behind than REPLICA_MAX_LAG_MS, and back when it catches up", async () => {
    const r = new pg.Client({ connectionString: replica.adminUrl });
    await r.connect();
    try {
      await r.query("SELECT pg_wal_replay_pause()");
      // The primary moves on; the replica, paused, does not follow.
      await admin.query("INSERT INTO marks VALUES (2)");
      await readsGoTo("primary", MAX_LAG_MS * 10);
      // Every read in that state sees the newest data: none is served stale past the bound.
      const seen = await reads.run((db) => db.$queryRaw<{ n: number }[]>`SELECT n FROM marks ORDER BY n`);
      expect(seen.map((x) => x.n)).toEqual([1, 2]);
      const state = reads.state();
      expect(state.configured && state.serving).toBe(false);
      expect(state.configured && (state.lagMs ?? Infinity) > MAX_LAG_MS).toBe(true);
    } finally {
      await r.query("SELECT pg_wal_replay_resume()");
      await r.end();
    }
    await readsGoTo("replica");
  });

  it("lose no read when the replica stops mid-load: they go to the primary, then back when it returns", async () => {
    await readsGoTo("replica");
    const failures: string[] = [];
    let done = 0;
    let stop = false;
    const loop = async () => {
      while (!stop) {
        try {
          await reads.run((db) => db.$queryRaw`SELECT count(*) FROM marks`);
          done++;
        } catch (e) {
          failures.push(e instanceof Error ? `${e.name}: ${e.message}` : String(e));
        }
      }
    };
    const loops = Array.from({ length: 8 }, loop);
    await settle(200);
    replica.stop("fast");
    await settle(600);
    const duringOutage = done;
    await settle(400);
    expect(done).toBeGreaterThan(duringOutage); // reads kept being answered with the replica gone
    stop = true;
    await Promise.all(loops);
    expect(failures).toEqual([]);
    expect(await whoAnswers()).toBe("primary");
    expect(reads.state()).toMatchObject({ configured: true, serving: false });

    replica.start();
    await readsGoTo("replica", 15_000);
  });
});
