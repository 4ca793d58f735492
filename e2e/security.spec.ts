import { expect, test } from "@playwright/test";
import { E2E_ADMIN } from "./fixtures";

// The production build's headers, as a browser gets them: the dashboard runs
// under a nonce-based Content-Security-Policy without a single violation, no
// page can be framed, and the session cookie cannot be read by scripts.

test("dashboard pages carry a nonce CSP, refuse framing, and run with no CSP violation", async ({ page, context }) => {
  const violations: string[] = [];
  page.on("console", (msg) => {
    if (/Content Security Policy|Refused to (execute|load|apply)/i.test(msg.text())) violations.push(msg.text());
  });

  const login = await page.goto("/admin/login");
  const headers = login!.headers();
  expect(headers["content-security-policy"]).toMatch(/script-src 'self' 'nonce-[A-Za-z0-9+/=]{16,}' 'strict-dynamic'/);
  expect(headers["content-security-policy"]).toContain("frame-ancestors 'none'");
  expect(headers["content-security-policy"]).toContain("object-src 'none'");
  expect(headers["x-frame-options"]).toBe("DENY");
  expect(headers["x-content-type-options"]).toBe("nosniff");
  expect(headers["referrer-policy"]).toBe("no-referrer");
  // Plain HTTP: no HSTS (it is sent behind HTTPS only).
  expect(headers["strict-transport-security"]).toBeUndefined();
  // A nonce per response.
  const again = await page.request.get("/admin/login");
  expect(again.headers()["content-security-policy"]).not.toBe(headers["content-security-policy"]);

  // The page's scripts run (they carry the nonce): the form signs in.
  await page.getByLabel("Email").fill(E2E_ADMIN.email);
  await page.getByLabel("Password").fill(E2E_ADMIN.password);
  await page.getByRole("button", { name: "Sign in" }).click();
  await expect(page).toHaveURL(/\/admin$/);
  await expect(page.getByRole("heading", { level: 1, name: "Overview" })).toBeVisible();
  for (const name of ["Circuits", "Limits & switches", "Audit"]) {
    await page.getByRole("navigation", { name: "Main" }).getByRole("link", { name }).click();
    await expect(page.getByRole("heading", { level: 1 })).toBeVisible();
  }

  const session = (await context.cookies()).find((c) => c.name === "fp_session");
  expect(session).toMatchObject({ httpOnly: true, sameSite: "Lax", secure: false, path: "/" });
  expect(violations).toEqual([]);
});

test("API responses forbid framing and sniffing; a framed page is refused", async ({ page, request, baseURL }) => {
  const res = await request.get("/api/health");
  expect(res.headers()["x-frame-options"]).toBe("DENY");
  expect(res.headers()["content-security-policy"]).toContain("default-src 'none'");

  // A page that tries to frame the dashboard gets nothing rendered in the frame.
  let blocked = false;
  page.on("console", (msg) => {
    if (/frame-ancestors|Refused to display/i.test(msg.text())) blocked = true;
  });
  await page.setContent(`<iframe id="f" src="${new URL("/admin/login", baseURL).toString()}"></iframe>`);
  await expect.poll(() => blocked, { timeout: 10_000 }).toBe(true);
});
