import { middlewareMarker } from "@trpc/server/unstable-core-do-not-import";
import { AppError } from "~/server/infra/app-error";
import { principalKey } from "~/server/identity/principal";
import { requestHash } from "~/server/resilience/request-hash";
import { RequestMarker } from "~/server/resilience/request-marker";
import {
  findRequestRecord,
  insertRequestRecord,
  isFinalAnswer,
  RECORDED_ERROR_CODES,
  replayAnswer,
  type RequestRecordTicket,
  type StoredRequest,
} from "~/server/resilience/request-record";
import { resilienceMetrics } from "~/server/resilience/resilience-metrics";
import type { Context } from "../context";
import { middleware } from "../trpc";

/**
 * X-Request-Id replay (docs/api.md, "Idempotency"): a mutation sent again with
 * the same id gets the first result, never a second execution.
 *
 * Postgres is the record: the domain function writes it inside the transaction
 * of its effect (the `requestRecord` ticket), and its primary key fences two concurrent
 * executions even when Redis is gone. Redis only makes it fast: an in-flight
 * marker answers a concurrent duplicate with 409 before it does any work, and a
 * result cache serves replays without a query.
 */

const IN_FLIGHT_RETRY_MS = 200;

type Outcome = "cache" | "stored" | "in_flight" | "mismatch" | "executed";

async function principalOf(ctx: Context): Promise<string | null> {
  const service = await ctx.servicePrincipal();
  if (service) return principalKey(service);
  const admin = await ctx.adminPrincipal();
  return admin ? principalKey(admin) : null;
}

/**
 * Put it right after `.input(…)` so the input it hashes is the validated one,
 * and before admission control, so a replay is served even while the caller is
 * rate limited. The procedure passes `ctx.requestRecord` to its domain
 * function, which writes it inside the transaction of the effect; procedures
 * that do not are recorded after the fact.
 */
export const requestReplay = middleware<{ requestRecord: RequestRecordTicket | null }>(async ({ ctx, path, input, next }) => {
  if (!ctx.requestIdFromClient) return next({ ctx: { requestRecord: null } });
  const principal = await principalOf(ctx);
  if (!principal) return next({ ctx: { requestRecord: null } });

  const { deps, requestId } = ctx;
  const counter = resilienceMetrics(deps.metrics).requestReplay;
  const hash = requestHash(path, input);
  const marker = new RequestMarker(deps, principal, requestId);
  const stored = () => findRequestRecord(deps.db, principal, requestId, deps.clock.now());
  const serve = (rec: StoredRequest, outcome: Outcome) => {
    counter.inc({ outcome: rec.inputHash === hash ? outcome : "mismatch" });
    return { ok: true as const, data: replayAnswer(rec, hash, path), marker: middlewareMarker };
  };

  const begun = await marker.begin(hash);
  if (begun.kind === "cache") return serve(begun.rec, "cache");
  if (begun.kind !== "claimed") {
    // Another execution holds the marker, or Redis is down: Postgres may already have the answer.
    const rec = await stored();
    if (rec) return serve(rec, "stored");
    if (begun.kind === "taken" && begun.hash !== null && begun.hash !== hash) {
      // The same id, running right now with another input: a reuse, not a retry.
      counter.inc({ outcome: "mismatch" });
      throw new AppError("IDEMPOTENCY_KEY_REUSED", "X-Request-Id is in use by a request with another procedure or input");
    }
    if (begun.kind === "taken") {
      counter.inc({ outcome: "in_flight" });
      throw new AppError("DUPLICATE_REQUEST_IN_FLIGHT", "a request with this X-Request-Id is still running; retry shortly", {
        retryAfterMs: IN_FLIGHT_RETRY_MS,
      });
    }
  }
  // Marker claimed: no read of the record first. If Redis lost an earlier
  // result, the execution below meets that record's key in its transaction,
  // rolls back, and the stored result is served (the fence further down); the
  // common case — a new id — costs no query here.

  const ticket: RequestRecordTicket = {
    principal,
    requestId,
    procedure: path,
    inputHash: hash,
    ttlSeconds: deps.env.REQUEST_ID_TTL_S,
    recorded: null,
  };
  let recorded: StoredRequest | null = null;

  /** Records outside the effect's transaction, best effort; false when that did not happen. */
  const recordOutside = (row: StoredRequest, what: string): Promise<boolean> =>
    insertRequestRecord(deps.db, {
      ...row,
      principal,
      requestId,
      userId: null,
      now: deps.clock.now(),
      ttlSeconds: deps.env.REQUEST_ID_TTL_S,
    }).catch((err: unknown) => {
      deps.log.warn({ err, requestId }, `could not record the request ${what}`);
      return false;
    });
  /** The record some other execution stored for this id, served, if there is one. */
  const serveWinner = async () => {
    const winner = await stored();
    await marker.finish(winner);
    return winner ? serve(winner, "stored") : null;
  };

  let result;
  try {
    result = await next({ ctx: { requestRecord: ticket } });
  } catch (e) {
    await marker.finish(null);
    throw e;
  }
  counter.inc({ outcome: "executed" });
  recorded = ticket.recorded;

  if (result.ok) {
    // The procedure did not record inside its transaction: record now, best effort. Not a
    // batch whose items include some worth retrying: the same id must run those again.
    if (!recorded && isFinalAnswer(result.data)) {
      const row: StoredRequest = { procedure: path, inputHash: hash, outcome: "success", operationId: null, response: result.data };
      if (await recordOutside(row, "result")) recorded = row;
      else {
        const winner = await serveWinner();
        if (winner) return winner;
      }
    }
    await marker.finish(recorded);
    return result;
  }

  const err = result.error.cause instanceof AppError ? result.error.cause : null;
  if (err?.code === "DUPLICATE_REQUEST_IN_FLIGHT" && err.details?.replayFence) {
    // The id was already recorded (Redis lost it, or had no say): serve that.
    return (await serveWinner()) ?? result;
  }
  let errorRow: StoredRequest | null = null;
  if (err && RECORDED_ERROR_CODES.has(err.code)) {
    const row: StoredRequest = {
      procedure: path,
      inputHash: hash,
      outcome: "error",
      operationId: null,
      response: { appCode: err.code, message: err.message },
    };
    if (await recordOutside(row, "error")) errorRow = row;
    else {
      // A record for this id exists already: it is the answer, not this error.
      const winner = await serveWinner();
      if (winner) return winner;
    }
  }
  await marker.finish(errorRow);
  return result;
});
