/**
 * Least privilege in PostgreSQL: two roles per database.
 *  - the OWNER owns the schema and every table; migrations run as it
 *    (`MIGRATE_DATABASE_URL`);
 *  - the APP role is what the service connects as (`DATABASE_URL`): it reads
 *    and writes rows, but may only INSERT and SELECT the audit log, and as it
 *    owns nothing it cannot alter a table, drop the append-only trigger or
 *    truncate anything.
 * `provisionDatabase` (as a role that may create roles and databases) makes
 * the roles and the database; `grantAppRole` (after the migrations) gives the
 * app role its rights, and default privileges extend them to tables later
 * migrations create. Both are idempotent.
 */
import pg from "pg";

export type RoleSpec = { name: string; password: string };
export type DatabasePlan = { dbName: string; owner: RoleSpec; app: RoleSpec };

const ident = (name: string) => `"${name.replaceAll('"', '""')}"`;
const literal = (value: string) => `'${value.replaceAll("'", "''")}'`;

async function withClient<T>(url: string, fn: (c: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 5000 });
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end();
  }
}

function onDatabase(url: string, dbName: string): string {
  const u = new URL(url);
  u.pathname = `/${encodeURIComponent(dbName)}`;
  return u.toString();
}

/** `url` with another user and password (same server and database). */
export function urlAs(url: string, role: RoleSpec, dbName?: string): string {
  const u = new URL(dbName ? onDatabase(url, dbName) : url);
  u.username = encodeURIComponent(role.name);
  u.password = encodeURIComponent(role.password);
  return u.toString();
}

async function ensureRole(c: pg.Client, role: RoleSpec): Promise<void> {
  const { rowCount } = await c.query("SELECT 1 FROM pg_roles WHERE rolname = $1", [role.name]);
  const verb = rowCount ? "ALTER" : "CREATE";
  try {
    await c.query(`${verb} ROLE ${ident(role.name)} LOGIN PASSWORD ${literal(role.password)}`);
  } catch (e) {
    // Another set-up created it between our look and our CREATE: set the password instead.
    if ((e as { code?: string }).code !== "42710") throw e;
    await c.query(`ALTER ROLE ${ident(role.name)} LOGIN PASSWORD ${literal(role.password)}`);
  }
}

/**
 * Creates (or updates) both roles and the database owned by the owner role;
 * a database that exists already is handed to the owner, with what is in it.
 * `adminUrl` is any database of the server, as a role with CREATEROLE and
 * CREATEDB (a superuser on a development machine).
 */
export async function provisionDatabase(
  adminUrl: string,
  plan: DatabasePlan,
  opts: { ownerCreatesDatabases?: boolean } = {},
): Promise<{ created: boolean }> {
  const { dbName, owner, app } = plan;
  const created = await withClient(adminUrl, async (c) => {
    await ensureRole(c, owner);
    await ensureRole(c, app);
    // `npm run db:migrate` (prisma migrate dev) checks a draft in a shadow database of its own.
    if (opts.ownerCreatesDatabases) await c.query(`ALTER ROLE ${ident(owner.name)} CREATEDB`);
    // The admin must be able to hand objects to the owner (needed without superuser).
    await c.query(`GRANT ${ident(owner.name)} TO CURRENT_USER`).catch(() => undefined);
    const { rowCount } = await c.query("SELECT 1 FROM pg_database WHERE datname = $1", [dbName]);
    if (rowCount) await c.query(`ALTER DATABASE ${ident(dbName)} OWNER TO ${ident(owner.name)}`);
    else await c.query(`CREATE DATABASE ${ident(dbName)} OWNER ${ident(owner.name)}`);
    await c.query(`REVOKE ALL ON DATABASE ${ident(dbName)} FROM PUBLIC`);
    await c.query(`GRANT CONNECT, TEMPORARY ON DATABASE ${ident(dbName)} TO ${ident(app.name)}`);
    return !rowCount;
  });
  await withClient(onDatabase(adminUrl, dbName), async (c) => {
    await c.query(`ALTER SCHEMA public OWNER TO ${ident(owner.name)}`);
    await c.query("REVOKE ALL ON SCHEMA public FROM PUBLIC");
    // A database made before roles existed: its tables, sequences and types go to the owner.
    await c.query(`
      DO $$
      DECLARE r record;
      BEGIN
        FOR r IN SELECT format('ALTER TABLE %I OWNER TO %I', tablename, ${literal(owner.name)}) AS stmt
                 FROM pg_tables WHERE schemaname = 'public' AND tableowner <> ${literal(owner.name)}
        LOOP EXECUTE r.stmt; END LOOP;
        FOR r IN SELECT format('ALTER SEQUENCE %I OWNER TO %I', sequencename, ${literal(owner.name)}) AS stmt
                 FROM pg_sequences WHERE schemaname = 'public' AND sequenceowner <> ${literal(owner.name)}
        LOOP EXECUTE r.stmt; END LOOP;
        FOR r IN SELECT format('ALTER TYPE %I OWNER TO %I', t.typname, ${literal(owner.name)}) AS stmt
                 FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace
                 WHERE n.nspname = 'public' AND t.typtype = 'e' AND pg_get_userbyid(t.typowner) <> ${literal(owner.name)}
        LOOP EXECUTE r.stmt; END LOOP;
        FOR r IN SELECT format('ALTER FUNCTION %s OWNER TO %I', p.oid::regprocedure, ${literal(owner.name)}) AS stmt
                 FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
                 WHERE n.nspname = 'public' AND pg_get_userbyid(p.proowner) <> ${literal(owner.name)}
        LOOP EXECUTE r.stmt; END LOOP;
      END $$`);
  });
  return { created };
}

/**
 * The app role's rights, run after the migrations (as the owner or an admin):
 * rows of every table, but only INSERT and SELECT on the audit log and only
 * SELECT on the migration history; the same for tables the owner creates later.
 */
export async function grantAppRole(url: string, plan: Pick<DatabasePlan, "owner" | "app">): Promise<void> {
  const app = ident(plan.app.name);
  const owner = ident(plan.owner.name);
  await withClient(url, async (c) => {
    await c.query(`
      GRANT USAGE ON SCHEMA public TO ${app};
      GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO ${app};
      GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO ${app};
      REVOKE UPDATE, DELETE, TRUNCATE ON audit_log FROM ${app};
      REVOKE INSERT, UPDATE, DELETE, TRUNCATE ON _prisma_migrations FROM ${app};
      ALTER DEFAULT PRIVILEGES FOR ROLE ${owner} IN SCHEMA public GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO ${app};
      ALTER DEFAULT PRIVILEGES FOR ROLE ${owner} IN SCHEMA public GRANT USAGE, SELECT ON SEQUENCES TO ${app};
    `);
  });
}

/** Drops both roles (after their database is gone). */
export async function dropRoles(adminUrl: string, plan: Pick<DatabasePlan, "owner" | "app">): Promise<void> {
  await withClient(adminUrl, async (c) => {
    for (const role of [plan.app, plan.owner]) await c.query(`DROP ROLE IF EXISTS ${ident(role.name)}`);
  });
}
