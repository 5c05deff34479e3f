/**
 * previewd's Swagger UI in a real browser (Debian's Chromium, headless, driven by
 * playwright-core): authorize with a bearer token, expand `listGenerations`, "Try it out",
 * "Execute", and see the 200 the server answered.
 *
 * Needs `PREVIEWD_URL` and `PREVIEWD_TOKEN`; `CHROMIUM_PATH` overrides `/usr/bin/chromium`.
 * Run by `tests/client/main.rs` in `cargo test`, or by hand: `npm run test:browser`.
 */
import assert from "node:assert/strict";
import { after, before, test } from "node:test";

import { type Browser, chromium } from "playwright-core";

const TIMEOUT_MS = 30_000;

/** The flags Chromium needs as root on a machine without outside network. */
const CHROMIUM_ARGS = [
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
];

function env(name: string): string {
  const value = process.env[name];
  assert.ok(value, `${name} must be set`);
  return value;
}

const base = env("PREVIEWD_URL").replace(/\/+$/, "");
const token = env("PREVIEWD_TOKEN");
let browser: Browser | undefined;

before(async () => {
  // Playwright gives every launch a fresh temporary profile (its own --user-data-dir).
  browser = await chromium.launch({
    executablePath: process.env.CHROMIUM_PATH ?? "/usr/bin/chromium",
    headless: true,
    args: CHROMIUM_ARGS,
    timeout: TIMEOUT_MS,
  });
});

after(async () => {
  await browser?.close();
});

test("Swagger UI authorizes and executes listGenerations", { timeout: 120_000 }, async () => {
  assert.ok(browser);
  const page = await browser.newPage();
  page.setDefaultTimeout(TIMEOUT_MS);
  const failures: string[] = [];
  page.on("pageerror", (err) => failures.push(`page error: ${err.message}`));
  page.on("requestfailed", (request) => {
    // Only the page's own origin matters: nothing else is reachable, nor should be needed.
    if (request.url().startsWith(base)) {
      failures.push(`request failed: ${request.url()} ${request.failure()?.errorText}`);
    }
  });

  await page.goto(`${base}/docs`);

  // Authorize with the bearer token: the `UserAuth` scheme's form of the dialog (the other
  // scheme, the preview session, is left empty).
  await page.locator(".auth-wrapper button.authorize").click();
  const dialog = page.locator(".dialog-ux .modal-ux");
  const userAuth = dialog.locator(".auth-container").filter({ hasText: "UserAuth" });
  await userAuth.locator("input").fill(token);
  await userAuth.locator("button.authorize").click();
  await userAuth.getByText("Authorized", { exact: true }).waitFor();
  await dialog.locator("button.btn-done").first().click();
  await dialog.waitFor({ state: "detached" });

  // Expand listGenerations, try it out, execute.
  const operation = page.locator('[id$="-listGenerations"]');
  await operation.locator(".opblock-summary").first().click();
  await operation.locator("button.try-out__btn").click();
  const executed = page.waitForResponse(
    (response) =>
      new URL(response.url()).pathname === "/api/v1/generations" &&
      response.request().method() === "GET",
  );
  await operation.locator("button.execute").click();
  const response = await executed;
  assert.equal(response.request().headers()["authorization"], `Bearer ${token}`);
  assert.equal(response.status(), 200, await response.text());

  // The page shows the server's answer: code 200 in the live response table.
  const code = operation.locator(".live-responses-table .response .response-col_status").first();
  await code.waitFor();
  assert.equal((await code.innerText()).trim(), "200");
  assert.deepEqual(failures, []);
  await page.close();
});
