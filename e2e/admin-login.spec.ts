import { expect, test } from "@playwright/test";
import { E2E_ADMIN } from "./fixtures";

// The login form lives in <main>; Next's route announcer (role=alert) does not.
const formAlert = (page: import("@playwright/test").Page) => page.getByRole("main").getByRole("alert");

test("an operator signs in, sees the dashboard shell, and signs out", async ({ page, context }, testInfo) => {
  await page.goto("/admin");
  await expect(page).toHaveURL(/\/admin\/login$/);
  await expect(page.getByRole("heading", { name: "Sign in" })).toBeVisible();

  // Wrong password: an error, and still on the login page without a session.
  await page.getByLabel("Email").fill(E2E_ADMIN.email);
  await page.getByLabel("Password").fill("not-the-password-0000");
  await page.getByRole("button", { name: "Sign in" }).click();
  await expect(formAlert(page)).toHaveText("Email or password is wrong.");
  await expect(page).toHaveURL(/\/admin\/login$/);
  await expect(page.getByLabel("Password")).toBeFocused();
  expect((await context.cookies()).some((c) => c.name === "fp_session")).toBe(false);

  await page.getByLabel("Password").fill(E2E_ADMIN.password);
  await page.getByRole("button", { name: "Sign in" }).click();
  await expect(page).toHaveURL(/\/admin$/);
  const banner = page.getByRole("banner");
  await expect(banner.getByTestId("session-email")).toHaveText(E2E_ADMIN.email);
  await expect(banner.getByText(E2E_ADMIN.role, { exact: true })).toBeVisible();
  await expect(page.getByRole("heading", { level: 1, name: "Overview" })).toBeVisible();
  const nav = page.getByRole("navigation", { name: "Main" });
  await expect(nav.getByRole("link", { name: "Overview" })).toHaveAttribute("aria-current", "page");
  await expect(nav.getByRole("link", { name: "Audit" })).toBeVisible();
  // Served by the same process: the health card reads the real /api/health.
  await expect(page.getByText("Checked at")).toBeVisible();
  const session = (await context.cookies()).find((c) => c.name === "fp_session");
  expect(session?.httpOnly).toBe(true);
  expect(session?.sameSite).toBe("Lax");
  await testInfo.attach("dashboard-shell", { body: await page.screenshot({ fullPage: true }), contentType: "image/png" });

  // Signed in, the login page sends the operator on to the dashboard.
  await page.goto("/admin/login");
  await expect(page).toHaveURL(/\/admin$/);

  await page.getByRole("button", { name: "Sign out" }).click();
  await expect(page).toHaveURL(/\/admin\/login$/);
  await expect(page.getByRole("heading", { name: "Sign in" })).toBeVisible();
  expect((await context.cookies()).some((c) => c.name === "fp_session" && c.value !== "")).toBe(false);

  await page.goto("/admin");
  await expect(page).toHaveURL(/\/admin\/login$/);
  await page.goto("/admin/audit");
  await expect(page).toHaveURL(/\/admin\/login$/);
});

test("a rate-limited sign-in says when to try again", async ({ page }) => {
  // Ten real failures would lock 127.0.0.1 out for every other spec for five
  // minutes, so the server's RATE_LIMITED answer is played back instead.
  await page.route("**/api/trpc/auth.login**", (route) =>
    route.fulfill({
      status: 429,
      contentType: "application/json",
      headers: { "retry-after": "42" },
      // Sign-in is never batched: a single call's error shape.
      body: JSON.stringify({
        error: {
          message: "too many sign-in attempts; wait before trying again",
          code: -32029,
          data: { code: "TOO_MANY_REQUESTS", httpStatus: 429, path: "auth.login", appCode: "RATE_LIMITED", retryAfterMs: 41_200 },
        },
      }),
    }),
  );
  await page.goto("/admin/login");
  await page.getByLabel("Email").fill(E2E_ADMIN.email);
  await page.getByLabel("Password").fill(E2E_ADMIN.password);
  await page.getByRole("button", { name: "Sign in" }).click();
  await expect(formAlert(page)).toHaveText("Too many sign-in attempts. Try again in 42 s.");
  await expect(page).toHaveURL(/\/admin\/login$/);
  await expect(page.getByRole("button", { name: "Sign in" })).toBeEnabled();
});
