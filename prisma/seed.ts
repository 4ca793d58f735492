/**
 * Demo data: a credit type, a few funded accounts, an upcoming flash sale, a
 * demo API key and an admin login (both printed at the end). Safe to re-run:
 * grants are idempotent by business key; each run issues a fresh key and
 * password.
 */
import { randomBytes } from "node:crypto";
import { loadEnvOrExit } from "~/server/infra/env";
import { createDeps, closeDeps } from "~/server/infra/deps";
import { grantCredits } from "~/server/credit/grant";
import { createApiKey } from "~/server/identity/api-keys";
import { createAdminUser } from "~/server/identity/admin-users";

const env = loadEnvOrExit();
const deps = createDeps({ ...env, LOG_LEVEL: "warn" }, {}, "flashpoints-seed");

async function main(): Promise<void> {
  const { db } = deps;
  await db.creditType.upsert({
    where: { id: "points" },
    create: { id: "points", name: "Loyalty points" },
    update: {},
  });
  for (const [userId, amount] of [
    ["alice", 5000],
    ["bob", 1200],
    ["carol", 300],
  ] as const) {
    await grantCredits(
      deps,
      { userId, creditTypeId: "points", amount, businessCode: "seed", businessId: `welcome:${userId}` },
      { principal: "seed", requestId: null },
    );
  }

  const existingSale = await db.flashSaleActivity.findFirst({ where: { name: "Demo midnight sale" } });
  if (!existingSale) {
    const startsAt = new Date(Date.now() + 10 * 60_000);
    await db.flashSaleActivity.create({
      data: {
        name: "Demo midnight sale",
        startsAt,
        endsAt: new Date(startsAt.getTime() + 60 * 60_000),
        items: {
          create: [
            { name: "Coffee voucher", creditTypeId: "points", pointsPrice: 100n, stock: 50 },
            { name: "Headphones", creditTypeId: "points", pointsPrice: 2500n, stock: 3 },
          ],
        },
      },
    });
  }

  const key = await createApiKey(db, { name: `demo ${new Date().toISOString()}`, scopes: ["catalog"] });
  const email = "admin@flashpoints.local";
  const password = randomBytes(12).toString("base64url");
  await createAdminUser(db, { email, password, role: "admin" });

  console.log("\nDemo data is ready:");
  console.log("  credit type  points; accounts alice (5000), bob (1200), carol (300)");
  console.log("  flash sale   \"Demo midnight sale\", starts in 10 minutes");
  console.log(`  admin login  ${email} / ${password}`);
  console.log(`  API key      ${key.key}`);
}

main()
  .catch((e: unknown) => {
    console.error(e);
    process.exitCode = 1;
  })
  .finally(() => void closeDeps(deps));
