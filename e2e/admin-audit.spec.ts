import { randomBytes } from "node:crypto";
import AxeBuilder from "@axe-core/playwright";
import { expect, test, type Page } from "@playwright/test";
import pg from "pg";
import { E2E_ADMIN, e2eRun } from "./fixtures";

async function signIn(page: Page): Promise<void> {
  // Same origin and JSON, as the dashboard's own client sends it; the cookie
  // lands in the page's browser context.
  const res = await page.request.post("/api/trpc/auth.login", {
    data: { email: E2E_ADMIN.email, password: E2E_ADMIN.password },
  });
  expect(res.status()).toBe(200);
}

/** Appends `count` entries, oldest first, all tagged with `marker` as their action. */
async function insertAuditEntries(marker: string, count: number): Promise<void> {
  const client = new pg.Client({ connectionString: e2eRun().databaseUrl });
  await client.connect();
  try {
    await client.query(
      `INSERT INTO audit_log (actor, role, action, target, reason, before, after, request_id, created_at)
       SELECT 'ops@e2e.test', 'operator', $1::text, 'refund:r-' || i, 'e2e entry ' || i,
              jsonb_build_object('status', 'FAILED'), jsonb_build_object('status', 'PENDING', 'n', i),
              $1::text || '-' || lpad(i::text, 2, '0'), now() - ($2::int - i) * interval '1 second'
       FROM generate_series(1, $2::int) AS i
       ORDER BY i`,
      [marker, count],
    );
  } finally {
    await client.end();
  }
}

async function expectNoAxeViolations(page: Page): Promise<void> {
  const result = await new AxeBuilder({ page }).withTags(["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]).analyze();
  expect(result.violations.map((v) => `${v.id}: ${v.nodes.map((n) => n.target.join(" ")).join(", ")}`)).toEqual([]);
}

test("the audit page pages through the log newest first with Load more", async ({ page }, testInfo) => {
  test.slow(); // axe's analysis takes seconds on two busy cores
  const marker = `e2e.audit-${randomBytes(3).toString("hex")}`;
  await insertAuditEntries(marker, 30);
  await signIn(page);

  await page.goto("/admin/audit");
  await expect(page.getByRole("heading", { level: 1, name: "Audit" })).toBeVisible();
  const ours = page.getByTestId("audit-row").filter({ hasText: marker });
  // One page is 25 entries: the newest 25 of ours, newest first.
  await expect(ours).toHaveCount(25);
  await expect(ours.first()).toContainText(`${marker}-30`);
  await expect(ours.last()).toContainText(`${marker}-06`);
  await expect(page.getByText(`${marker}-05`)).toHaveCount(0);

  const toggle = ours.first().getByRole("button", { name: "Before / after" });
  await toggle.click();
  await expect(toggle).toHaveAttribute("aria-expanded", "true");
  await expect(page.getByTestId("audit-change").first()).toContainText('"PENDING"');
  await expectNoAxeViolations(page);
  await testInfo.attach("audit-page", { body: await page.screenshot({ fullPage: true }), contentType: "image/png" });

  await page.getByRole("button", { name: "Load more" }).click();
  await expect(ours).toHaveCount(30);
  await expect(ours.last()).toContainText(`${marker}-01`);

  // The overview lists the newest entries through the server-side caller.
  await page.getByRole("navigation", { name: "Main" }).getByRole("link", { name: "Overview" }).click();
  await expect(page.getByRole("heading", { level: 1, name: "Overview" })).toBeVisible();
  await expect(page.getByText(marker).first()).toBeVisible();
});

test("the login page and the overview pass axe's WCAG 2.1 A/AA checks", async ({ page }) => {
  test.slow();
  await page.goto("/admin/login");
  await expect(page.getByRole("heading", { name: "Sign in" })).toBeVisible();
  await expectNoAxeViolations(page);

  await signIn(page);
  await page.goto("/admin");
  await expect(page.getByText("Checked at")).toBeVisible();
  await expectNoAxeViolations(page);
});
