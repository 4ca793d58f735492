import { createEnv } from "@t3-oss/env-core";
import { z } from "zod";

const bool = z
  .enum(["0", "1", "true", "false"])
  .optional()
  .transform((v) => v === "1" || v === "true");

const int = (def: number, min: number, max: number) => z.coerce.number().int().min(min).max(max).default(def);

/** Every setting the service reads from its environment (README, "Configuration"). */
export const envSchema = {
  NODE_ENV: z.enum(["development", "test", "production"]).default("development"),
  DATABASE_URL: z.url().refine((u) => /^postgres(ql)?:\/\//.test(u), "must be a postgresql:// URL"),
  REDIS_URL: z
    .url()
    .refine((u) => /^rediss?:\/\//.test(u), "must be a redis:// URL")
    .default("redis://127.0.0.1:6379"),
  PORT: int(3000, 1, 65535),
  HOST: z.string().min(1).default("0.0.0.0"),
  API_ONLY: bool,
  REDIS_KEY_PREFIX: z
    .string()
    .min(1)
    .max(64)
    .regex(/^[A-Za-z0-9_.:{}-]+$/, "letters, digits and _.:{}- only")
    .default("fp:"),
  RATE_LIMIT_PER_SECOND: z.coerce.number().positive().max(1_000_000).default(5),
  RATE_LIMIT_BURST: int(10, 1, 1_000_000),
  LOCK_TTL_MS: int(10_000, 100, 600_000),
  LOCK_WAIT_MS: int(1_000, 0, 60_000),
  REQUEST_ID_TTL_S: int(86_400, 86_400, 30 * 86_400),
  REFUND_MAX_ATTEMPTS: int(3, 1, 100),
  REFUND_BACKOFF_BASE_MS: int(1_000, 1, 3_600_000),
  REFUND_BACKOFF_MAX_MS: int(60_000, 1, 86_400_000),
  ALERT_WEBHOOK_URL: z.url().optional(),
  FAILPOINTS: z.string().optional(),
  FAILPOINTS_ENABLED: bool,
  DB_POOL_MAX: int(16, 1, 500),
  DB_POOL_WAIT_MS: int(2_000, 100, 60_000),
  DB_STATEMENT_TIMEOUT_MS: int(5_000, 100, 600_000),
  DB_TX_TIMEOUT_MS: int(5_000, 100, 600_000),
  REDIS_COMMAND_TIMEOUT_MS: int(500, 10, 60_000),
  SESSION_TTL_S: int(8 * 3600, 60, 30 * 86_400),
  BODY_LIMIT_BYTES: int(64 * 1024, 1024, 10 * 1024 * 1024),
  LOG_LEVEL: z.enum(["fatal", "error", "warn", "info", "debug", "trace", "silent"]).default("info"),
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
