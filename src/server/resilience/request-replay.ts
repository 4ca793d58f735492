import { createHash } from "node:crypto";
import client from "prom-client";
import { middlewareMarker } from "@trpc/server/unstable-core-do-not-import";
import { middleware } from "~/server/api/trpc";
import type { Context } from "~/server/api/context";
import type { Deps } from "~/server/infra/deps";
import type { Db, Tx } from "~/server/infra/db";
import { AppError, APP_ERROR_CODES, type AppErrorCode } from "~/server/infra/app-error";
import { getMetrics } from "~/server/infra/metrics";
import type { WorkerTask } from "~/server/worker/runner";

/**
 * X-Request-Id replay (API.md, "Idempotency"): a mutation sent again with the
 * same id gets the first result, never a second execution.
 *
 * Postgres is the record: the domain function writes it inside the transaction
 * of its effect (`recordRequest`), so "effect applied" and "result recorded"
 * cannot disagree, and the primary key (principal, request_id) fences two
 * concurrent executions even when Redis is gone. Redis only makes it fast: an
 * in-flight marker answers a concurrent duplicate with 409 before it does any
 * work, and a result cache serves replays without a query.
 */

/** Writes the request's record inside the caller's transaction (once, at the end of the effect). */
export type RequestRecorder = (tx: Tx, rec: { operationId: string | null; userId: string | null; response: unknown }) => Promise<void>;

export type StoredRequest = {
  procedure: string;
  inputHash: string;
  outcome: "success" | "error";
  operationId: string | null;
  /** The procedure's output, or `{appCode, message}` for a recorded error. */
  response: unknown;
};

/**
 * Errors that are the final answer to a request (they changed nothing and would
 * come back the same): recorded and replayed. Everything else — busy, limited,
 * unavailable, in flight — is not, so the client may retry with the same id.
 */
export const RECORDED_ERROR_CODES: ReadonlySet<AppErrorCode> = new Set<AppErrorCode>([
  "INSUFFICIENT_BALANCE",
  "IDEMPOTENCY_KEY_REUSED",
  "ACCOUNT_NOT_FOUND",
  "CREDIT_TYPE_NOT_FOUND",
  "ACTIVITY_NOT_FOUND",
  "ITEM_NOT_FOUND",
  "SOLD_OUT",
]);

/** The caller a request id belongs to: one tenant can never read another's results. */
export function principalKey(p: { kind: "service"; keyId: string } | { kind: "admin"; userId: string }): string {
  return p.kind === "service" ? `key:${p.keyId}` : `user:${p.userId}`;
}

/** JSON with object keys sorted, so equal inputs hash equally whatever their key order. */
export function canonicalJson(value: unknown): string {
  if (value === undefined) return "null";
  if (value === null || typeof value !== "object") return JSON.stringify(value);
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(",")}]`;
  const obj = value as Record<string, unknown>;
  const keys = Object.keys(obj)
    .filter((k) => obj[k] !== undefined)
    .sort();
  return `{${keys.map((k) => `${JSON.stringify(k)}:${canonicalJson(obj[k])}`).join(",")}}`;
}

export function requestHash(procedure: string, input: unknown): string {
  return createHash("sha256").update(procedure).update("\n").update(canonicalJson(input)).digest("hex");
}

// ── Postgres record ────────────────────────────────────────────────────────────

export async function findRequestRecord(
  db: Db | Tx,
  principal: string,
  requestId: string,
  now: Date,
): Promise<StoredRequest | null> {
  const row = await db.requestRecord.findUnique({
    where: { principal_requestId: { principal, requestId } },
    select: { procedure: true, inputHash: true, outcome: true, operationId: true, response: true, expiresAt: true },
  });
  if (!row || row.expiresAt <= now) return null;
  return {
    procedure: row.procedure,
    inputHash: row.inputHash,
    outcome: row.outcome === "error" ? "error" : "success",
    operationId: row.operationId,
    response: row.response,
  };
}

/**
 * Inserts the record; false when a live record with this key already exists.
 * A concurrent insert of the same key waits for the other transaction, so
 * "false" means the other one committed. An expired record is replaced.
 */
export async function insertRequestRecord(
  db: Db | Tx,
  rec: StoredRequest & { principal: string; requestId: string; userId: string | null; now: Date; ttlSeconds: number },
): Promise<boolean> {
  const expiresAt = new Date(rec.now.getTime() + rec.ttlSeconds * 1000);
  const rows = await db.$queryRaw<{ ok: number }[]>`
    INSERT INTO request_records (principal, request_id, procedure, input_hash, user_id, operation_id, outcome, response, created_at, expires_at)
    VALUES (${rec.principal}, ${rec.requestId}, ${rec.procedure}, ${rec.inputHash}, ${rec.userId},
            ${rec.operationId}::uuid, ${rec.outcome}, ${JSON.stringify(rec.response ?? null)}::jsonb, ${rec.now}, ${expiresAt})
    ON CONFLICT (principal, request_id) DO UPDATE SET
      procedure = EXCLUDED.procedure, input_hash = EXCLUDED.input_hash, user_id = EXCLUDED.user_id,
      operation_id = EXCLUDED.operation_id, outcome = EXCLUDED.outcome, response = EXCLUDED.response,
      created_at = EXCLUDED.created_at, expires_at = EXCLUDED.expires_at
      WHERE request_records.expires_at <= EXCLUDED.created_at
    RETURNING 1 AS ok`;
  return rows.length === 1;
}

/** Deletes expired records, a batch at a time; returns how many went. */
export async function deleteExpiredRequestRecords(db: Db, now: Date, batch = 1000): Promise<number> {
  return db.$executeRaw`
    DELETE FROM request_records WHERE (principal, request_id) IN (
      SELECT principal, request_id FROM request_records WHERE expires_at <= ${now} LIMIT ${batch})`;
}

export const requestRecordCleanupTask: WorkerTask = {
  name: "request-records.cleanup",
  intervalMs: 60_000,
  run: (deps) => deleteExpiredRequestRecords(deps.db, deps.clock.now()),
};

// ── Redis marker and cache ─────────────────────────────────────────────────────

// Both keys of one request share a hash tag, so the script below also runs on a cluster.
const markerKey = (principal: string, requestId: string) => `rr:{${principal}:${requestId}}:m`;
const cacheKey = (principal: string, requestId: string) => `rr:{${principal}:${requestId}}:r`;

/** KEYS: cache, marker. ARGV: input hash, marker TTL (ms). */
const BEGIN_SCRIPT = `
local cached = redis.call('GET', KEYS[1])
if cached then return {'cache', cached} end
if redis.call('SET', KEYS[2], ARGV[1], 'PX', ARGV[2], 'NX') then return {'claimed'} end
return {'taken'}`;
/** The cache only speeds up hot replays; Postgres keeps the record for REQUEST_ID_TTL_S. */
const CACHE_TTL_S = 3600;
const IN_FLIGHT_RETRY_MS = 200;

/** Longest a first execution can legitimately take; a marker left by a dead process expires after it. */
function markerTtlMs(env: Deps["env"]): number {
  return env.LOCK_WAIT_MS + 2 * env.DB_POOL_WAIT_MS + env.DB_TX_TIMEOUT_MS + 1000;
}

type Outcome = "cache" | "stored" | "in_flight" | "mismatch" | "executed";

function replayCounter(): client.Counter<"outcome"> {
  const registry = getMetrics().registry;
  const name = "fp_request_replay_total";
  const existing = registry.getSingleMetric(name) as client.Counter<"outcome"> | undefined;
  return (
    existing ??
    new client.Counter({
      name,
      help: "Mutations sent with an X-Request-Id, by what happened (executed, served from cache/store, in flight, mismatch)",
      labelNames: ["outcome"] as const,
      registers: [registry],
    })
  );
}

class ReplayStore {
  private redisOk = true;

  constructor(
    private readonly deps: Deps,
    readonly principal: string,
    readonly requestId: string,
  ) {}

  private async redis<T>(op: string, fn: () => Promise<T>): Promise<T | undefined> {
    if (!this.redisOk) return undefined;
    if (this.deps.redis.status !== "ready") return this.down(op, new Error(`redis status ${this.deps.redis.status}`));
    try {
      return await fn();
    } catch (e) {
      return this.down(op, e);
    }
  }

  private down(op: string, err: unknown): undefined {
    // Postgres alone still fences a second execution; only speed is lost.
    this.redisOk = false;
    this.deps.metrics.degraded.inc({ component: "request-replay", reason: "redis_unavailable" });
    this.deps.log.debug({ err, op }, "request replay without Redis");
    return undefined;
  }

  /**
   * One round trip: the cached result if there is one, else try to take the
   * in-flight marker. "skipped" when Redis did not answer.
   */
  async begin(hash: string): Promise<{ kind: "cache"; rec: StoredRequest } | { kind: "claimed" | "taken" | "skipped" }> {
    const reply = await this.redis("begin", () =>
      this.deps.redis.eval(
        BEGIN_SCRIPT,
        2,
        cacheKey(this.principal, this.requestId),
        markerKey(this.principal, this.requestId),
        hash,
        markerTtlMs(this.deps.env),
      ),
    );
    if (reply === undefined) return { kind: "skipped" };
    const [kind, value] = reply as [string, string | undefined];
    if (kind === "cache" && value) {
      try {
        return { kind: "cache", rec: JSON.parse(value) as StoredRequest };
      } catch {
        return { kind: "taken" };
      }
    }
    return { kind: kind === "claimed" ? "claimed" : "taken" };
  }

  async finish(rec: StoredRequest | null): Promise<void> {
    await this.redis("finish", async () => {
      const m = this.deps.redis.multi();
      // Cache before the marker goes, so a duplicate always finds one of them.
      if (rec) m.set(cacheKey(this.principal, this.requestId), JSON.stringify(rec), "EX", CACHE_TTL_S);
      m.del(markerKey(this.principal, this.requestId));
      await m.exec();
    });
  }

  stored(): Promise<StoredRequest | null> {
    return findRequestRecord(this.deps.db, this.principal, this.requestId, this.deps.clock.now());
  }
}

/** The stored result as this request's answer, or 422 if the id was used for something else. */
function answer(rec: StoredRequest, hash: string, procedure: string): unknown {
  if (rec.inputHash !== hash) {
    throw new AppError(
      "IDEMPOTENCY_KEY_REUSED",
      `X-Request-Id was already used for ${rec.procedure === procedure ? "another input" : `another procedure (${rec.procedure})`}`,
    );
  }
  if (rec.outcome === "error") {
    const r = (rec.response ?? {}) as { appCode?: unknown; message?: unknown };
    const code = (APP_ERROR_CODES as readonly unknown[]).includes(r.appCode) ? (r.appCode as AppErrorCode) : "INTERNAL";
    throw new AppError(code, typeof r.message === "string" ? r.message : "recorded error");
  }
  return rec.response;
}

async function principalOf(ctx: Context): Promise<string | null> {
  const service = await ctx.servicePrincipal();
  if (service) return principalKey(service);
  const admin = await ctx.adminPrincipal();
  return admin ? principalKey(admin) : null;
}

/**
 * The replay middleware. Put it right after `.input(…)` so the input it hashes
 * is the validated one, and before admission control, so a replay is served
 * even while the caller is rate limited. The procedure must pass
 * `ctx.recordRequest` to its domain function, which calls it inside the
 * transaction of the effect; procedures that do not are recorded after the fact.
 */
export const requestReplay = middleware<{ recordRequest: RequestRecorder | null }>(async ({ ctx, path, input, next }) => {
  if (!ctx.requestIdFromClient) return next({ ctx: { recordRequest: null } });
  const principal = await principalOf(ctx);
  if (!principal) return next({ ctx: { recordRequest: null } });

  const { deps, requestId } = ctx;
  const counter = replayCounter();
  const hash = requestHash(path, input);
  const store = new ReplayStore(deps, principal, requestId);
  const serve = (rec: StoredRequest, outcome: Outcome) => {
    counter.inc({ outcome: rec.inputHash === hash ? outcome : "mismatch" });
    return { ok: true as const, data: answer(rec, hash, path), marker: middlewareMarker };
  };

  const begun = await store.begin(hash);
  if (begun.kind === "cache") return serve(begun.rec, "cache");
  if (begun.kind !== "claimed") {
    // Another execution holds the marker, or Redis is down: Postgres may already have the answer.
    const stored = await store.stored();
    if (stored) return serve(stored, "stored");
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

  let recorded: StoredRequest | null = null;
  const recordRequest: RequestRecorder = async (tx, rec) => {
    const row: StoredRequest = { procedure: path, inputHash: hash, outcome: "success", operationId: rec.operationId, response: rec.response };
    const inserted = await insertRequestRecord(tx, {
      ...row,
      principal,
      requestId,
      userId: rec.userId,
      now: deps.clock.now(),
      ttlSeconds: deps.env.REQUEST_ID_TTL_S,
    });
    if (!inserted) {
      // Another execution with this id committed first: this one must roll back.
      throw new AppError("DUPLICATE_REQUEST_IN_FLIGHT", "a request with this X-Request-Id was already executed", {
        retryAfterMs: IN_FLIGHT_RETRY_MS,
        details: { replayFence: true },
      });
    }
    recorded = row;
  };

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
    const winner = await store.stored();
    await store.finish(winner);
    return winner ? serve(winner, "stored") : null;
  };

  let result;
  try {
    result = await next({ ctx: { recordRequest } });
  } catch (e) {
    await store.finish(null);
    throw e;
  }
  counter.inc({ outcome: "executed" });

  if (result.ok) {
    if (!recorded) {
      // The procedure did not record inside its transaction: record now, best effort.
      const row: StoredRequest = { procedure: path, inputHash: hash, outcome: "success", operationId: null, response: result.data };
      if (await recordOutside(row, "result")) recorded = row;
      else {
        const winner = await serveWinner();
        if (winner) return winner;
      }
    }
    await store.finish(recorded);
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
  await store.finish(errorRow);
  return result;
});
