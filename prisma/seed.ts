/**
 * Demo data: a credit type, a few funded accounts, a flash sale on now and
 * one that starts in 10 minutes, a
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
import { createActivity } from "~/server/flash-sale/activities";
import { warmActivity } from "~/server/flash-sale/warm-up";

const DEMO_SALE = "demo-sale";

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

  // A sale running now (purchasable right after set-up) and one that starts in 10 minutes.
  const seedActor = { actor: { email: "seed", role: "system" } };
  const now = Date.now();
  const running = await db.flashSaleActivity.findUnique({ where: { id: DEMO_SALE } });
  if (!running) {
    await createActivity(
      deps,
      {
        id: DEMO_SALE,
        name: "Demo flash sale",
        startsAt: new Date(now - 60_000),
        endsAt: new Date(now + 7 * 86_400_000),
        items: [
          { id: "demo-coffee", name: "Coffee voucher", creditTypeId: "points", pointsPrice: 100, stock: 50 },
          { id: "demo-headphones", name: "Headphones", creditTypeId: "points", pointsPrice: 2500, stock: 3 },
        ],
      },
      seedActor,
    );
  } else if (running.endsAt.getTime() <= now || running.paused) {
    // A re-run after the demo sale ended: open it again for a week.
    await db.flashSaleActivity.update({
      where: { id: DEMO_SALE },
      data: { startsAt: new Date(now - 60_000), endsAt: new Date(now + 7 * 86_400_000), paused: false, pausedReason: null },
    });
    await warmActivity(deps, DEMO_SALE);
  }
  const upcoming = await db.flashSaleActivity.findFirst({ where: { name: "Demo midnight sale", startsAt: { gt: new Date(now) } } });
  if (!upcoming) {
    await createActivity(
      deps,
      {
        name: "Demo midnight sale",
        startsAt: new Date(now + 10 * 60_000),
        endsAt: new Date(now + 70 * 60_000),
        items: [{ name: "Concert ticket", creditTypeId: "points", pointsPrice: 1000, stock: 20 }],
      },
      seedActor,
    );
  }

  const key = await createApiKey(db, { name: `demo ${new Date().toISOString()}`, scopes: ["catalog"] });
  const email = "admin@flashpoints.local";
  const password = randomBytes(12).toString("base64url");
  await createAdminUser(db, { email, password, role: "admin" });

  console.log("\nDemo data is ready:");
  console.log("  credit type  points; accounts alice (5000), bob (1200), carol (300)");
  console.log(`  flash sales  "Demo flash sale" (${DEMO_SALE}, on now: items demo-coffee 100 points, demo-headphones 2500);`);
  console.log('               "Demo midnight sale", starts in 10 minutes');
  console.log(`  admin login  ${email} / ${password}`);
  console.log(`  API key      ${key.key}`);
}

main()
  .catch((e: unknown) => {
    console.error(e);
    process.exitCode = 1;
  })
  .finally(() => void closeDeps(deps));
