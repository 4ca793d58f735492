import { randomBytes } from "node:crypto";
import { expect, test, type Page, type TestInfo } from "@playwright/test";
import { createDashboardUser, createServiceKey, E2E_ADMIN, e2eRun } from "./fixtures";
import { expectNoAxeViolations, signIn, sql } from "./helpers";

/** A dashboard user of another role, made the way an operator would (the CLI). */
function createUser(email: string, password: string, role: "viewer" | "operator"): void {
  createDashboardUser(e2eRun(), { email, password, role });
}

/** Full page from the top (a scrolled page would draw the sticky header mid-way), or the viewport with a dialog open. */
async function attachScreenshot(page: Page, testInfo: TestInfo, name: string, fullPage = true): Promise<void> {
  if (fullPage) await page.evaluate(() => window.scrollTo(0, 0));
  await testInfo.attach(name, { body: await page.screenshot({ fullPage }), contentType: "image/png" });
}

test("an admin forces and resets a breaker, changes the rate limit and a switch, and the audit log shows each with its reason", async ({
  page,
}, testInfo) => {
  test.setTimeout(150_000); // two axe passes and a dozen round trips on two busy cores
  const marker = `e2e-adm-${randomBytes(3).toString("hex")}`;
  const why = {
    force: `${marker} force: ledger database failover drill`,
    probe: `${marker} probe: half-open trial for the purchase path`,
    probeEnd: `${marker} probe over`,
    reset: `${marker} reset: failover finished`,
    thresholds: `${marker} thresholds: tolerate a few more failures`,
    rate: `${marker} rate: flash sale at 20:00`,
    off: `${marker} switch off: shed history reads during the sale`,
    on: `${marker} switch on: sale is over`,
  };
  // Hydration mismatches and uncaught errors; the 400s the invalid inputs below
  // provoke are logged by the browser as failed loads, which are expected.
  const pageErrors: string[] = [];
  page.on("pageerror", (error) => pageErrors.push(error.message));
  page.on("console", (msg) => {
    if (msg.type() === "error" && !msg.text().startsWith("Failed to load resource")) pageErrors.push(msg.text());
  });
  await signIn(page, E2E_ADMIN);
  await page.goto("/admin");
  const nav = page.getByRole("navigation", { name: "Main" });
  await expect(nav.getByRole("link", { name: "Refunds" })).toBeVisible();

  // --- Circuits -------------------------------------------------------------
  await nav.getByRole("link", { name: "Circuits" }).click();
  await expect(page.getByRole("heading", { level: 1, name: "Circuits" })).toBeVisible();
  await expect(nav.getByRole("link", { name: "Circuits" })).toHaveAttribute("aria-current", "page");
  const deduct = page.getByRole("region", { name: "credit.deduct" });
  const purchase = page.getByRole("region", { name: "flashSale.purchase" });
  await expect(deduct.getByTestId("circuit-state")).toHaveText("CLOSED");
  await expect(deduct.getByTestId("circuit-mode")).toHaveText("Automatic");
  await expect(deduct.getByTestId("circuit-errors")).toHaveText("0 of 10 to open");
  await expect(page.getByTestId("circuit-thresholds")).toContainText("10 failures");
  await expect(page.getByRole("button", { name: "Edit thresholds…" })).toBeVisible();

  await deduct.getByRole("button", { name: "Force…" }).click();
  const force = page.getByRole("dialog", { name: "Force credit.deduct" });
  await expect(force).toBeVisible();
  await force.getByRole("combobox", { name: "State" }).click();
  await page.getByRole("option", { name: "HALF_OPEN" }).click();
  await expect(force.getByRole("combobox", { name: "State" })).toHaveText("HALF_OPEN");
  await force.getByRole("combobox", { name: "State" }).click();
  await page.getByRole("option", { name: "OPEN", exact: true }).click();
  await expect(force.getByRole("combobox", { name: "State" })).toHaveText("OPEN");
  await expect(force).toContainText("Refuse every call with 503 CIRCUIT_OPEN.");
  // No reason: refused before any round trip, the error next to the field, focus on it.
  await force.getByRole("button", { name: "Force OPEN" }).click();
  await expect(force.getByTestId("force-credit-deduct-reason-error")).toHaveText("Say why, in at least 3 characters.");
  await expect(force.getByLabel("Reason")).toBeFocused();
  await expect(force.getByLabel("Reason")).toHaveAttribute("aria-invalid", "true");
  await force.getByLabel("Reason").fill(why.force);
  // Editing the field withdraws its error.
  await expect(force.getByTestId("force-credit-deduct-reason-error")).toHaveCount(0);
  await expect(force.getByLabel("Reason")).not.toHaveAttribute("aria-invalid");
  await expectNoAxeViolations(page);
  await attachScreenshot(page, testInfo, "force-dialog", false);
  await force.getByRole("button", { name: "Force OPEN" }).click();
  await expect(force).toBeHidden();
  // Radix gives focus back to the button that opened the dialog.
  await expect(deduct.getByRole("button", { name: "Force…" })).toBeFocused();
  await expect(deduct.getByTestId("circuit-state")).toHaveText("OPEN");
  await expect(deduct.getByTestId("circuit-mode")).toHaveText("Forced");
  await expect(deduct.getByTestId("circuit-forced")).toContainText(`Forced OPEN by ${E2E_ADMIN.email}`);
  await expect(deduct.getByTestId("circuit-forced")).toContainText("until someone resets it");
  await expect(deduct.getByTestId("circuit-forced")).toContainText(why.force);
  await expect(page.getByTestId("circuits-notice")).toContainText("credit.deduct is forced OPEN");
  await expect(page.locator("[data-sonner-toast]").filter({ hasText: "credit.deduct is forced OPEN" })).toBeVisible();
  // A service deducting through the API is now refused, typed and retryable.
  const refused = await page.request.post("/api/trpc/credit.deduct", {
    data: { userId: `${marker}-user`, creditTypeId: "points", amount: 1, businessCode: "e2e.order", businessId: marker },
    headers: { authorization: `Bearer ${createServiceKey(e2eRun(), `${marker}-service`)}` },
  });
  expect(refused.status()).toBe(503);
  expect(((await refused.json()) as { error: { data: { appCode: string } } }).error.data.appCode).toBe("CIRCUIT_OPEN");
  await expect(purchase.getByTestId("circuit-state")).toHaveText("CLOSED");

  // A change made elsewhere (here: straight through the API) shows up without a
  // reload: the list is re-read every few seconds.
  const viaApi = await page.request.post("/api/trpc/circuit.force", {
    data: { name: "flashSale.purchase", state: "HALF_OPEN", reason: why.probe },
  });
  expect(viaApi.status()).toBe(200);
  await expect(purchase.getByTestId("circuit-state")).toHaveText("HALF_OPEN", { timeout: 8_000 });
  await expect(purchase.getByTestId("circuit-forced")).toContainText(`Forced HALF_OPEN by ${E2E_ADMIN.email}`);
  await expectNoAxeViolations(page);
  await attachScreenshot(page, testInfo, "circuits-forced");

  await deduct.getByRole("button", { name: "Reset…" }).click();
  const reset = page.getByRole("dialog", { name: "Reset credit.deduct" });
  await expect(reset.getByLabel("Reason")).toBeFocused();
  await reset.getByLabel("Reason").fill(why.reset);
  await reset.getByRole("button", { name: "Reset breaker" }).click();
  await expect(reset).toBeHidden();
  await expect(deduct.getByTestId("circuit-state")).toHaveText("CLOSED");
  await expect(deduct.getByTestId("circuit-mode")).toHaveText("Automatic");
  await expect(deduct.getByTestId("circuit-forced")).toHaveCount(0);
  await expect(page.getByTestId("circuits-notice")).toContainText("credit.deduct is reset");
  const endProbe = await page.request.post("/api/trpc/circuit.reset", { data: { name: "flashSale.purchase", reason: why.probeEnd } });
  expect(endProbe.status()).toBe(200);
  await expect(purchase.getByTestId("circuit-state")).toHaveText("CLOSED", { timeout: 8_000 });

  // Thresholds (admin): shown in seconds, sent in ms; only the changed ones are sent.
  await page.getByRole("button", { name: "Edit thresholds…" }).click();
  const thresholds = page.getByRole("dialog", { name: "Edit breaker thresholds" });
  await expect(thresholds.getByLabel("Error window (s)")).toHaveValue("60");
  await thresholds.getByLabel("Error threshold (failures)").fill("12");
  await thresholds.getByLabel("Error window (s)").fill("0.5");
  await thresholds.getByLabel("Reason").fill(why.thresholds);
  await thresholds.getByRole("button", { name: "Save thresholds" }).click();
  // The server's bound (1000 ms) comes back in the field's unit.
  await expect(thresholds.getByTestId("thresholds-windowMs-error")).toHaveText("Must be at least 1.");
  await expect(thresholds.getByLabel("Error window (s)")).toBeFocused();
  await thresholds.getByLabel("Error window (s)").fill("60");
  await thresholds.getByRole("button", { name: "Save thresholds" }).click();
  await expect(thresholds).toBeHidden();
  await expect(page.getByTestId("circuit-thresholds")).toContainText("12 failures");
  await expect(deduct.getByTestId("circuit-errors")).toHaveText("0 of 12 to open");
  await expect(page.getByTestId("circuits-notice")).toContainText("Thresholds saved");

  // --- Rate limit -----------------------------------------------------------
  await nav.getByRole("link", { name: "Limits & switches" }).click();
  await expect(page.getByRole("heading", { level: 1, name: "Limits & switches" })).toBeVisible();
  const rate = page.getByRole("region", { name: "Per-user rate limit" });
  await expect(rate.getByTestId("rate-source")).toContainText("no admin has changed it");
  const defaults = { perSecond: await rate.getByTestId("rate-per-second").innerText(), burst: await rate.getByTestId("rate-burst").innerText() };

  // Out of range: the server's VALIDATION answer lands next to the field, nothing changes.
  await rate.getByLabel("Tokens per second").fill("7");
  await rate.getByLabel("Burst").fill("0");
  await rate.getByLabel("Reason").fill(why.rate);
  await rate.getByRole("button", { name: "Save limit" }).click();
  await expect(rate.getByTestId("rate-burst-error")).toHaveText("Must be at least 1.");
  await expect(rate.getByLabel("Burst")).toBeFocused();
  await expect(rate.getByLabel("Burst")).toHaveAttribute("aria-invalid", "true");
  await expect(rate.getByTestId("rate-per-second-error")).toHaveCount(0);
  await expect(rate.getByTestId("rate-burst")).toHaveText(defaults.burst);
  await attachScreenshot(page, testInfo, "rate-limit-invalid");

  await rate.getByLabel("Burst").fill("14");
  await rate.getByRole("button", { name: "Save limit" }).click();
  await expect(page.getByTestId("rate-notice")).toContainText("Saved: 7 tokens per second, burst 14.");
  await expect(rate.getByTestId("rate-burst-error")).toHaveCount(0);
  await expect(rate.getByTestId("rate-per-second")).toHaveText("7");
  await expect(rate.getByTestId("rate-burst")).toHaveText("14");
  await expect(rate.getByTestId("rate-source")).toContainText(`Set by ${E2E_ADMIN.email}`);
  await expect(rate.getByLabel("Reason")).toHaveValue("");
  // Stored, not only shown: a fresh page (read on the server) has it too.
  await page.reload();
  await expect(rate.getByTestId("rate-per-second")).toHaveText("7");
  await expect(rate.getByTestId("rate-burst")).toHaveText("14");

  // --- Switches -------------------------------------------------------------
  const switches = page.getByRole("region", { name: "Degradation switches" });
  const ledger = switches.getByRole("switch", { name: "ledgerReads" });
  const ledgerRow = switches.getByTestId("switch-row").filter({ has: page.getByRole("heading", { name: "ledgerReads" }) });
  await expect(ledger).toBeChecked();
  await expect(ledgerRow.getByTestId("switch-state")).toHaveText("On");

  // Escape cancels: nothing changes and focus is back on the switch.
  await ledger.click();
  const turnOff = page.getByRole("dialog", { name: "Turn ledgerReads off?" });
  await expect(turnOff).toContainText("credit.ledger history reads");
  await page.keyboard.press("Escape");
  await expect(turnOff).toBeHidden();
  await expect(ledger).toBeFocused();
  await expect(ledger).toBeChecked();

  // Keyboard only: Space on the switch, type the reason, Enter on the button.
  await page.keyboard.press("Space");
  await expect(turnOff).toBeVisible();
  await expect(turnOff.getByLabel("Reason")).toBeFocused();
  await page.keyboard.type(why.off);
  await turnOff.getByRole("button", { name: "Turn off" }).focus();
  await page.keyboard.press("Enter");
  await expect(turnOff).toBeHidden();
  await expect(ledger).not.toBeChecked();
  await expect(ledger).toBeFocused();
  await expect(ledgerRow.getByTestId("switch-state")).toHaveText("Off");
  await expect(ledgerRow).toContainText("default: on");
  await expect(page.getByTestId("switches-notice")).toContainText("ledgerReads is off.");
  await expectNoAxeViolations(page);
  await attachScreenshot(page, testInfo, "limits-and-switches");

  await ledger.click();
  const turnOn = page.getByRole("dialog", { name: "Turn ledgerReads on?" });
  await turnOn.getByLabel("Reason").fill(why.on);
  await turnOn.getByRole("button", { name: "Turn on" }).click();
  await expect(turnOn).toBeHidden();
  await expect(ledger).toBeChecked();
  await expect(ledgerRow.getByTestId("switch-state")).toHaveText("On");
  await expect(ledgerRow).not.toContainText("default:");

  // --- Audit ----------------------------------------------------------------
  await nav.getByRole("link", { name: "Audit" }).click();
  await expect(page.getByRole("heading", { level: 1, name: "Audit" })).toBeVisible();
  const ours = page.getByTestId("audit-row").filter({ hasText: marker });
  const expected = [
    { action: "switch.set", target: "switch:ledgerReads", reason: why.on },
    { action: "switch.set", target: "switch:ledgerReads", reason: why.off },
    { action: "rateLimit.set", target: "rateLimit", reason: why.rate },
    { action: "circuit.configure", target: "circuit", reason: why.thresholds },
    { action: "circuit.reset", target: "circuit:flashSale.purchase", reason: why.probeEnd },
    { action: "circuit.reset", target: "circuit:credit.deduct", reason: why.reset },
    { action: "circuit.force", target: "circuit:flashSale.purchase", reason: why.probe },
    { action: "circuit.force", target: "circuit:credit.deduct", reason: why.force },
  ];
  // Exactly these: the refused attempts (no reason, window 0.5 s, burst 0) left no entry.
  await expect(ours).toHaveCount(expected.length);
  for (const [i, entry] of expected.entries()) {
    const row = ours.nth(i);
    await expect(row).toContainText(entry.action);
    await expect(row).toContainText(entry.target);
    await expect(row).toContainText(entry.reason);
    await expect(row).toContainText(E2E_ADMIN.email);
  }
  await ours.nth(2).getByRole("button", { name: "Before / after" }).click();
  const change = page.getByTestId("audit-change").first();
  await expect(change).toContainText('"perSecond": 7');
  await expect(change).toContainText('"burst": 14');
  await attachScreenshot(page, testInfo, "audit-admission");
  expect(pageErrors).toEqual([]);
});

test("an operator may force breakers but not change limits; once demoted, the server refuses with FORBIDDEN", async ({
  page,
}, testInfo) => {
  test.setTimeout(90_000);
  const suffix = randomBytes(3).toString("hex");
  const operator = { email: `ops-${suffix}@e2e.test`, password: `operator-password-${suffix}` };
  createUser(operator.email, operator.password, "operator");
  await signIn(page, operator);

  await page.goto("/admin/circuits");
  const purchase = page.getByRole("region", { name: "flashSale.purchase" });
  await expect(purchase.getByRole("button", { name: "Force…" })).toBeVisible();
  await expect(purchase.getByRole("button", { name: "Reset…" })).toBeVisible();
  await expect(page.getByRole("button", { name: "Edit thresholds…" })).toHaveCount(0);
  await expect(page.getByRole("region", { name: "Thresholds" })).toContainText("Only an admin can change them.");

  await page.goto("/admin/limits");
  await expect(page.getByRole("button", { name: "Save limit" })).toHaveCount(0);
  await expect(page.getByText("Changing the limit needs the admin role; you are signed in as operator.")).toBeVisible();
  await expect(page.getByRole("switch")).toHaveCount(0);
  await expect(page.getByTestId("switch-state").first()).toBeVisible();

  // The role is lowered while the page is open: the button is still there, the
  // server says no, and the dialog says why.
  await page.goto("/admin/circuits");
  await purchase.getByRole("button", { name: "Force…" }).click();
  const force = page.getByRole("dialog", { name: "Force flashSale.purchase" });
  const reason = `e2e-forbidden-${suffix} should never be recorded`;
  await force.getByLabel("Reason").fill(reason);
  await sql("UPDATE admin_users SET role = 'viewer' WHERE email = $1", [operator.email]);
  await force.getByRole("button", { name: /^Force / }).click();
  await expect(force.getByRole("alert")).toHaveText(
    "Your role does not allow this: forcing or resetting a breaker needs the operator role.",
  );
  await expect(force).toBeVisible();
  await attachScreenshot(page, testInfo, "force-forbidden", false);
  await page.keyboard.press("Escape");
  await expect(force).toBeHidden();
  await expect(purchase.getByTestId("circuit-state")).toHaveText("CLOSED");
  const recorded = await sql<{ n: string }>("SELECT count(*) AS n FROM audit_log WHERE reason = $1", [reason]);
  expect(recorded[0]?.n).toBe("0");

  // A fresh page reads the new role: watch only.
  await page.reload();
  await expect(page.getByRole("banner").getByText("viewer", { exact: true })).toBeVisible();
  await expect(page.getByTestId("circuit-card")).toHaveCount(2);
  await expect(page.getByRole("button", { name: "Force…" })).toHaveCount(0);
  await expect(page.getByRole("button", { name: "Reset…" })).toHaveCount(0);
  await expect(page.getByText("Forcing or resetting one needs the operator role; you are signed in as viewer.")).toBeVisible();
  await attachScreenshot(page, testInfo, "circuits-viewer");
});
