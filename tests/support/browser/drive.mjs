// Drives the setup page in Debian's chromium (headless) through a plan of steps given as JSON
// (argv[2]); prints one JSON line per step result. Used by tests/setup.rs; also makes the
// README's screenshots. Usage: node drive.mjs '{"url": "...", "steps": [...]}'
import { chromium } from "playwright-core";

const plan = JSON.parse(process.argv[2]);
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  headless: true,
  args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync"],
  // playwright gives every launch a fresh, temporary profile of its own.
});
const out = (o) => process.stdout.write(JSON.stringify(o) + "\n");
let t0 = Date.now();   // "run" times count from when the camera's new run was seen
let runBeforeSave = null;  // the camera's run when the last save was clicked
try {
  const page = await browser.newPage({ viewport: { width: 1280, height: 860 } });
  page.setDefaultTimeout(30000);
  for (const s of plan.steps) {
    out({ step: s.do, ...(await step(page, s)) });
  }
} catch (e) {
  out({ step: "error", error: String(e && e.stack || e) });
  process.exitCode = 1;
} finally {
  await browser.close();
}

async function live(page) {
  return page.evaluate(async () => (await (await fetch("/api/live/" + document.getElementById("camera").value)).json()).view);
}

async function step(page, s) {
  switch (s.do) {
    case "open": {
      const r = await page.goto(s.url || plan.url);
      return { status: r.status(), text: (await page.textContent("body")).slice(0, 400) };
    }
    case "type_token": {
      // The refused page's field: the token read off the box's status screen, typed by hand.
      await page.fill("#token", s.token);
      const [r] = await Promise.all([page.waitForNavigation(), page.click("form button")]);
      return { status: r.status(), page: await page.evaluate(() => !!document.getElementById("camera")) };
    }
    case "add_display": {
      // A display drawn on the page's geometry (as a crafted save or a future button would).
      await page.evaluate((id) => {
        geom.displays.push({ id, polygon: [[0.48, 0.34], [0.64, 0.34], [0.64, 0.52], [0.48, 0.52]] });
        render();
      }, s.id);
      return {};
    }
    case "clear_displays": {
      await page.evaluate(() => { geom.displays = []; render(); });
      return {};
    }
    case "texts": {
      // What the overlay's labels and the displays' card say.
      return page.evaluate(() => ({
        overlay: [...document.querySelectorAll("#overlay text")].map((t) => t.textContent),
        displays: document.getElementById("displays").textContent,
      }));
    }
    case "labels": {
      // Where the overlay's labels are on the screen: [left, top, right, bottom] each.
      return { boxes: await page.evaluate(() => [...document.querySelectorAll("#overlay text")].map((t) => {
        const b = t.getBoundingClientRect();
        return [b.left, b.top, b.right, b.bottom];
      })) };
    }
    case "viewport": {
      // A phone's screen: does the page fit it, and is the live view on it?
      await page.setViewportSize({ width: s.width, height: s.height });
      await page.waitForTimeout(300);
      return page.evaluate(() => {
        const still = document.getElementById("still").getBoundingClientRect();
        return { scroll_width: document.documentElement.scrollWidth, width: document.documentElement.clientWidth,
          still: [still.left, still.top, still.width, still.height] };
      });
    }
    case "wait_still": {
      await page.waitForFunction(() => document.getElementById("still").naturalWidth > 0);
      return { width: await page.evaluate(() => document.getElementById("still").naturalWidth) };
    }
    case "drag": {
      const sel = `circle.handle[data-kind="${s.kind}"][data-index="${s.index}"][data-point="${s.point}"]`;
      const h = await page.locator(sel).boundingBox();
      const svg = await page.locator("#overlay").boundingBox();
      await page.mouse.move(h.x + h.width / 2, h.y + h.height / 2);
      await page.mouse.down();
      const [x, y] = [svg.x + s.to[0] * svg.width, svg.y + s.to[1] * svg.height];
      await page.mouse.move(x, y, { steps: 8 });
      await page.mouse.up();
      return { coords: await page.textContent(`#lines .item[data-line="${s.index}"] .coords`) };
    }
    case "screenshot": {
      await page.screenshot({ path: s.file });
      return { file: s.file };
    }
    case "save": {
      runBeforeSave = (await live(page)).run;
      await page.click("#save");
      await page.waitForFunction(() => !/Saving/.test(document.getElementById("message").textContent));
      return { message: await page.textContent("#message"), errors: await page.$$eval(".err", (e) => e.map((x) => x.textContent).filter(Boolean)) };
    }
    case "wait_new_run": {
      // Compared with the run before the save: the reload may be done before this step starts.
      const before = runBeforeSave ?? (await live(page)).run;
      const started = Date.now();
      for (;;) {
        const v = await live(page);
        if (v && v.run !== before) { t0 = Date.now(); return { run: v.run, waited_ms: t0 - started }; }
        if (Date.now() - started > 30000) return { error: "no new run within 30 s" };
        await page.waitForTimeout(100);
      }
    }
    case "wait_count": {
      const started = Date.now();
      for (;;) {
        const v = await live(page);
        const l = v && v.lines.find(([id]) => id === s.line);
        if (l && l[1] + l[2] >= s.min) return { line: l, after_ms: Date.now() - t0 };
        if (Date.now() - started > (s.timeout_ms || 30000)) return { error: "count stayed below " + s.min, line: l };
        await page.waitForTimeout(200);
      }
    }
    case "audit_start": {
      await page.selectOption("#auditline", s.line);
      await page.click("#auditstart");
      await page.waitForFunction(() => !document.getElementById("tapin").disabled);
      return { at_ms: Date.now() - t0 };
    }
    case "taps": {
      // [[ms after the run started, "in"|"out"], ...]; taps already due are skipped.
      let done = 0, skipped = 0;
      for (const [at, dir] of s.schedule) {
        const wait = at - (Date.now() - t0);
        if (wait < 0) { skipped++; continue; }
        await page.waitForTimeout(wait);
        await page.click(dir === "in" ? "#tapin" : "#tapout");
        done++;
      }
      return { done, skipped };
    }
    case "wait_until": {
      const wait = s.ms - (Date.now() - t0);
      if (wait > 0) await page.waitForTimeout(wait);
      return { at_ms: Date.now() - t0 };
    }
    case "audit_stop": {
      await page.click("#auditstop");
      await page.waitForFunction(() => document.getElementById("tapin").disabled);
      return { result: await page.evaluate(async () => (await (await fetch("/api/audit")).json()).result), table: await page.textContent("#audit") };
    }
    case "audit_publish": {
      await page.click("#auditpublish");
      await page.waitForFunction(() => document.getElementById("auditmessage").textContent.length > 0);
      return { message: await page.textContent("#auditmessage") };
    }
    case "fetch": {
      // A raw request from the page (malformed saves and the like).
      return page.evaluate(async ({ path, body, headers }) => {
        const r = await fetch(path, { method: "POST", headers, body });
        return { status: r.status, body: await r.text() };
      }, s);
    }
    case "placement": {
      return { text: await page.textContent("#placement") };
    }
    default:
      return { error: "unknown step " + s.do };
  }
}
