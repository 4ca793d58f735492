import { defineConfig, devices } from "@playwright/test";
import { e2eRun } from "./e2e/fixtures";
import { randomRunId } from "./src/test/throwaway";

// One run id per `playwright test`: fixed here, in the runner process, so the
// workers it forks later (which load this file again) inherit the same one.
process.env.FP_E2E_RUN_ID ??= randomRunId();
const run = e2eRun();

export default defineConfig({
  testDir: "e2e",
  outputDir: "test-results",
  fullyParallel: false,
  forbidOnly: !!process.env.CI,
  retries: 0, // a retry would reuse the run's database, and hide flakiness
  workers: 1, // 2 cores, and the server, Postgres and Chromium share them
  timeout: 30_000,
  expect: { timeout: 10_000 },
  reporter: [["list"], ["html", { open: "never" }]],
  // Playwright starts `webServer` BEFORE globalSetup (1.65: plugin setup tasks run
  // first), and stops it only after globalTeardown. The server needs its migrated
  // database and admin user before it starts, and must be gone before that database
  // is dropped, so global setup starts it itself and its returned teardown stops it.
  globalSetup: "e2e/global-setup.ts",
  use: {
    baseURL: run.baseURL,
    screenshot: "on",
    trace: "retain-on-failure",
    launchOptions: {
      // Debian's Chromium (apt-get install chromium); never `playwright install`.
      executablePath: "/usr/bin/chromium",
      args: ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update"],
    },
  },
  projects: [{ name: "chromium", use: { ...devices["Desktop Chrome"] } }],
});
