import { fileURLToPath } from "node:url";
import { defineConfig } from "vitest/config";

// `server-only` is a build-time marker resolved by Next's bundler, not an installed
// package; under vitest it must be a no-op so server modules can be tested.
const serverOnlyStub = fileURLToPath(
  new URL("./node_modules/next/dist/compiled/server-only/empty.js", import.meta.url),
);

/**
 * The integration files that exercise Redis, run again against a Redis
 * Cluster (`npm run test:int:cluster`, a step of `npm test`; ≤ 2 min): rate
 * limits, breakers, locks, flash-sale gate and worker passes, request
 * markers, settings sync, contended deductions, sign-in throttling. Files
 * that kill Redis or start redis-servers of their own test that apart and
 * are not repeated here.
 */
const CLUSTER_FILES = [
  "src/test/redis-mode.int.test.ts",
  "src/server/resilience/token-bucket.int.test.ts",
  "src/server/resilience/admission.int.test.ts",
  "src/server/resilience/circuit-breaker.int.test.ts",
  "src/server/resilience/lock.int.test.ts",
  "src/server/resilience/settings.int.test.ts",
  "src/server/flash-sale/flash-sale.int.test.ts",
  "src/server/api/middleware/request-replay.int.test.ts",
  "src/server/credit/deduct.int.test.ts",
  "src/server/credit/balance-engine.int.test.ts",
  "src/server/identity/login.int.test.ts",
  "src/server/outbox/relay.int.test.ts",
  "src/server/infra/traffic-stats.int.test.ts",
];

export default defineConfig({
  resolve: {
    // `~/*` → `./src/*` straight from tsconfig.json (Vite 8).
    tsconfigPaths: true,
    alias: { "server-only": serverOnlyStub },
  },
  test: {
    env: { NODE_ENV: "test" },
    projects: [
      {
        extends: true,
        test: {
          name: "unit",
          environment: "node",
          include: ["src/**/*.test.ts"],
          exclude: ["src/**/*.int.test.ts", "src/**/*.sim.test.ts", "src/**/*.drill.test.ts", "src/**/*.cluster.test.ts", "src/generated/**"],
        },
      },
      {
        extends: true,
        test: {
          name: "integration",
          environment: "node",
          include: ["src/**/*.int.test.ts"],
          exclude: ["src/generated/**"],
          // One throw-away database and Redis prefix for the whole run.
          globalSetup: ["src/test/global-setup.ts"],
          testTimeout: 60_000,
          hookTimeout: 60_000,
          // Files share that database: run them one at a time so no test sees
          // another file's rows half-way (2 cores anyway).
          fileParallelism: false,
        },
      },
      {
        extends: true,
        test: {
          // The same set-up with a Redis Cluster of three masters as the
          // run's Redis (the global setup starts it for this project).
          name: "integration-cluster",
          environment: "node",
          include: CLUSTER_FILES,
          globalSetup: ["src/test/global-setup.ts"],
          testTimeout: 60_000,
          hookTimeout: 60_000,
          fileParallelism: false,
        },
      },
      {
        extends: true,
        test: {
          // The seeded simulation (src/test/sim/): a database and a
          // redis-server of its own. The integration global setup provides
          // what createOwnDatabase and createTestDeps read (the run's shared
          // database itself goes unused).
          name: "sim",
          environment: "node",
          include: ["src/**/*.sim.test.ts"],
          exclude: ["src/generated/**"],
          globalSetup: ["src/test/global-setup.ts"],
          // SIM_STEPS decides how long a run takes (the soak, over an hour).
          testTimeout: 6 * 3_600_000,
          hookTimeout: 120_000,
          fileParallelism: false,
        },
      },
      {
        extends: true,
        test: {
          // Fault drills (src/test/drills/): the production build as processes,
          // each drill with its own database, redis-server (and PostgreSQL
          // cluster when it crashes one); one drill at a time.
          name: "faults",
          environment: "node",
          include: ["src/**/*.drill.test.ts"],
          exclude: ["src/generated/**"],
          globalSetup: ["src/test/global-setup.ts"],
          testTimeout: 180_000,
          hookTimeout: 120_000,
          fileParallelism: false,
        },
      },
      {
        extends: true,
        test: {
          // The several-instance topology (scripts/cluster/) from the
          // production build: its own PostgreSQL primary and replica,
          // PgBouncer, Redis Cluster, HAProxy and service processes.
          name: "cluster",
          environment: "node",
          include: ["src/**/*.cluster.test.ts"],
          exclude: ["src/generated/**"],
          testTimeout: 180_000,
          hookTimeout: 240_000,
          fileParallelism: false,
        },
      },
    ],
  },
});
