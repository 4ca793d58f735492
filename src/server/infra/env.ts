import { createEnv } from "@t3-oss/env-core";
import { z } from "zod";

const bool = z
  .enum(["0", "1", "true", "false"])
  .optional()
  .transform((v) => v === "1" || v === "true");

/**
 * A comma-separated list (blanks around commas ignored), each entry checked;
 * unset or empty → undefined.
 */
const list = (entry: z.ZodString, what: string) =>
  z
    .string()
    .optional()
    .transform((v, ctx) => {
      const items = (v ?? "").split(",").map((s) => s.trim()).filter((s) => s.length > 0);
      for (const item of items) {
        if (!entry.safeParse(item).success) ctx.addIssue({ code: "custom", message: `${JSON.stringify(item)} is not ${what}` });
      }
      return items.length > 0 ? items : undefined;
    });

const int = (def: number, min: number, max: number) => z.coerce.number().int().min(min).max(max).default(def);

/**
 * Every setting the service reads from its environment. The descriptions are
 * the documentation: docs/api.md ("Configuration") is generated from them.
 */
export const envSchema = {
  NODE_ENV: z.enum(["development", "test", "production"]).default("development").describe("`npm start` and `npm run worker` set `production`"),
  DATABASE_URL: z
    .url()
    .refine((u) => /^postgres(ql)?:\/\//.test(u), "must be a postgresql:// URL")
    .describe("PostgreSQL URL"),
  DB_POOLER: z
    .enum(["none", "pgbouncer"])
    .default("none")
    .describe(
      "`pgbouncer`: `DATABASE_URL` is a PgBouncer pool in transaction mode, so statements go unnamed (no server-side prepared statements) and the statement and idle-in-transaction time limits are PgBouncer's `connect_query` (or the role's settings), not the connection's",
    ),
  DATABASE_REPLICA_URL: z
    .url()
    .refine((u) => /^postgres(ql)?:\/\//.test(u), "must be a postgresql:// URL")
    .optional()
    .describe(
      "a streaming replica of `DATABASE_URL`'s database: reads that tolerate lag (ledger history, dashboard lists, activity listing) go there while it is within `REPLICA_MAX_LAG_MS`; unset, everything reads the primary",
    ),
  REPLICA_MAX_LAG_MS: int(1_000, 0, 600_000).describe(
    "the most a replica may be behind the primary and still serve reads; further behind, stopped or unreachable, those reads go to the primary",
  ),
  REDIS_URL: z
    .url()
    .refine((u) => /^rediss?:\/\//.test(u), "must be a redis:// URL")
    .default("redis://127.0.0.1:6379")
    .describe("Redis URL (ignored when `REDIS_CLUSTER_NODES` is set)"),
  REDIS_CLUSTER_NODES: list(z.string().regex(/^([^\s:,[\]]+|\[[0-9A-Fa-f:.]+\]):\d{1,5}$/), "host:port").describe(
    "comma-separated `host:port` seed nodes of a Redis Cluster (a few masters are enough; the rest is discovered). When set, the server, worker and CLI talk to that cluster and `REDIS_URL` is ignored; unset: one Redis at `REDIS_URL`",
  ),
  REDLOCK_NODES: list(z.string().regex(/^rediss?:\/\/\S+$/), "a redis:// URL").describe(
    "comma-separated `redis://` URLs of independent Redis servers (3 or 5, not a cluster's nodes): account locks are then taken with Redlock on all of them and granted by a majority, so losing one server keeps the locks working; unset: locks live on the main Redis (or cluster)",
  ),
  PORT: int(3000, 1, 65535).describe("where the HTTP server listens"),
  HOST: z.string().min(1).default("0.0.0.0").describe("the address it listens on"),
  API_ONLY: bool.describe("`1`: serve only `/api/trpc`, `/api/health`, `/api/ready` and `/api/metrics`; Next.js is never loaded"),
  REDIS_KEY_PREFIX: z
    .string()
    .min(1)
    .max(64)
    .regex(/^[A-Za-z0-9_.:{}-]+$/, "letters, digits and _.:{}- only")
    .default("fp:")
    .describe("every key the service writes starts with it (pub/sub channels too)"),
  RATE_LIMIT_PER_SECOND: z.coerce
    .number()
    .positive()
    .max(1_000_000)
    .default(5)
    .describe("token bucket per user and credit type: refill per second (admins change it live)"),
  RATE_LIMIT_BURST: int(10, 1, 1_000_000).describe("token bucket per user and credit type: capacity"),
  LOCK_TTL_MS: int(10_000, 100, 600_000).describe("lifetime of an account lock"),
  LOCK_WAIT_MS: int(1_000, 0, 60_000).describe(
    "how long a balance change waits for its account (busy in another batch or locked by another instance) before `OPERATION_LOCKED`",
  ),
  BALANCE_BATCH_MAX: int(256, 1, 5_000).describe("most balance changes the engine applies in one transaction"),
  BALANCE_BATCHES_IN_FLIGHT: int(2, 1, 64).describe(
    "batches one process runs at once (each on its own connection, never two on one account)",
  ),
  REQUEST_ID_TTL_S: int(86_400, 86_400, 30 * 86_400).describe("how long an `X-Request-Id` result is kept (at least 24 h)"),
  REFUND_MAX_ATTEMPTS: int(3, 1, 100).describe("refund attempts before `FAILED`"),
  REFUND_BACKOFF_BASE_MS: int(1_000, 1, 3_600_000).describe("first refund back-off step (doubles per attempt, full jitter)"),
  REFUND_BACKOFF_MAX_MS: int(60_000, 1, 86_400_000).describe("longest refund back-off"),
  REFUND_LEASE_MS: int(30_000, 1_000, 3_600_000).describe(
    "how long an attempt holds its refund; a refund held longer (its worker died) is due again. Keep it above `LOCK_WAIT_MS` and `DB_TX_TIMEOUT_MS`",
  ),
  WORKER_METRICS_PORT: z.coerce
    .number()
    .int()
    .min(1)
    .max(65535)
    .optional()
    .describe("when set, `npm run worker` serves its Prometheus metrics (refund attempts, alerts) at `http://127.0.0.1:<port>/metrics`"),
  FLASH_SALE_WARMUP_LEAD_MS: int(300_000, 0, 86_400_000).describe("how long before its start a sale is loaded into Redis"),
  FLASH_SALE_RESERVATION_TTL_MS: int(30_000, 500, 600_000).describe(
    "how long a reserved unit is held for its buyer; one whose purchase never finished goes back to stock after it. Keep it above `LOCK_WAIT_MS` and `DB_TX_TIMEOUT_MS`",
  ),
  FLASH_SALE_RECONCILE_MS: int(10_000, 500, 3_600_000).describe("how often the worker compares Redis stock with Postgres and repairs it"),
  ALERT_WEBHOOK_URL: z.url().optional().describe("JSON POST on alerts (circuit opened, refund failed for good)"),
  FAILPOINTS: z.string().optional().describe("fault injection for tests and drills (below)"),
  FAILPOINTS_ENABLED: bool.describe("`1`: failpoints work outside `NODE_ENV=test`"),
  DB_POOL_MAX: int(16, 1, 500).describe("PostgreSQL connections per process"),
  DB_POOL_WAIT_MS: int(2_000, 100, 60_000).describe("how long a query waits for a pooled connection"),
  DB_STATEMENT_TIMEOUT_MS: int(5_000, 100, 600_000).describe("statement time limit"),
  DB_TX_TIMEOUT_MS: int(5_000, 100, 600_000).describe("transaction time limit"),
  REDIS_COMMAND_TIMEOUT_MS: int(500, 10, 60_000).describe("a Redis command fails (typed, fast) after this"),
  SESSION_TTL_S: int(8 * 3600, 60, 30 * 86_400).describe("admin session lifetime"),
  BODY_LIMIT_BYTES: int(256 * 1024, 1024, 10 * 1024 * 1024).describe(
    "largest accepted request body (413 above); the default fits a `credit.batchDeduct` of 1,000 items",
  ),
  BATCH_MAX: int(20, 1, 100).describe("most calls in one tRPC batch (`?batch=1`); more → 400 and nothing runs"),
  KEY_RATE_LIMIT_PER_SECOND: z.coerce
    .number()
    .positive()
    .max(1_000_000)
    .default(2000)
    .describe("token bucket per API key: refill per second (admins change it live)"),
  KEY_RATE_LIMIT_BURST: int(4000, 1, 10_000_000).describe("token bucket per API key: capacity"),
  MAX_IN_FLIGHT: z.coerce
    .number()
    .int()
    .min(1)
    .max(100_000)
    .optional()
    .describe("calls one process works on at once; past it 503 `UNAVAILABLE` at once (default: 16 × `DB_POOL_MAX`)"),
  TRUST_PROXY: z
    .enum(["0", "1"])
    .optional()
    .transform((v) => v === "1")
    .describe(
      "unset: the client address is the socket's and `X-Forwarded-*` is ignored; `1`: one proxy of yours sits in front, so the client address is the last `X-Forwarded-For` entry and `X-Forwarded-Proto`/`-Host` are believed",
    ),
  METRICS_TOKEN: z
    .string()
    .min(16, "at least 16 characters")
    .max(200)
    .optional()
    .describe("when set, `/api/metrics` wants `Authorization: Bearer <it>`"),
  LOG_LEVEL: z
    .enum(["fatal", "error", "warn", "info", "debug", "trace", "silent"])
    .default("info")
    .describe("pino log level"),
};

export type Env = {
  [K in keyof typeof envSchema]: z.output<(typeof envSchema)[K]>;
};

export class InvalidEnvError extends Error {
  constructor(readonly problems: string[]) {
    super(`Invalid configuration:\n${problems.map((p) => `  - ${p}`).join("\n")}`);
    this.name = "InvalidEnvError";
  }
}

/** Validates the environment; a bad value throws naming the variable. */
export function loadEnv(source: Record<string, string | undefined> = process.env): Env {
  return createEnv({
    server: envSchema,
    runtimeEnv: source,
    emptyStringAsUndefined: true,
    isServer: true,
    onValidationError: (issues) => {
      throw new InvalidEnvError(
        issues.map((i) => `${i.path?.map((p) => (typeof p === "object" ? String(p.key) : String(p))).join(".") ?? "?"}: ${i.message}`),
      );
    },
  }) as Env;
}

let cached: Env | undefined;
/** The process's configuration, validated once. */
export function getEnv(): Env {
  cached ??= loadEnv();
  return cached;
}

/**
 * Reads `.env` from the working directory into process.env when it exists;
 * variables already set win. Entry points call it; tests do not.
 */
export function loadDotEnvFile(path = ".env"): void {
  try {
    process.loadEnvFile(path);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== "ENOENT") throw e;
  }
}

/**
 * For entry points (server, worker, CLI, seed): `.env` then the environment,
 * validated; a bad value prints what is wrong, naming the variable, and exits.
 */
export function loadEnvOrExit(): Env {
  loadDotEnvFile();
  try {
    return loadEnv();
  } catch (e) {
    if (e instanceof InvalidEnvError) {
      console.error(e.message);
      process.exit(1);
    }
    throw e;
  }
}
