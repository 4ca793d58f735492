/**
 * `npm run db:setup`: the database of this deployment, ready to serve.
 *  1. as DATABASE_ADMIN_URL (a role that may create roles and databases):
 *     the owner role (MIGRATE_DATABASE_URL's user), the app role
 *     (DATABASE_URL's user), and the database, owned by the owner;
 *  2. as the owner: every migration;
 *  3. the app role's rights (./roles.ts): rows of every table, only INSERT
 *     and SELECT on the audit log.
 * Safe to run again. Without MIGRATE_DATABASE_URL it falls back to one role
 * (DATABASE_URL's user owns everything), and says so.
 */
import { spawnSync } from "node:child_process";
import { grantAppRole, provisionDatabase, type RoleSpec } from "./roles";

try {
  process.loadEnvFile();
} catch {
  // no .env: the environment alone
}

function fail(message: string): never {
  console.error(`error: ${message}`);
  process.exit(1);
}

function parse(name: string): URL {
  const value = process.env[name];
  if (!value) fail(`${name} is not set (in .env or the environment)`);
  try {
    return new URL(value);
  } catch {
    fail(`${name} is not a URL`);
  }
}

function roleOf(url: URL): RoleSpec {
  return { name: decodeURIComponent(url.username || "postgres"), password: decodeURIComponent(url.password) };
}

function migrate(url: string): void {
  const out = spawnSync("npx", ["prisma", "migrate", "deploy"], {
    env: { ...process.env, MIGRATE_DATABASE_URL: url },
    stdio: "inherit",
  });
  if (out.status !== 0) fail("prisma migrate deploy failed (see above)");
}

async function main(): Promise<void> {
  const app = parse("DATABASE_URL");
  const dbName = decodeURIComponent(app.pathname.slice(1));
  if (!dbName) fail("DATABASE_URL names no database");
  const admin = new URL(process.env.DATABASE_ADMIN_URL ?? app.toString());
  admin.pathname = "/postgres";

  if (!process.env.MIGRATE_DATABASE_URL) {
    console.warn(
      `warning: MIGRATE_DATABASE_URL is not set: one role (${roleOf(app).name}) owns the schema and runs the service.\n` +
        "  Set MIGRATE_DATABASE_URL to an owner role and DATABASE_URL to an app role to run with least privilege (docs/operations.md).",
    );
    await provisionSingle(admin.toString(), dbName);
    migrate(app.toString());
    return;
  }
  const owner = parse("MIGRATE_DATABASE_URL");
  const plan = { dbName, owner: roleOf(owner), app: roleOf(app) };
  if (plan.owner.name === plan.app.name) fail("MIGRATE_DATABASE_URL and DATABASE_URL must name different roles");
  try {
    // A development set-up: the owner also makes `npm run db:migrate`'s shadow databases.
    const { created } = await provisionDatabase(admin.toString(), plan, { ownerCreatesDatabases: process.env.NODE_ENV !== "production" });
    console.log(`${created ? "created" : "checked"} database "${dbName}" (owner ${plan.owner.name}, service role ${plan.app.name})`);
  } catch (e) {
    fail(`could not create the roles and the database as ${roleOf(admin).name} (DATABASE_ADMIN_URL): ${(e as Error).message}`);
  }
  migrate(owner.toString());
  await grantAppRole(owner.toString(), plan);
  console.log(`${plan.app.name} may read and write rows, and only add to the audit log`);
}

/** One role for everything: just make sure the database exists. */
async function provisionSingle(adminUrl: string, dbName: string): Promise<void> {
  const pg = (await import("pg")).default;
  const c = new pg.Client({ connectionString: adminUrl, connectionTimeoutMillis: 5000 });
  await c.connect();
  try {
    const { rowCount } = await c.query("SELECT 1 FROM pg_database WHERE datname = $1", [dbName]);
    if (!rowCount) await c.query(`CREATE DATABASE "${dbName.replaceAll('"', '""')}"`);
    console.log(`${rowCount ? "database exists" : "created database"} "${dbName}"`);
  } finally {
    await c.end();
  }
}

void main().catch((e: unknown) => fail(e instanceof Error ? e.message : String(e)));
