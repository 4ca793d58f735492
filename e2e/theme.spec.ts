import { expect, test } from "@playwright/test";
import { E2E_ADMIN } from "./fixtures";
import { expectNoAxeViolations, screenshots, signIn, watchErrors } from "./helpers";
import { NAV_ITEMS } from "../src/components/admin/nav-items";

/**
 * The theme menu: dark chosen once stays dark across pages and reloads (a
 * cookie the server renders from), and every page of the dashboard reads well
 * in it — no console error, no serious axe finding (contrast included).
 */
test("dark theme: chosen from the menu, kept across reloads, and every page passes axe in it", async ({ page }) => {
  test.setTimeout(180_000);
  const errors = watchErrors(page);
  await signIn(page, E2E_ADMIN);
  await page.goto("/admin");
  const html = page.locator("html");
  await expect(html).not.toHaveAttribute("data-theme");

  await page.getByTestId("theme-menu").click();
  await page.getByRole("menuitemradio", { name: "Dark" }).click();
  await expect(html).toHaveAttribute("data-theme", "dark");
  await expect(page.getByRole("button", { name: "Theme: Dark" })).toBeVisible();
  const background = await page.evaluate(() => getComputedStyle(document.body).backgroundColor);
  expect(background).toBe("rgb(12, 12, 14)");

  await page.reload();
  await expect(html).toHaveAttribute("data-theme", "dark");

  for (const item of NAV_ITEMS) {
    if (!item.href) continue;
    await page.goto(item.href);
    await expect(page.getByRole("heading", { level: 1, name: item.label === "API keys" ? /API keys/ : item.label })).toBeVisible();
    await expect(page.getByText("Loading…")).toHaveCount(0);
    await expectNoAxeViolations(page);
    await screenshots(page, `dark-${item.href.split("/").at(-1)}`);
  }

  // Back to the system's choice: the attribute goes, the cookie says so.
  await page.getByTestId("theme-menu").click();
  await page.getByRole("menuitemradio", { name: "System" }).click();
  await expect(html).not.toHaveAttribute("data-theme");
  await page.reload();
  await expect(html).not.toHaveAttribute("data-theme");
  expect(errors).toEqual([]);
});
