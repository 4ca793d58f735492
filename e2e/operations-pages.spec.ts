import { randomBytes } from "node:crypto";
import { expect, test, type APIRequestContext } from "@playwright/test";
import { Redis } from "ioredis";
import { createDashboardUser, createServiceKey, e2eRun, startRunWorker } from "./fixtures";
import { expectNoAxeViolations, screenshots, signIn, sql, watchErrors } from "./helpers";

/**
 * The pages an operator uses during a sale — refunds, flash sales, accounts,
 * operations — as a person uses them, in Chromium against the production
 * build: what a viewer sees, what an operator does, and the audit trail.
 */

const tag = randomBytes(3).toString("hex");
let serviceKey = "";
let catalogKey = "";

async function call(request: APIRequestContext, key: string, procedure: string, body: unknown): Promise<unknown> {
  const res = await request.post(`/api/trpc/${procedure}`, { data: body, headers: { authorization: `Bearer ${key}` } });
  const json = (await res.json()) as { result?: { data: unknown }; error?: unknown };
  expect(res.status(), JSON.stringify(json)).toBe(200);
  return json.result?.data;
}

/** A debit of `amount` from a user funded with `grant`, and a refund of it queued (PENDING, counted against the debit) as a failed purchase queues one. */
async function queuedRefund(request: APIRequestContext, userId: string, grant: number, amount: number): Promise<string> {
  await call(request, serviceKey, "credit.grant", { userId, creditTypeId: "points", amount: grant, businessCode: "e2e.grant", businessId: userId });
  const debit = (await call(request, serviceKey, "credit.deduct", {
    userId,
    creditTypeId: "points",
    amount,
    businessCode: "e2e.order",
    businessId: userId,
  })) as { transactionId: string };
  const [row] = await sql<{ id: string }>(
    `WITH counted AS (UPDATE ledger_entries SET refunded_amount = amount WHERE id = $1::uuid RETURNING user_id, credit_type_id, amount)
     INSERT INTO refunds (user_id, credit_type_id, amount, reason, original_transaction_id, status, attempts, next_attempt_at)
     SELECT user_id, credit_type_id, amount, 'flash-sale purchase failed after its debit', $1::uuid, 'PENDING', 0, now() FROM counted
     RETURNING id::text`,
    [debit.transactionId],
  );
  return row!.id;
}

/**
 * The production worker with the `refund.apply` failpoint (every attempt fails)
 * and two quick attempts: it leaves the given refunds FAILED, as a real outage
 * would. Stopped once they are, so the operator's retries meet a healthy system.
 */
async function failThroughWorker(refundIds: string[]): Promise<void> {
  const worker = await startRunWorker(e2eRun(), {
    FAILPOINTS_ENABLED: "1",
    FAILPOINTS: "refund.apply=error",
    REFUND_MAX_ATTEMPTS: "2",
    REFUND_BACKOFF_BASE_MS: "50",
    REFUND_BACKOFF_MAX_MS: "100",
  });
  try {
    await expect
      .poll(async () => (await sql<{ n: string }>("SELECT count(*)::text AS n FROM refunds WHERE id = ANY($1::uuid[]) AND status = 'FAILED'", [refundIds]))[0]?.n, {
        timeout: 20_000,
      })
      .toBe(String(refundIds.length));
  } finally {
    await worker.stop();
  }
}

test.beforeAll(() => {
  serviceKey = createServiceKey(e2eRun(), `e2e-service-${tag}`);
  catalogKey = createServiceKey(e2eRun(), `e2e-catalog-${tag}`, "catalog");
});

test("signed out, every operations page sends you to sign in", async ({ page }) => {
  for (const path of ["/admin/refunds", "/admin/sales", "/admin/accounts", "/admin/operations"]) {
    await page.goto(path);
    await expect(page).toHaveURL(/\/admin\/login/);
  }
});

test("an operator retries a FAILED refund: it succeeds, the points are back, the audit log has it; a viewer sees it but cannot act", async ({
  page,
  browser,
}, testInfo) => {
  test.setTimeout(120_000);
  const errors = watchErrors(page);
  await call(page.request, catalogKey, "creditType.create", { id: "points", name: "Loyalty points" });
  const user = `e2e-buyer-${tag}`;
  const refundId = await queuedRefund(page.request, user, 500, 120);
  const bulkUsers = [`e2e-bulk-a-${tag}`, `e2e-bulk-b-${tag}`];
  const bulkIds = [await queuedRefund(page.request, bulkUsers[0]!, 300, 70), await queuedRefund(page.request, bulkUsers[1]!, 300, 80)];
  await failThroughWorker([refundId, ...bulkIds]);

  // A viewer: the FAILED refund and its error, no buttons.
  const viewer = { email: `viewer-${tag}@e2e.test`, password: `viewer-password-${tag}`, role: "viewer" as const };
  createDashboardUser(e2eRun(), viewer);
  const viewerContext = await browser.newContext();
  const viewerPage = await viewerContext.newPage();
  await signIn(viewerPage, viewer);
  await viewerPage.goto("/admin/refunds");
  const viewerRow = viewerPage.locator(`[data-refund-id="${refundId}"]`);
  await expect(viewerRow).toContainText("failpoint refund.apply");
  await expect(viewerRow.getByRole("button", { name: "Retry…" })).toHaveCount(0);
  await expect(viewerPage.getByRole("button", { name: /Retry selected/ })).toHaveCount(0);
  await viewerContext.close();

  const operator = { email: `operator-${tag}@e2e.test`, password: `operator-password-${tag}`, role: "operator" as const };
  createDashboardUser(e2eRun(), operator);
  await signIn(page, operator);
  await page.goto("/admin");
  await page.getByRole("navigation", { name: "Main" }).getByRole("link", { name: "Refunds" }).click();
  await expect(page.getByRole("heading", { level: 1, name: "Refunds" })).toBeVisible();
  await expect(page.getByRole("tab", { name: "FAILED" })).toHaveAttribute("aria-selected", "true");
  const row = page.locator(`[data-refund-id="${refundId}"]`);
  await expect(row.getByTestId("refund-status")).toHaveText("FAILED");
  await expect(row).toContainText("120");
  await expect(row).toContainText("failpoint refund.apply");
  await expectNoAxeViolations(page);
  await screenshots(page, "refunds-failed", testInfo);

  await row.getByRole("button", { name: "Retry…" }).click();
  const dialog = page.getByRole("dialog", { name: "Retry this refund now" });
  await dialog.getByRole("button", { name: "Retry now" }).click();
  await expect(dialog.getByTestId(/reason-error$/)).toBeVisible(); // a reason is required
  await dialog.getByLabel("Reason").fill(`ticket ${tag}: database back, retrying`);
  await dialog.getByRole("button", { name: "Retry now" }).click();
  await expect(page.getByTestId("refunds-notice")).toContainText("succeeded");
  await expect(page.locator("[data-sonner-toast]").filter({ hasText: "succeeded" })).toBeVisible();
  await expect(row).toHaveCount(0);

  // Bulk: both others at once, a result per row.
  for (const [i, id] of bulkIds.entries()) {
    await page.locator(`[data-refund-id="${id}"]`).getByRole("checkbox", { name: `Select the refund of ${70 + 10 * i} to ${bulkUsers[i]}` }).check();
  }
  await page.getByRole("button", { name: "Retry selected (2)…" }).click();
  const bulk = page.getByRole("dialog", { name: "Retry 2 refunds now" });
  await bulk.getByLabel("Reason").fill(`ticket ${tag}: bulk retry after the outage`);
  await bulk.getByRole("button", { name: "Retry all" }).click();
  const results = page.getByTestId("bulk-results");
  await expect(results).toContainText("Bulk retry: 2 of 2 succeeded");
  for (const id of bulkIds) await expect(page.locator(`[data-refund-id="${id}"]`)).toHaveCount(0);
  await screenshots(page, "refunds-bulk-retried", testInfo);

  await page.getByRole("tab", { name: "SUCCEEDED" }).click();
  await expect(page.locator(`[data-refund-id="${refundId}"]`).getByTestId("refund-status")).toHaveText("SUCCEEDED");
  await screenshots(page, "refunds-succeeded", testInfo);
  const [refund] = await sql<{ status: string; credits: string }>(
    `SELECT f.status::text, (SELECT count(*) FROM ledger_entries l WHERE l.business_code = 'refund' AND l.business_id = f.id::text)::text AS credits
     FROM refunds f WHERE f.id = $1::uuid`,
    [refundId],
  );
  expect(refund).toEqual({ status: "SUCCEEDED", credits: "1" });
  const bulkChecks = await sql<{ status: string; credits: string }>(
    `SELECT f.status::text, (SELECT count(*) FROM ledger_entries l WHERE l.business_code = 'refund' AND l.business_id = f.id::text)::text AS credits
     FROM refunds f WHERE f.id = ANY($1::uuid[])`,
    [bulkIds],
  );
  expect(bulkChecks).toEqual([
    { status: "SUCCEEDED", credits: "1" },
    { status: "SUCCEEDED", credits: "1" },
  ]);

  // The account: the points are back.
  await page.locator(`[data-refund-id="${refundId}"]`).getByRole("link", { name: user, exact: true }).click();
  await expect(page.getByRole("heading", { level: 1, name: "Accounts" })).toBeVisible();
  await expect(page.getByTestId("account-balance")).toHaveText("500");
  await expect(page.getByTestId("ledger-row")).toHaveCount(3);
  await expectNoAxeViolations(page);
  await screenshots(page, "accounts", testInfo);

  // The attempt, by the refund's business key.
  await page.goto(`/admin/operations?businessCode=refund&businessId=${refundId}`);
  await expect(page.getByTestId("operation-status")).toHaveText("completed");
  await expectNoAxeViolations(page);
  await screenshots(page, "operations", testInfo);

  await page.goto("/admin/audit");
  const audit = page.getByTestId("audit-row").filter({ hasText: `refund:${refundId}` });
  await expect(audit.first()).toContainText("refund.retry");
  await expect(audit.first()).toContainText(`ticket ${tag}`);
  for (const id of bulkIds) {
    await expect(page.getByTestId("audit-row").filter({ hasText: `refund:${id}` }).first()).toContainText("bulk retry after the outage");
  }
  expect(errors).toEqual([]);
});

test("an operator creates a sale, sees it sell live, pauses it (buyers are refused) and resumes it; audited", async ({ page }, testInfo) => {
  test.setTimeout(120_000);
  const errors = watchErrors(page);
  await call(page.request, catalogKey, "creditType.create", { id: "points", name: "Loyalty points" });
  const operator = { email: `sales-${tag}@e2e.test`, password: `sales-password-${tag}`, role: "operator" as const };
  createDashboardUser(e2eRun(), operator);
  await signIn(page, operator);
  await page.goto("/admin/sales");
  await expect(page.getByRole("heading", { level: 1, name: "Flash sales" })).toBeVisible();

  const name = `Evening sale ${tag}`;
  await page.getByRole("button", { name: "New sale…" }).click();
  const dialog = page.getByRole("dialog", { name: "New flash sale" });
  await dialog.getByLabel("Name").fill(name);
  await dialog.getByLabel("Starts (your time)").fill("2020-01-01T00:00");
  await dialog.getByLabel("Ends (your time)").fill("2099-01-01T00:00");
  await dialog.getByLabel("Item").fill("Scarf");
  await dialog.getByLabel("Stock (units)").fill("5");
  await dialog.getByLabel("Reason").fill(`${tag}: evening promotion`);
  await dialog.getByRole("button", { name: "Create sale" }).click();
  await expect(page.getByTestId("sales-notice")).toContainText(`${name} is created (ACTIVE)`);

  const card = page.getByRole("region", { name });
  await expect(card.getByTestId("sale-status")).toHaveText("ACTIVE");
  const [ids] = await sql<{ activity: string; item: string }>(
    "SELECT a.id AS activity, i.id AS item FROM flash_sale_activities a JOIN flash_sale_items i ON i.activity_id = a.id WHERE a.name = $1",
    [name],
  );
  const buyer = `e2e-sale-buyer-${tag}`;
  await call(page.request, serviceKey, "credit.grant", { userId: buyer, creditTypeId: "points", amount: 1000, businessCode: "e2e.grant", businessId: buyer });
  await call(page.request, serviceKey, "flashSale.purchase", { userId: buyer, activityId: ids!.activity, itemId: ids!.item });
  await expect(card.getByTestId("sale-item-sold")).toHaveText("1", { timeout: 10_000 });

  // Redis loses the item (its counter is gone, as after a restart): the worker
  // loads it again from Postgres and the page lists the report.
  const redis = new Redis(e2eRun().redisUrl, { keyPrefix: e2eRun().redisPrefix });
  try {
    expect(await redis.del(`fs:{${ids!.item.length}:${ids!.item}}:stock`)).toBe(1);
  } finally {
    redis.disconnect();
  }
  const worker = await startRunWorker(e2eRun(), {});
  try {
    await expect
      .poll(async () => (await sql("SELECT 1 FROM audit_log WHERE action = 'flashSale.rewarm' AND target = $1", [`item:${ids!.item}`])).length, { timeout: 15_000 })
      .toBe(1);
  } finally {
    await worker.stop();
  }
  await page.reload();
  const report = page.getByTestId("repair-row").filter({ hasText: name });
  await expect(report).toContainText("Re-warmed");
  await expect(report).toContainText("Scarf");
  await expect(report.locator("td").nth(3)).toHaveText("missing");
  await expect(report.locator("td").nth(4)).toHaveText("4");
  await expectNoAxeViolations(page);
  await screenshots(page, "sales", testInfo);

  await card.getByRole("button", { name: "Pause…" }).click();
  const pause = page.getByRole("dialog", { name: `Pause ${name}` });
  await pause.getByLabel("Reason").fill(`${tag}: stock recount`);
  await pause.getByRole("button", { name: "Pause sale" }).click();
  await expect(card.getByTestId("sale-status")).toHaveText("PAUSED");
  const refused = await page.request.post("/api/trpc/flashSale.purchase", {
    data: { userId: `${buyer}-2`, activityId: ids!.activity, itemId: ids!.item },
    headers: { authorization: `Bearer ${serviceKey}` },
  });
  expect(((await refused.json()) as { error: { data: { appCode: string } } }).error.data.appCode).toBe("ACTIVITY_NOT_ACTIVE");

  await card.getByRole("button", { name: "Resume…" }).click();
  const resume = page.getByRole("dialog", { name: `Resume ${name}` });
  await resume.getByLabel("Reason").fill(`${tag}: recounted`);
  await resume.getByRole("button", { name: "Resume sale" }).click();
  await expect(card.getByTestId("sale-status")).toHaveText("ACTIVE");

  const actions = await sql<{ action: string }>(
    "SELECT action FROM audit_log WHERE target = $1 ORDER BY id",
    [`activity:${ids!.activity}`],
  );
  expect(actions.map((a) => a.action)).toEqual(["flashSale.createActivity", "flashSale.pause", "flashSale.resume"]);
  expect(errors).toEqual([]);
});

test("a viewer sees the sales but no button to change them", async ({ page }) => {
  const viewer = { email: `sales-viewer-${tag}@e2e.test`, password: `sales-viewer-${tag}-pw`, role: "viewer" as const };
  createDashboardUser(e2eRun(), viewer);
  await signIn(page, viewer);
  await page.goto("/admin/sales");
  await expect(page.getByRole("heading", { level: 1, name: "Flash sales" })).toBeVisible();
  await expect(page.getByRole("button", { name: "New sale…" })).toHaveCount(0);
  await expect(page.getByRole("button", { name: "Pause…" })).toHaveCount(0);
});

test("the overview charts the deployment's traffic and shows breakers, the refund queue and sales on now", async ({ page }, testInfo) => {
  test.setTimeout(60_000);
  const errors = watchErrors(page);
  const operator = { email: `overview-${tag}@e2e.test`, password: `overview-password-${tag}`, role: "operator" as const };
  createDashboardUser(e2eRun(), operator);
  for (let i = 0; i < 20; i++) await call(page.request, serviceKey, "system.ping", {});
  await signIn(page, operator);
  await page.goto("/admin");
  await expect(page.getByRole("heading", { level: 1, name: "Overview" })).toBeVisible();
  await expect(page.getByTestId("overview")).toBeVisible();
  await expect(page.getByTestId("overview-circuit").first()).toBeVisible();
  await expect(page.getByTestId("overview-failed-refunds")).toBeVisible();
  // The pings show up once their 10-second window has closed (the page re-reads every 10 s).
  await expect(page.getByRole("cell", { name: "system.ping" })).toBeVisible({ timeout: 25_000 });
  await expectNoAxeViolations(page);
  await screenshots(page, "overview", testInfo);
  expect(errors).toEqual([]);
});
