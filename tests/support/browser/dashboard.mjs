// Drives `vitrine-ingest serve` (the dashboard) in Debian's chromium, headless: the login is
// required (an unauthenticated visit lands on it; a wrong password is refused), then every
// panel loads and its figures are read off the page. Prints one JSON object. Used by
// tests/central.rs; with SCREENSHOT set, also saves the README's picture there.
// Usage: node dashboard.mjs '{"url": "http://127.0.0.1:port", "password": "...", "store": "..."}'
import { chromium } from "playwright-core";

const plan = JSON.parse(process.argv[2]);
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  headless: true,
  args: ["--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
    "--disable-component-update", "--disable-sync"],
});
const result = {};
try {
  const page = await browser.newPage({ viewport: { width: 1400, height: 1000 } });
  page.setDefaultTimeout(30000);
  const errors = [];
  page.on("pageerror", (e) => errors.push(String(e)));
  page.on("console", (m) => { if (m.type() === "error") errors.push(m.text()); });
  await page.goto(plan.url + "/");
  result.unauthenticated_lands_on = new URL(page.url()).pathname;
  const api = await page.evaluate(async () => (await fetch("/api/footfall?store=x")).status);
  result.api_without_login = api;
  await page.fill("#password", "not the password");
  const [wrong] = await Promise.all([page.waitForNavigation(), page.click("button[type=submit]")]);
  result.wrong_password = wrong.status();
  await page.fill("#password", plan.password);
  await Promise.all([page.waitForNavigation(), page.click("button[type=submit]")]);
  errors.length = 0;  // the refusals above are meant; from here on nothing may fail
  await page.goto(plan.url + "/?store=" + encodeURIComponent(plan.store));
  await page.waitForFunction(() => document.body.dataset.loaded, null, { timeout: 30000 });
  result.loaded_ms = Number(await page.evaluate(() => document.body.dataset.loaded));
  result.panels = await page.evaluate(() => {
    const out = {};
    for (const s of document.querySelectorAll("main section")) {
      out[s.id] = { ...s.dataset, charts: s.querySelectorAll("canvas").length, text: s.innerText.slice(0, 300) };
    }
    return out;
  });
  result.errors = errors;
  if (process.env.SCREENSHOT) {
    await page.screenshot({ path: process.env.SCREENSHOT, fullPage: true });
  }
} catch (e) {
  result.error = String(e && e.stack || e);
  process.exitCode = 1;
} finally {
  await browser.close();
}
process.stdout.write(JSON.stringify(result) + "\n");
