import { randomBytes } from "node:crypto";
import { expect, test } from "@playwright/test";
import { E2E_ADMIN } from "./fixtures";
import { expectNoAxeViolations, screenshots, signIn } from "./helpers";

/** API keys and users, managed by an admin in the dashboard as a person does it. */

const tag = randomBytes(3).toString("hex");

test("an admin creates a key (shown once), the service uses it, the admin revokes it and it is refused within 5 s", async ({ page }) => {
  test.setTimeout(90_000);
  await signIn(page, E2E_ADMIN);
  await page.goto("/admin/keys");
  await expect(page.getByRole("heading", { level: 1, name: "API keys" })).toBeVisible();
  await page.getByRole("button", { name: "New key…" }).click();
  const dialog = page.getByRole("dialog", { name: "New API key" });
  await dialog.getByLabel("Service name").fill(`checkout-${tag}`);
  await dialog.getByLabel("Reason").fill(`${tag}: checkout service goes live`);
  await dialog.getByRole("button", { name: "Create key" }).click();
  const secret = (await page.getByTestId("new-key-secret").textContent())!.trim();
  expect(secret).toMatch(/^fpk_/);
  await expectNoAxeViolations(page);
  await screenshots(page, "keys");

  const ping = () => page.request.post("/api/trpc/system.ping", { data: {}, headers: { authorization: `Bearer ${secret}` } });
  expect((await ping()).status()).toBe(200);
  // The secret is not shown again.
  await page.reload();
  await expect(page.getByText(secret)).toHaveCount(0);

  const row = page.locator(`[data-key-name="checkout-${tag}"]`);
  await row.getByRole("button", { name: "Revoke…" }).click();
  const revoke = page.getByRole("dialog", { name: `Revoke the key of checkout-${tag}` });
  await revoke.getByLabel("Reason").fill(`${tag}: rotated`);
  await revoke.getByRole("button", { name: "Revoke key" }).click();
  await expect(row).toContainText("revoked");
  await expect.poll(async () => (await ping()).status(), { timeout: 5_000, intervals: [250] }).toBe(401);
});

test("an admin creates a viewer, who can sign in and sees the pages but not the admin ones", async ({ page, browser }) => {
  test.setTimeout(90_000);
  await signIn(page, E2E_ADMIN);
  await page.goto("/admin/users");
  await page.getByRole("button", { name: "New user…" }).click();
  const dialog = page.getByRole("dialog", { name: "New dashboard user" });
  const email = `viewer-${tag}@e2e.test`;
  const password = `viewer password ${tag}`;
  await dialog.getByLabel("Email").fill(email);
  await dialog.getByLabel("Password").fill(password);
  await dialog.getByLabel("Reason").fill(`${tag}: night shift`);
  await dialog.getByRole("button", { name: "Create user" }).click();
  await expect(page.getByTestId("users-notice")).toContainText(`${email} can sign in as viewer`);
  await expect(page.locator(`[data-email="${email}"]`)).toContainText("viewer");
  await expectNoAxeViolations(page);
  await screenshots(page, "users");

  const context = await browser.newContext();
  const viewer = await context.newPage();
  await signIn(viewer, { email, password });
  await viewer.goto("/admin/users");
  await expect(viewer.getByText("Admins only")).toBeVisible();
  await expect(viewer.getByRole("button", { name: "New user…" })).toHaveCount(0);
  await context.close();
});

test("an admin adds a credit type, which grants can use at once", async ({ page }) => {
  await signIn(page, E2E_ADMIN);
  await page.goto("/admin/credit-types");
  await expect(page.getByRole("heading", { level: 1, name: "Credit types" })).toBeVisible();
  await page.getByRole("button", { name: "New credit type…" }).click();
  const dialog = page.getByRole("dialog", { name: "New credit type" });
  await dialog.getByLabel("Id").fill(`miles-${tag}`);
  await dialog.getByLabel("Name").fill("Air miles");
  await dialog.getByLabel("Reason").fill(`${tag}: partner airline`);
  await dialog.getByRole("button", { name: "Create" }).click();
  await expect(page.getByTestId("credit-types-notice")).toContainText(`Credit type miles-${tag} (Air miles) is ready.`);
  await expect(page.getByTestId("credit-type-row").filter({ hasText: `miles-${tag}` })).toBeVisible();
  await expectNoAxeViolations(page);
  await screenshots(page, "credit-types");
});
