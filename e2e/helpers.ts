import path from "node:path";
import AxeBuilder from "@axe-core/playwright";
import { expect, type Page, type TestInfo } from "@playwright/test";
import pg from "pg";
import { e2eRun } from "./fixtures";

/** What the specs share: signing in, reading the run's database, the axe scan, screenshots and console errors. */

/** Signs in through the API, as the login form does; the cookie lands in the page's browser context. */
export async function signIn(page: Page, user: { email: string; password: string }): Promise<void> {
  const res = await page.request.post("/api/trpc/auth.login", { data: { email: user.email, password: user.password } });
  expect(res.status()).toBe(200);
}

/** One statement against the run's database (as its app role). */
export async function sql<T extends pg.QueryResultRow>(text: string, values: unknown[]): Promise<T[]> {
  const client = new pg.Client({ connectionString: e2eRun().databaseUrl });
  await client.connect();
  try {
    return (await client.query<T>(text, values)).rows;
  } finally {
    await client.end();
  }
}

export async function expectNoAxeViolations(page: Page): Promise<void> {
  const result = await new AxeBuilder({ page }).withTags(["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]).analyze();
  expect(result.violations.map((v) => `${v.id}: ${v.nodes.map((n) => n.target.join(" ")).join(", ")}`)).toEqual([]);
}

/** The page at 1280 px and at a 390 px phone: saved in test-results/screenshots/ (and attached to the report when given the test). */
export async function screenshots(page: Page, name: string, testInfo?: TestInfo): Promise<void> {
  const size = page.viewportSize();
  for (const [suffix, viewport] of [
    ["desktop", { width: 1280, height: 800 }],
    ["phone", { width: 390, height: 844 }],
  ] as const) {
    await page.setViewportSize(viewport);
    await page.evaluate(() => window.scrollTo(0, 0));
    const body = await page.screenshot({ fullPage: true, path: path.join("test-results", "screenshots", `${name}-${suffix}.png`) });
    await testInfo?.attach(`${name}-${suffix}`, { body, contentType: "image/png" });
  }
  if (size) await page.setViewportSize(size);
}

/** Uncaught errors and console errors of the page (failed loads aside: the 4xx a test provokes are logged as those). */
export function watchErrors(page: Page): string[] {
  const errors: string[] = [];
  page.on("pageerror", (e) => errors.push(e.message));
  page.on("console", (msg) => {
    if (msg.type() === "error" && !msg.text().startsWith("Failed to load resource")) errors.push(msg.text());
  });
  return errors;
}
