import { expect, test, type Page } from "@playwright/test";
import { E2E_ADMIN } from "./fixtures";
import { expectNoAxeViolations, screenshots, signIn, watchErrors } from "./helpers";
import { NAV_ITEMS } from "../src/components/admin/nav-items";

// The dashboard in both themes: every page renders with no console error and no
// serious axe finding (contrast included), and dark chosen once from the theme
// menu stays across pages and reloads (a cookie the server renders from).

/** Every page of the menu: it renders, has finished loading, passes axe, and is photographed at 1280 and 390 px. */
async function tour(page: Page, theme: string): Promise<void> {
  for (const item of NAV_ITEMS) {
    if (!item.href) continue;
    await page.goto(item.href);
    await expect(page.getByRole("heading", { level: 1, name: item.label })).toBeVisible();
    await expect(page.getByText("Loading…")).toHaveCount(0);
    await expectNoAxeViolations(page);
    await screenshots(page, `${theme}-${item.href === "/admin" ? "overview" : item.href.split("/").at(-1)}`);
  }
}

test("light and dark: every page renders and passes axe; dark chosen from the menu is kept across reloads", async ({ page }) => {
  test.setTimeout(180_000);
  const errors = watchErrors(page);
  await signIn(page, E2E_ADMIN);
  await page.goto("/admin");
  const html = page.locator("html");
  await expect(html).not.toHaveAttribute("data-theme");
  await tour(page, "light"); // the system's theme, light in this browser
  await page.goto("/admin");

  await page.getByTestId("theme-menu").click();
  await page.getByRole("menuitemradio", { name: "Dark" }).click();
  await expect(html).toHaveAttribute("data-theme", "dark");
  await expect(page.getByRole("button", { name: "Theme: Dark" })).toBeVisible();
  const background = await page.evaluate(() => getComputedStyle(document.body).backgroundColor);
  expect(background).toBe("rgb(12, 12, 14)");

  await page.reload();
  await expect(html).toHaveAttribute("data-theme", "dark");

  await tour(page, "dark");

  // Back to the system's choice: the attribute goes, the cookie says so.
  await page.getByTestId("theme-menu").click();
  await page.getByRole("menuitemradio", { name: "System" }).click();
  await expect(html).not.toHaveAttribute("data-theme");
  await page.reload();
  await expect(html).not.toHaveAttribute("data-theme");
  expect(errors).toEqual([]);
});
