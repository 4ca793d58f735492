import calculateSlot from "cluster-key-slot";
import { describe, expect, it } from "vitest";
import type { Deps } from "./deps";
import { LUA_COMMANDS } from "./lua";
import type { Redis } from "./redis";
import { createLogger } from "./logger";
import { getMetrics } from "./metrics";
import { LiveSettings } from "./live-settings";
import { loadEnv } from "./env";
import { systemClock } from "./clock";
import { confirmUnit, readItem, reconcileStock, releaseUnit, reserveUnit, sweepExpired, warmItem } from "~/server/flash-sale/inventory";
import { admitCall, CIRCUIT_NAMES, recordOutcome, resetCircuitState } from "~/server/resilience/circuit-breaker";
import { keyBucketKey, userBucketKey } from "~/server/resilience/rate-limit";
import { takeTokens } from "~/server/resilience/token-bucket";
import { loginBucketKeys } from "~/server/identity/login";
import { RequestMarker } from "~/server/resilience/request-marker";

/**
 * On a Redis Cluster a script, a MULTI or a multi-key command must touch one
 * hash slot (else CROSSSLOT). This drives the real code against a client that
 * only records what it is asked, then checks the keys each call passed — with
 * the key prefix ioredis would prepend — with the slot function ioredis itself
 * uses.
 */

type Call = { command: string; args: unknown[]; group?: number };

/** Canned replies shaped like the scripts' (the code under test reads them). */
const REPLIES: Record<string, unknown> = {
  fpTokenBucket: [1, 1, 0],
  fpCircuit: [1, "CLOSED", 0, 0, -1, -1, 0, "", "", ""],
  fpSaleReserve: [1, 3],
  fpSaleFinish: 1,
  fpSaleSweep: 0,
  fpSaleWarm: 0,
  fpSaleReconcile: [1, 1, 0],
  fpServerTime: ["1700000000", "0"],
  hgetall: { activityId: "a", startsAt: "0", endsAt: "1", paused: "0", price: "1", creditTypeId: "points" },
  get: "1",
  smembers: [],
  eval: ["claimed"],
};

function recordingClient(): { redis: Redis; calls: Call[] } {
  const calls: Call[] = [];
  let groups = 0;
  const batch = () => {
    const group = ++groups;
    const chain: Record<string, unknown> = new Proxy(
      {},
      {
        get: (_t, prop: string) =>
          prop === "exec"
            ? async () => []
            : (...args: unknown[]) => {
                calls.push({ command: prop, args, group });
                return chain;
              },
      },
    );
    return chain;
  };
  const redis = new Proxy(
    {},
    {
      get: (_t, prop: string) => {
        if (prop === "status") return "ready";
        if (prop === "multi" || prop === "pipeline") return batch;
        if (prop === "then") return undefined;
        return async (...args: unknown[]) => {
          calls.push({ command: prop, args });
          return REPLIES[prop] ?? null;
        };
      },
    },
  ) as unknown as Redis;
  return { redis, calls };
}

/** The keys a recorded call passes: a script's KEYS, an EVAL's, or a command's only key. */
function keysOf(call: Call): string[] {
  const lua = LUA_COMMANDS.find((c) => c.name === call.command);
  if (lua) return call.args.slice(0, lua.numberOfKeys).map(String);
  if (call.command === "eval") return call.args.slice(2, 2 + Number(call.args[1])).map(String);
  return [String(call.args[0])];
}

const PREFIXES = ["fp:", "fp:test:0a1b2c:", "fp{tenant-7}:", "odd{"];
// Ids as the API allows them, and worse: `:`, braces, empty-looking ones.
const IDS = ["alice", "a:b", "we{ird}", "}{", "item-0001"];

async function exercise(redis: Redis, id: string): Promise<void> {
  const env = loadEnv({ NODE_ENV: "test", DATABASE_URL: "postgresql://x@127.0.0.1:5432/x", LOG_LEVEL: "silent" });
  const settings = new LiveSettings({
    db: { setting: { findMany: async () => [] } } as unknown as ConstructorParameters<typeof LiveSettings>[0]["db"],
    log: createLogger("silent"),
  });
  const deps = { env, redis, settings, clock: systemClock, log: createLogger("silent"), metrics: getMetrics() } as unknown as Deps;

  await takeTokens(redis, userBucketKey(id, "points"), { perSecond: 1, burst: 1 });
  await takeTokens(redis, keyBucketKey(id), { perSecond: 1, burst: 1 });
  for (const key of Object.values(loginBucketKeys("10.0.0.1", `${id}@x.test`))) await takeTokens(redis, key, { perSecond: 1, burst: 1 });

  for (const name of CIRCUIT_NAMES) {
    const ticket = await admitCall(deps, name);
    await recordOutcome(deps, { ...ticket, probe: true }, "failure");
    await resetCircuitState(deps, name);
  }

  await reserveUnit(redis, id, "buyer", 1000);
  await confirmUnit(redis, id, "buyer");
  await releaseUnit(redis, id, "buyer");
  await sweepExpired(redis, id);
  await warmItem(redis, {
    itemId: id,
    activityId: "act",
    startsAt: new Date(0),
    endsAt: new Date(1),
    paused: false,
    pointsPrice: 1n,
    creditTypeId: "points",
    left: 1,
  });
  await reconcileStock(redis, id, 1, "repair");
  await readItem(redis, id, true);

  const marker = new RequestMarker(deps, `key:${id}`, id);
  await marker.begin("hash");
  await marker.finish({ status: "completed" } as unknown as Parameters<RequestMarker["finish"]>[0]);
}

describe("Redis Cluster hash slots", () => {
  it("every Lua command, EVAL and MULTI of the service touches one slot, whatever the prefix and ids", async () => {
    const seen = new Set<string>();
    for (const id of IDS) {
      const { redis, calls } = recordingClient();
      await exercise(redis, id);
      for (const prefix of PREFIXES) {
        for (const call of calls.filter((c) => c.group === undefined)) {
          const keys = keysOf(call).map((k) => prefix + k);
          seen.add(call.command);
          expect(calculateSlot.generateMulti(keys), `${call.command} ${keys.join(" ")}`).not.toBe(-1);
        }
        const groups = new Set(calls.flatMap((c) => (c.group === undefined ? [] : [c.group])));
        for (const group of groups) {
          const keys = calls.filter((c) => c.group === group).flatMap((c) => keysOf(c).map((k) => prefix + k));
          seen.add("multi");
          expect(calculateSlot.generateMulti(keys), `MULTI ${keys.join(" ")}`).not.toBe(-1);
        }
      }
    }
    // A script added to lua.ts without being exercised here fails the test.
    for (const c of LUA_COMMANDS) expect(seen, c.name).toContain(c.name);
    expect(seen).toContain("eval");
    expect(seen).toContain("multi");
  });

  it("the keys of one item or one account do not all land in one slot (they spread over the cluster)", () => {
    const slots = new Set(Array.from({ length: 200 }, (_, i) => calculateSlot(`fp:${userBucketKey(`user-${i}`, "points")}`)));
    expect(slots.size).toBeGreaterThan(150);
  });
});
