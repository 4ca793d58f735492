import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createTestDeps, closeDeps, uid } from "~/test/deps";
import { ensureCreditType, serviceCaller } from "~/test/api";
import type { Deps } from "~/server/infra/deps";
import { waitForRedis } from "~/server/infra/redis";
import { NO_RATE_LIMIT, startOwnRedis, type OwnRedis } from "~/server/credit/testing";
import { EVENT_STREAM, relayOutbox } from "./relay";
import { workerTasks } from "~/server/worker/tasks";

const outboxRelayTask = workerTasks.find((t) => t.name === "outbox.relay")!;
import { setSwitch } from "~/server/resilience/switches";

describe("outbox relay", () => {
  let own: OwnRedis;
  let deps: Deps;
  let caller: Awaited<ReturnType<typeof serviceCaller>>;
  let creditTypeId: string;

  beforeAll(async () => {
    own = await startOwnRedis();
    deps = await createTestDeps({ REDIS_URL: own.url, REDIS_COMMAND_TIMEOUT_MS: "200", ...NO_RATE_LIMIT });
    creditTypeId = await ensureCreditType(deps, "outbox-points");
    caller = await serviceCaller(deps);
  });

  afterAll(async () => {
    await closeDeps(deps);
    await own?.kill();
  });

  async function drain(): Promise<number> {
    let total = 0;
    for (let n = await relayOutbox(deps); n > 0; n = await relayOutbox(deps)) total += n;
    return total;
  }

  async function someEvents(userId: string, n: number): Promise<string[]> {
    for (let i = 0; i < n; i++) {
      await caller.credit.grant({ userId, creditTypeId, amount: 10, businessCode: "test.grant", businessId: `${userId}-g${i}` });
      await caller.credit.deduct({ userId, creditTypeId, amount: 3, businessCode: "order.pay", businessId: `${userId}-d${i}` });
    }
    const rows = await deps.db.outboxEvent.findMany({ where: { userId }, orderBy: { id: "asc" }, select: { eventId: true } });
    return rows.map((r) => r.eventId);
  }

  async function published(): Promise<{ eventId: string; type: string; payload: Record<string, unknown> }[]> {
    const entries = await deps.redis.xrange(EVENT_STREAM, "-", "+");
    return entries.map(([, fields]) => {
      const f: Record<string, string> = {};
      for (let i = 0; i + 1 < fields.length; i += 2) f[fields[i]!] = fields[i + 1]!;
      return { eventId: f.eventId!, type: f.type!, payload: JSON.parse(f.payload!) as Record<string, unknown> };
    });
  }

  it("publishes committed events to the stream in order, with their event id, and marks them sent", async () => {
    const userId = uid("u");
    const ids = await someEvents(userId, 3);
    expect(ids).toHaveLength(6);
    expect(await drain()).toBeGreaterThanOrEqual(6);
    const mine = (await published()).filter((e) => ids.includes(e.eventId));
    expect(mine.map((e) => e.eventId)).toEqual(ids);
    expect(mine.map((e) => e.type)).toEqual(["credit.granted", "credit.deducted", "credit.granted", "credit.deducted", "credit.granted", "credit.deducted"]);
    expect(mine[1]!.payload).toMatchObject({ userId, amount: 3, balanceAfter: 7 });
    expect(await deps.db.outboxEvent.count({ where: { userId, sentAt: null } })).toBe(0);
    // Already sent: nothing goes out twice.
    expect(await drain()).toBe(0);
  });

  it("leaves events unsent while Redis is down and sends them, in order, once it is back", async () => {
    const userId = uid("u");
    await own.kill();
    const ids = await someEvents(userId, 2);
    expect(await relayOutbox(deps)).toBe(0);
    expect(await relayOutbox(deps)).toBe(0);
    const pending = await deps.db.outboxEvent.findMany({ where: { userId }, orderBy: { id: "asc" } });
    expect(pending.every((e) => e.sentAt === null)).toBe(true);
    expect(pending[0]).toMatchObject({ attempts: 2, lastError: expect.any(String) });

    await own.restart(); // empty, like a Redis that lost everything
    expect(await waitForRedis(deps.redis, 5000)).toBe(true);
    expect(await drain()).toBeGreaterThanOrEqual(4);
    const stream = await published();
    expect(stream.map((e) => e.eventId)).toEqual(ids);
    expect(await deps.db.outboxEvent.count({ where: { userId, sentAt: null } })).toBe(0);
  });

  it("lets only one relay publish at a time", async () => {
    const userId = uid("u");
    await someEvents(userId, 1);
    let release!: () => void;
    const held = new Promise<void>((r) => (release = r));
    let locked!: () => void;
    const isLocked = new Promise<void>((r) => (locked = r));
    // Another relay's transaction holding the advisory lock.
    const other = deps.db.$transaction(
      async (tx) => {
        await tx.$executeRaw`SELECT pg_advisory_xact_lock(${0x0f_b0_0b_01}::bigint)`;
        locked();
        await held;
      },
      { timeout: 10_000 },
    );
    await isLocked;
    expect(await relayOutbox(deps)).toBe(0);
    expect(await deps.db.outboxEvent.count({ where: { userId, sentAt: null } })).toBe(2);
    release();
    await other;
    expect(await drain()).toBeGreaterThanOrEqual(2);
    expect(await deps.db.outboxEvent.count({ where: { userId, sentAt: null } })).toBe(0);
  });

  it("pauses while the outboxRelay switch is off, and catches up when it is back on", async () => {
    const admin = { actor: { email: "ops@test.local", role: "admin" } };
    const userId = uid("u");
    await setSwitch(deps, { name: "outboxRelay", on: false, reason: "shed non-core work" }, admin);
    try {
      await someEvents(userId, 1);
      const signal = new AbortController().signal;
      expect(await outboxRelayTask.run(deps, signal)).toBe(0);
      expect(await deps.db.outboxEvent.count({ where: { userId, sentAt: null } })).toBe(2);
    } finally {
      await setSwitch(deps, { name: "outboxRelay", on: true, reason: "pressure over" }, admin);
    }
    let sent = 0;
    for (let n = await outboxRelayTask.run(deps, new AbortController().signal); n > 0; ) {
      sent += n;
      n = await outboxRelayTask.run(deps, new AbortController().signal);
    }
    expect(sent).toBeGreaterThanOrEqual(2);
    expect(await deps.db.outboxEvent.count({ where: { userId, sentAt: null } })).toBe(0);
  });
});
