/**
 * Operator commands: `npm run cli -- <command> [--flags]`. A secret is printed
 * on the last line and nowhere else.
 */
import { userInfo } from "node:os";
import { parseArgs } from "node:util";
import { loadEnvOrExit } from "~/server/infra/env";
import { createDb } from "~/server/infra/db";
import { systemClock } from "~/server/infra/clock";
import { createApiKey, revokeApiKey, ZApiKeyScope } from "~/server/identity/api-keys";
import { createAdminUser, ZAdminRole } from "~/server/identity/admin-users";
import { createCreditType } from "~/server/credit/credit-types";
import { isAppError } from "~/server/infra/app-error";

const USAGE = `usage: npm run cli -- <command>
  api-key:create --name <name> [--scopes catalog]
  api-key:revoke --id <id>
  api-key:list
  admin:create --email <email> --password <password> --role viewer|operator|admin
  credit-type:create --id <id> --name <name>`;

const ID = /^[A-Za-z0-9_.:-]{1,64}$/;

function fail(message: string): never {
  console.error(message);
  process.exit(2);
}

async function main(argv: string[]): Promise<void> {
  const [command, ...rest] = argv;
  const { values } = parseArgs({
    args: rest,
    options: {
      name: { type: "string" },
      scopes: { type: "string" },
      id: { type: "string" },
      email: { type: "string" },
      password: { type: "string" },
      role: { type: "string" },
    },
    strict: true,
  });
  const env = loadEnvOrExit();
  const db = createDb({
    url: env.DATABASE_URL,
    poolMax: 2,
    poolWaitMs: env.DB_POOL_WAIT_MS,
    statementTimeoutMs: env.DB_STATEMENT_TIMEOUT_MS,
    txTimeoutMs: env.DB_TX_TIMEOUT_MS,
    applicationName: "flashpoints-cli",
    pooler: env.DB_POOLER,
  });
  try {
    switch (command) {
      case "api-key:create": {
        if (!values.name || values.name.length > 100) fail("--name <name> is required (at most 100 characters)");
        const scopes = (values.scopes ?? "")
          .split(",")
          .map((s) => s.trim())
          .filter(Boolean)
          .map((s) => {
            const parsed = ZApiKeyScope.safeParse(s);
            if (!parsed.success) fail(`unknown scope "${s}" (known: ${ZApiKeyScope.options.join(", ")})`);
            return parsed.data;
          });
        const created = await createApiKey(db, { name: values.name, scopes });
        console.log(`created API key ${created.id} (${values.name}, scopes: ${scopes.join(",") || "none"}); shown once:`);
        console.log(created.key);
        break;
      }
      case "api-key:revoke": {
        if (!values.id) fail("--id <id> is required");
        const ok = await revokeApiKey(db, values.id, systemClock);
        console.log(ok ? `revoked ${values.id}` : `no active key ${values.id}`);
        if (!ok) process.exitCode = 1;
        break;
      }
      case "api-key:list": {
        const keys = await db.apiKey.findMany({ orderBy: { createdAt: "asc" } });
        for (const k of keys) {
          console.log(
            `${k.id}  fpk_${k.prefix}_…  ${k.name}  scopes=${k.scopes.join(",") || "-"}  ${k.revokedAt ? "revoked" : "active"}`,
          );
        }
        break;
      }
      case "admin:create": {
        const role = ZAdminRole.safeParse(values.role);
        if (!values.email || !values.password || !role.success) fail(USAGE);
        try {
          const user = await createAdminUser(db, { email: values.email, password: values.password, role: role.data });
          console.log(`admin user ${user.email} (${user.role}) is ready`);
        } catch (e) {
          fail(e instanceof Error ? e.message : String(e));
        }
        break;
      }
      case "credit-type:create": {
        if (!values.id || !ID.test(values.id)) fail("--id <id> is required: 1–64 of letters, digits and _.:-");
        const name = values.name?.trim() ?? "";
        if (!name || name.length > 200) fail("--name <name> is required (at most 200 characters)");
        try {
          const type = await createCreditType(
            { db },
            { id: values.id, name, reason: "created with the command line" },
            { actor: { email: `cli:${userInfo().username}`, role: "cli" } },
          );
          console.log(`credit type ${type.id} (${type.name}) is ready`);
        } catch (e) {
          if (isAppError(e, "CONFLICT")) fail(e.message);
          throw e;
        }
        break;
      }
      default:
        fail(USAGE);
    }
  } finally {
    await db.$disconnect();
  }
}

void main(process.argv.slice(2)).catch((e: unknown) => {
  console.error(e instanceof Error ? e.message : e);
  process.exit(1);
});
