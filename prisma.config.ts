import path from "node:path";
import { defineConfig } from "prisma/config";
import { MigrationPgAdapter } from "./prisma/migration-adapter";

// With a config file the CLI no longer reads .env itself.
try {
  process.loadEnvFile();
} catch {
  // no .env: the environment alone configures the CLI
}

// `prisma generate` (npm's postinstall) needs no database, but with the
// datasource URL unset it tries to download an engine; give it a placeholder
// that the migration adapter refuses with a clear message.
const PLACEHOLDER_URL = "postgresql://unset.invalid/set-DATABASE_URL";
process.env.DATABASE_URL ??= PLACEHOLDER_URL;

// The WASM schema engine leaves a 10 s timer behind that would keep every CLI
// command alive 10 s longer than its work; long timers must not hold the process.
const nativeSetTimeout = globalThis.setTimeout;
globalThis.setTimeout = ((handler: (...a: unknown[]) => void, ms?: number, ...rest: unknown[]) => {
  const timer = nativeSetTimeout(handler, ms, ...rest);
  if ((ms ?? 0) >= 5000) timer.unref();
  return timer;
}) as typeof setTimeout;

export default defineConfig({
  experimental: { adapter: true },
  engine: "js",
  schema: path.join("prisma", "schema.prisma"),
  migrations: { path: path.join("prisma", "migrations") },
  // Migrations run as the database's owner role (MIGRATE_DATABASE_URL); the
  // service's own role (DATABASE_URL) may not change the schema.
  adapter: async () => {
    const url = process.env.MIGRATE_DATABASE_URL ?? process.env.DATABASE_URL;
    if (!url || url === PLACEHOLDER_URL) throw new Error("MIGRATE_DATABASE_URL (or DATABASE_URL) is not set (see docs/operations.md)");
    return new MigrationPgAdapter(url);
  },
});
