// The web console in a real browser: Debian's Chromium, headless, driven by playwright-core
// (which downloads no browser), against one `callsign serve --tls` started by the conformance
// harness, with the official Python SDK (sdk.py, in the conformance venv) on the other side.
//
//   CALLSIGN_BIN=target/debug/callsign node --test console.test.js
//
// CALLSIGN_CONSOLE_SCREENSHOTS=DIR keeps a screenshot of each page there (docs/console/ holds
// the ones the README shows); otherwise they go to a temporary directory. The page weights
// (bytes of each page's HTML, and of the stylesheet and script) are printed at the end.
import { test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdtempSync, mkdirSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";
import { startServer } from "../js/lib/harness.js";

const here = path.dirname(fileURLToPath(import.meta.url));
const CHROMIUM = process.env.CALLSIGN_CHROMIUM || "/usr/bin/chromium";
const PYTHON = process.env.CALLSIGN_CONSOLE_PYTHON || path.join(here, "../python/.venv/bin/python");
const SHOTS = process.env.CALLSIGN_CONSOLE_SCREENSHOTS || mkdtempSync(path.join(tmpdir(), "callsign-console-"));
mkdirSync(SHOTS, { recursive: true });

/** The Python SDK's side: one command of sdk.py, its JSON answer. */
function sdk(server, ...args) {
  const out = execFileSync(PYTHON, [path.join(here, "sdk.py"), ...args], {
    env: {
      ...process.env,
      CALLSIGN_CONNECTION_STRING: server.connectionString,
      REQUESTS_CA_BUNDLE: server.caPath,
    },
    encoding: "utf8",
  });
  return JSON.parse(out);
}

test("the console in headless Chromium, with the Python SDK", async (t) => {
  const server = await startServer({ tls: true });
  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: [
      "--headless",
      "--no-sandbox",
      "--disable-gpu",
      "--disable-quic",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
    ],
  });
  const origin = new URL(server.endpoint).origin;
  const base = `${origin}/console`;
  // The development CA is the server's own: trusted by the SDK (REQUESTS_CA_BUNDLE), not by
  // this browser profile.
  const context = await browser.newContext({
    ignoreHTTPSErrors: true,
    viewport: { width: 1280, height: 860 },
  });
  await context.grantPermissions(["clipboard-read", "clipboard-write"], { origin });
  const page = await context.newPage();
  page.setDefaultTimeout(10_000);
  // Anything the Content-Security-Policy blocked, or a script error, fails the test.
  const problems = [];
  page.on("console", (msg) => {
    if (msg.type() === "error") problems.push(msg.text());
  });
  page.on("pageerror", (err) => problems.push(String(err)));
  const shot = (name) => page.screenshot({ path: path.join(SHOTS, `${name}.png`), fullPage: true });
  const weights = {};
  const weigh = async (name, url) => {
    const response = await page.request.get(url);
    assert.equal(response.status(), 200, url);
    weights[name] = (await response.body()).length;
  };

  try {
    const sdkUser = sdk(server, "create-user-and-token");
    let created;

    await t.test("a wrong key shows an error and no data", async () => {
      await page.goto(`${base}/identities`);
      assert.equal(new URL(page.url()).pathname, "/console/sign-in");
      await weigh("sign-in", `${base}/sign-in`);
      await page.getByLabel("Access key").fill("not-the-key");
      await page.getByRole("button", { name: "Sign in" }).click();
      await page.getByText("That is not an access key of this resource").waitFor();
      const html = await page.content();
      assert.ok(!html.includes(sdkUser.id), "no identity shown");
      assert.equal(await page.locator("nav").count(), 0, "no navigation");
      await shot("sign-in-error");
      // The refusal itself is a 401 page, which the browser reports; nothing else may fail.
      assert.ok(problems.every((p) => p.includes("status of 401")), problems.join("\n"));
      problems.length = 0;
    });

    await t.test("sign in with the access key", async () => {
      await page.getByLabel("Access key").fill(server.accessKey);
      assert.equal(await page.getByLabel("Access key").getAttribute("type"), "password");
      await shot("sign-in");
      await page.getByRole("button", { name: "Sign in" }).click();
      await page.getByRole("heading", { name: "Identities" }).waitFor();
      assert.equal(new URL(page.url()).pathname, "/console/identities");
    });

    await t.test("a user created with the Python SDK appears in the list", async () => {
      await page.getByRole("link", { name: sdkUser.id }).waitFor();
      await shot("identities");
      await weigh("identities", `${base}/identities`);
    });

    await t.test("a user created in the form with a token; the SDK takes the token", async () => {
      await page.getByRole("link", { name: "New identity" }).click();
      await page.getByLabel("customId (optional)").fill("browser-user");
      await page.getByLabel("Also issue a token").check();
      await page.getByLabel("voip", { exact: true }).check();
      await page.getByLabel(/Expires in/).fill("60");
      await shot("new-identity");
      await weigh("new identity", `${base}/identities/new`);
      await page.getByRole("button", { name: "Create" }).click();
      await page.getByRole("heading", { name: "Identity created" }).waitFor();
      const id = await page.locator("#identity-id").inputValue();
      const token = await page.locator("#token-value").inputValue();
      assert.match(id, /^8:acs:/);
      assert.equal(token.split(".").length, 3);
      // The copy button puts the token on the clipboard (the console's script).
      await page.getByRole("button", { name: "Copy token" }).click();
      assert.equal(await page.evaluate(() => navigator.clipboard.readText()), token);
      await shot("identity-created");
      const checked = sdk(server, "check-token", token);
      assert.equal(checked.active, true, JSON.stringify(checked));
      assert.equal(checked.sub, id);
      const lifetime = checked.sdkExpiresOn - Math.floor(Date.now() / 1000);
      assert.ok(lifetime > 55 * 60 && lifetime <= 60 * 60, `expires in ${lifetime} s`);
      created = { id, token };
    });

    await t.test("revoke from the page: the SDK's token goes inactive", async () => {
      assert.equal(sdk(server, "check-token", sdkUser.token).active, true);
      await page.getByRole("link", { name: "Identities" }).click();
      await page.getByRole("link", { name: sdkUser.id }).click();
      await page.getByRole("heading", { name: "Identity", exact: true }).waitFor();
      await shot("identity");
      await weigh("identity", page.url());
      await page.getByRole("button", { name: "Revoke all tokens" }).click();
      await page.getByText("Every token issued so far for this identity is revoked.").waitFor();
      const checked = sdk(server, "check-token", sdkUser.token);
      assert.deepEqual([checked.active, checked.reason], [false, "revoked"]);
    });

    await t.test("the token inspector gives the verdict and its reason", async () => {
      await page.getByRole("link", { name: "Token inspector" }).click();
      await weigh("token inspector", `${base}/inspect`);
      await page.getByLabel("Access token").fill(created.token);
      await page.getByRole("button", { name: "Inspect" }).click();
      await page.getByText("Active", { exact: true }).waitFor();
      await page.getByLabel("Access token").fill(sdkUser.token);
      await page.getByRole("button", { name: "Inspect" }).click();
      await page.getByText("Inactive: revoked").waitFor();
      assert.ok((await page.content()).includes("skypeid"), "claims decoded");
      await shot("inspect");
    });

    await t.test("delete after a confirmation", async () => {
      await page.goto(`${base}/identity?id=${encodeURIComponent(created.id)}`);
      await page.getByRole("link", { name: "Delete identity…" }).click();
      await page.getByRole("heading", { name: "Delete this identity?" }).waitFor();
      await shot("delete");
      await page.getByRole("button", { name: "Delete identity" }).click();
      await page.getByText("The identity was deleted").waitFor();
      assert.equal(await page.getByRole("link", { name: created.id }).count(), 0);
      const checked = sdk(server, "check-token", created.token);
      assert.deepEqual([checked.active, checked.reason], [false, "identityNotFound"]);
    });

    await t.test("keys are masked until revealed; activity and settings", async () => {
      await page.getByRole("link", { name: "Keys" }).click();
      const primary = page.locator("#key-primary");
      assert.equal(await primary.getAttribute("type"), "password");
      await shot("keys");
      await weigh("keys", `${base}/keys`);
      await page.locator('button[data-reveal="key-primary"]').click();
      assert.equal(await primary.getAttribute("type"), "text");
      assert.equal(await primary.inputValue(), server.accessKey);

      await page.getByRole("link", { name: "Activity" }).click();
      await page.getByText("identity.deleted").first().waitFor();
      assert.ok((await page.content()).includes("console (primary key)"));
      // Times are shown in the browser's zone, with the zone named.
      const shown = await page.locator("td time").first().textContent();
      assert.match(shown, /[A-Z]{2,}|GMT|UTC/);
      await shot("activity");
      await weigh("activity", `${base}/activity`);

      await page.getByRole("link", { name: "Settings" }).click();
      await page.getByText("No trusted issuers").waitFor();
      await shot("settings");
      await weigh("settings", `${base}/settings`);
      await weigh("console.css", `${base}/assets/console.css`);
      await weigh("console.js", `${base}/assets/console.js`);
    });

    await t.test("a phone's width, and the keyboard", async () => {
      await page.setViewportSize({ width: 390, height: 844 });
      await page.goto(`${base}/identities`);
      const overflow = await page.evaluate(() => document.documentElement.scrollWidth);
      assert.ok(overflow <= 390, `the page is ${overflow} px wide`);
      await shot("identities-phone");
      // The first Tab reaches the skip link, shown with a visible focus; the next, the header.
      const focused = async () =>
        page.evaluate(() => {
          const el = document.activeElement;
          const box = el.getBoundingClientRect();
          return { text: el.textContent, outline: getComputedStyle(el).outlineStyle, left: box.left };
        });
      await page.keyboard.press("Tab");
      let now = await focused();
      assert.equal(now.text, "Skip to content");
      assert.notEqual(now.outline, "none", "focus is visible");
      assert.ok(now.left >= 0, "shown while focused");
      await page.keyboard.press("Tab");
      now = await focused();
      assert.equal(now.text, "callsign");
      assert.notEqual(now.outline, "none", "focus is visible");
      await page.setViewportSize({ width: 1280, height: 860 });
    });

    await t.test("sign out", async () => {
      await page.getByRole("button", { name: "Sign out" }).click();
      await page.getByText("You are signed out.").waitFor();
      await page.goto(`${base}/identities`);
      assert.equal(new URL(page.url()).pathname, "/console/sign-in");
    });

    await t.test("nothing was blocked by the Content-Security-Policy, no script failed", () => {
      assert.deepEqual(problems, []);
    });
  } finally {
    await browser.close();
    await server.stop();
    console.log(`screenshots: ${SHOTS}`);
    console.log(`page weight (bytes): ${JSON.stringify(weights)}`);
  }
});
