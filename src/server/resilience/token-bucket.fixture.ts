/**
 * A second (and third) OS process for token-bucket.int.test.ts: builds its own
 * dependencies from the environment, waits for the test's "go" key, then takes
 * `count` tokens at once from one user's bucket and prints how many it got.
 *
 *   tsx src/server/resilience/token-bucket.fixture.ts <userId> <creditTypeId> <count>
 */
import { loadEnv } from "~/server/infra/env";
import { closeDeps, createDeps } from "~/server/infra/deps";
import { waitForRedis } from "~/server/infra/redis";
import { AppError } from "~/server/infra/app-error";
import { checkRateLimit } from "./rate-limit";

async function main(): Promise<void> {
  const [userId, creditTypeId, count] = process.argv.slice(2);
  if (!userId || !creditTypeId || !count) throw new Error("usage: token-bucket.fixture.ts <userId> <creditTypeId> <count>");
  const deps = createDeps(loadEnv(), {}, "bucket-fixture");
  await waitForRedis(deps.redis, 5_000);
  process.stdout.write("ready\n");
  while (!(await deps.redis.get(`go:${userId}`))) await new Promise((r) => setTimeout(r, 2));
  const outcomes = await Promise.all(
    Array.from({ length: Number(count) }, () =>
      checkRateLimit(deps, { procedure: "fixture", userId, creditTypeId }).then(
        () => "allowed",
        (e: unknown) => (e instanceof AppError ? e.code : String(e)),
      ),
    ),
  );
  process.stdout.write(`${JSON.stringify({ pid: process.pid, allowed: outcomes.filter((o) => o === "allowed").length, outcomes })}\n`);
  await closeDeps(deps);
}

main().catch((e: unknown) => {
  console.error(e);
  process.exit(1);
});
