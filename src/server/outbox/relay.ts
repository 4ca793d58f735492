import type { Deps } from "~/server/infra/deps";

/** The Redis stream the relay publishes to (ioredis adds REDIS_KEY_PREFIX). */
export const EVENT_STREAM = "events";
/** Approximate cap of the stream; consumers are expected to keep up well within it. */
export const EVENT_STREAM_MAXLEN = 100_000;
/** Advisory lock key: only one relay publishes at a time, which keeps the order. */
const RELAY_LOCK = 0x0f_b0_0b_01;

type PendingEvent = { id: bigint; event_id: string; type: string; payload: unknown };

/**
 * Publishes committed outbox events to the `events` stream in id order, at
 * least once (fields: eventId — consumers dedupe on it —, type, payload), and
 * marks them sent. A crash between XADD and the mark re-sends them; Redis being
 * down leaves them unsent for the next run. Returns how many it published.
 */
export async function relayOutbox(deps: Pick<Deps, "db" | "redis" | "clock" | "log">, batch = 200): Promise<number> {
  return deps.db.$transaction(
    async (tx) => {
      // Transaction-scoped: released by commit/rollback, even if this process dies.
      const [lock] = await tx.$queryRaw<{ ok: boolean }[]>`SELECT pg_try_advisory_xact_lock(${RELAY_LOCK}::bigint) AS ok`;
      if (!lock?.ok) return 0;
      const events = await tx.$queryRaw<PendingEvent[]>`
        SELECT id, event_id::text AS event_id, type, payload FROM outbox_events
        WHERE sent_at IS NULL ORDER BY id LIMIT ${batch}`;
      if (events.length === 0) return 0;

      const sent: bigint[] = [];
      let failure: unknown;
      if (deps.redis.status !== "ready") {
        failure = new Error(`redis status ${deps.redis.status}`);
      } else {
        const pipeline = deps.redis.pipeline();
        for (const e of events) {
          pipeline.xadd(
            EVENT_STREAM,
            "MAXLEN",
            "~",
            EVENT_STREAM_MAXLEN,
            "*",
            "eventId",
            e.event_id,
            "type",
            e.type,
            "payload",
            JSON.stringify(e.payload),
          );
        }
        const replies = await pipeline.exec().catch((err: unknown) => {
          failure = err;
          return null;
        });
        // Stop at the first failure: a later event must never go out before an earlier one.
        for (const [i, e] of events.entries()) {
          const reply = replies?.[i];
          if (!reply || reply[0]) {
            failure ??= reply?.[0] ?? new Error("no reply from Redis");
            break;
          }
          sent.push(e.id);
        }
      }
      if (sent.length > 0) {
        await tx.$executeRaw`UPDATE outbox_events SET sent_at = ${deps.clock.now()}, attempts = attempts + 1 WHERE id = ANY(${sent})`;
      }
      const next = events[sent.length];
      if (failure !== undefined && next) {
        const message = failure instanceof Error ? failure.message : String(failure);
        await tx.$executeRaw`UPDATE outbox_events SET attempts = attempts + 1, last_error = ${message.slice(0, 500)} WHERE id = ${next.id}`;
        deps.log.warn({ err: failure, pending: events.length - sent.length }, "outbox relay could not publish; will retry");
      }
      return sent.length;
    },
    { timeout: 15_000 },
  );
}
