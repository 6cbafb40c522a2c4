// The setup page: plain JavaScript, no build step. State: the configuration's geometry of
// the chosen camera (edited here, saved through /api/save), the live view (refreshed stills,
// feet, line counts) and the audit.
"use strict";
const $ = (id) => document.getElementById(id);
const SVG = "http://www.w3.org/2000/svg";
const HEADERS = { "Content-Type": "application/json", "X-Vitrine-Setup": "1" };
let config = null;       // /api/state
let camera = null;       // id
let geom = null;         // { lines, zones, displays } being edited
let size = [640, 360];   // the still's pixels (the overlay's coordinate space)
let feet = [];
let counts = {};         // line id -> [in, out]
let errors = {};         // "lines.0" -> message
let expressions = new Set(); // ids of the camera's displays that read expressions (opt-in)
let dragging = null;

async function api(path, body) {
  const opts = body === undefined ? {} : { method: "POST", headers: HEADERS, body: JSON.stringify(body) };
  const r = await fetch(path, opts);
  const j = await r.json().catch(() => ({ ok: false, error: r.status + " " + r.statusText }));
  j.status = r.status;
  return j;
}

const clone = (x) => JSON.parse(JSON.stringify(x));
const round = (v) => Math.round(v * 1000) / 1000;
const fmt = (p) => "[" + p[0].toFixed(3) + ", " + p[1].toFixed(3) + "]";

async function load() {
  config = await api("/api/state");
  if (!config.ok) { $("message").innerHTML = '<span class="bad">' + esc(config.error) + "</span>"; return; }
  $("device").textContent = config.device + " · store " + config.store;
  const sel = $("camera");
  sel.innerHTML = "";
  for (const c of config.cameras) {
    const o = document.createElement("option");
    o.value = c.id; o.textContent = c.id + (c.running ? "" : " (not running)");
    sel.appendChild(o);
  }
  if (!camera || !config.cameras.some((c) => c.id === camera)) camera = config.cameras.length ? config.cameras[0].id : null;
  sel.value = camera;
  pick();
}

function pick() {
  const c = config.cameras.find((c) => c.id === camera);
  geom = c ? clone({ lines: c.lines, zones: c.zones, displays: c.displays }) : { lines: [], zones: [], displays: [] };
  expressions = new Set(c ? c.expressions || [] : []);
  errors = {};
  render();
}

function esc(s) { return String(s).replace(/[&<>"]/g, (ch) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;" }[ch])); }

// ---- overlay -------------------------------------------------------------------------------
function el(name, attrs, parent) {
  const e = document.createElementNS(SVG, name);
  for (const k in attrs) e.setAttribute(k, attrs[k]);
  if (parent) parent.appendChild(e);
  return e;
}
const px = (p) => [p[0] * size[0], p[1] * size[1]];

function drawOverlay() {
  const svg = $("overlay");
  svg.setAttribute("viewBox", "0 0 " + size[0] + " " + size[1]);
  svg.innerHTML = "";
  const r = Math.max(size[0], size[1]) / 90;
  const labels = [];
  const areas = [["zones", "#2e86de"], ["displays", "#8e44ad"]];
  for (const [kind, color] of areas) {
    geom[kind].forEach((a, i) => {
      const pts = a.polygon.map(px).map((p) => p.join(",")).join(" ");
      el("polygon", { points: pts, fill: color, "fill-opacity": 0.15, stroke: color, "stroke-width": r / 3 }, svg);
      const c = a.polygon.map(px).reduce((s, p) => [s[0] + p[0] / a.polygon.length, s[1] + p[1] / a.polygon.length], [0, 0]);
      const t = el("text", { x: c[0], y: c[1], fill: "#fff", "font-size": r * 2.2, "text-anchor": "middle" }, svg);
      t.textContent = a.id + (kind === "displays" && expressions.has(a.id) ? " · expressions on" : "");
      apart(t, labels);
      a.polygon.forEach((p, j) => handle(svg, px(p), r, color, { kind, index: i, point: j }));
    });
  }
  geom.lines.forEach((l, i) => {
    const [a, b] = [px(l.from), px(l.to)];
    el("line", { x1: a[0], y1: a[1], x2: b[0], y2: b[1], stroke: "#e4572e", "stroke-width": r / 2 }, svg);
    // The in side: walking from `from` to `to`, "left" is the left hand (y grows downwards).
    const [dx, dy] = [b[0] - a[0], b[1] - a[1]];
    const len = Math.hypot(dx, dy) || 1;
    const s = l.in === "left" ? 1 : -1;
    const [nx, ny] = [s * dy / len, -s * dx / len];
    const m = [(a[0] + b[0]) / 2, (a[1] + b[1]) / 2];
    const tip = [m[0] + nx * r * 5, m[1] + ny * r * 5];
    el("line", { x1: m[0], y1: m[1], x2: tip[0], y2: tip[1], stroke: "#e4572e", "stroke-width": r / 2.5 }, svg);
    el("circle", { cx: tip[0], cy: tip[1], r: r / 1.5, fill: "#e4572e" }, svg);
    const anchor = nx > 0.3 ? "start" : nx < -0.3 ? "end" : "middle";
    const t = el("text", { x: tip[0] + nx * r * 1.5, y: tip[1] + ny * r * 2 + r * 0.8, fill: "#fff", stroke: "#000", "stroke-width": r / 8,
      "font-size": r * 2.2, "font-weight": "bold", "text-anchor": anchor }, svg);
    t.textContent = "in · " + l.id + (counts[l.id] ? " (" + counts[l.id][0] + " in, " + counts[l.id][1] + " out)" : "");
    apart(t, labels);
    handle(svg, a, r, "#e4572e", { kind: "lines", index: i, point: "from" });
    handle(svg, b, r, "#e4572e", { kind: "lines", index: i, point: "to" });
  });
  for (const f of feet) {
    const p = px(f);
    el("circle", { cx: p[0], cy: p[1], r: r / 1.3, fill: "#ffeb3b", stroke: "#000", "stroke-width": 1, class: "foot" }, svg);
  }
}

// Moves a label down, a line at a time, until it overlaps none of those placed before it.
function apart(t, placed) {
  const b = t.getBBox();
  const hits = (dy) => placed.some((o) => b.x < o.x + o.width && o.x < b.x + b.width && b.y + dy < o.y + o.height && o.y < b.y + dy + b.height);
  let dy = 0;
  for (let i = 0; i < 30 && b.height > 0 && hits(dy); i++) dy += b.height * 1.05;
  if (dy) t.setAttribute("y", Number(t.getAttribute("y")) + dy);
  placed.push({ x: b.x, y: b.y + dy, width: b.width, height: b.height });
}

function handle(svg, p, r, color, ref) {
  const h = el("circle", { cx: p[0], cy: p[1], r: r * 1.2, fill: color, class: "handle",
    "data-kind": ref.kind, "data-index": ref.index, "data-point": ref.point }, svg);
  h.addEventListener("pointerdown", (ev) => {
    ev.preventDefault();
    dragging = ref;
    svg.setPointerCapture(ev.pointerId);
  });
}

function toNormalized(ev) {
  const b = $("overlay").getBoundingClientRect();
  const clamp = (v) => Math.min(1, Math.max(0, v));
  return [round(clamp((ev.clientX - b.left) / b.width)), round(clamp((ev.clientY - b.top) / b.height))];
}

function setupDrag() {
  const svg = $("overlay");
  svg.addEventListener("pointermove", (ev) => {
    if (!dragging) return;
    const p = toNormalized(ev);
    const item = geom[dragging.kind][dragging.index];
    if (dragging.kind === "lines") item[dragging.point] = p; else item.polygon[dragging.point] = p;
    drawOverlay();
    renderLists();
  });
  const end = () => { dragging = null; };
  svg.addEventListener("pointerup", end);
  svg.addEventListener("pointercancel", end);
}

// ---- lists ---------------------------------------------------------------------------------
function renderLists() {
  const lines = $("lines");
  lines.innerHTML = "";
  geom.lines.forEach((l, i) => {
    const d = document.createElement("div");
    d.className = "item";
    d.dataset.line = i;
    const c = counts[l.id];
    d.innerHTML = '<span class="count">' + (c ? c[0] + " in · " + c[1] + " out" : "") + "</span>" +
      '<input type="text" class="id" value="' + esc(l.id) + '"> in: <select class="side"><option>left</option><option>right</option></select> ' +
      '<button class="remove" title="remove">✕</button> <button class="flip" title="swap in and out">⇄</button>' +
      '<div class="coords">' + fmt(l.from) + " → " + fmt(l.to) + "</div>" +
      '<span class="err">' + esc(errors["lines." + i] || "") + "</span>";
    d.querySelector(".side").value = l.in;
    d.querySelector(".id").addEventListener("change", (e) => { l.id = e.target.value.trim(); render(); });
    d.querySelector(".side").addEventListener("change", (e) => { l.in = e.target.value; render(); });
    d.querySelector(".flip").addEventListener("click", () => { l.in = l.in === "left" ? "right" : "left"; render(); });
    d.querySelector(".remove").addEventListener("click", () => { geom.lines.splice(i, 1); render(); });
    lines.appendChild(d);
  });
  for (const kind of ["zones", "displays"]) {
    const box = $(kind);
    box.innerHTML = "";
    geom[kind].forEach((a, i) => {
      const d = document.createElement("div");
      d.className = "item";
      d.innerHTML = '<input type="text" class="id" value="' + esc(a.id) + '"> ' + a.polygon.length + " corners " +
        '<button class="corner" title="add a corner">+ corner</button> <button class="remove" title="remove">✕</button>' +
        (kind === "displays" && expressions.has(a.id)
          ? ' <span class="expr" title="expressions = true in agent.toml: lookers\' facial expressions are counted">expressions on</span>' : "") +
        '<span class="err">' + esc(errors[kind + "." + i] || "") + "</span>";
      d.querySelector(".id").addEventListener("change", (e) => { a.id = e.target.value.trim(); render(); });
      d.querySelector(".remove").addEventListener("click", () => { geom[kind].splice(i, 1); render(); });
      d.querySelector(".corner").addEventListener("click", () => {
        const [p, q] = [a.polygon[a.polygon.length - 1], a.polygon[0]];
        a.polygon.push([round((p[0] + q[0]) / 2), round((p[1] + q[1]) / 2)]);
        render();
      });
      box.appendChild(d);
    });
  }
  $("displayscard").style.display = geom.displays.length ? "" : "none";
  const sel = $("auditline");
  const chosen = sel.value;
  sel.innerHTML = "";
  for (const l of geom.lines) { const o = document.createElement("option"); o.textContent = l.id; sel.appendChild(o); }
  if (geom.lines.some((l) => l.id === chosen)) sel.value = chosen;
}

function render() { drawOverlay(); renderLists(); }

function fresh(prefix, list) {
  for (let n = 1; ; n++) { const id = prefix + "-" + n; if (!list.some((x) => x.id === id)) return id; }
}

// ---- save ----------------------------------------------------------------------------------
async function save() {
  $("message").textContent = "Saving… the agent tries the new configuration and keeps it once every source is up.";
  const r = await api("/api/save", { camera, lines: geom.lines, zones: geom.zones, displays: geom.displays });
  errors = {};
  if (r.ok) {
    $("message").innerHTML = r.unchanged ? "Nothing changed." : r.outcome === "trying" ?
      '<span class="ok">Saved; ' + esc(r.reason) + ".</span>" :
      '<span class="ok">Saved and applied: every source is up.</span><br><small>Previous file kept as ' + esc(r.backup) + "</small>";
    await load();
    return;
  }
  if (r.outcome === "rolled_back") {
    $("message").innerHTML = '<span class="bad" id="rolledback">Not applied: ' + esc(r.reason) + ".</span><br><small>The agent runs the previous configuration; your changes are still on this page.</small>";
    return;
  }
  const top = [];
  const prefix = "cameras[" + r.camera_index + "].";
  for (const p of r.problems || []) {
    const m = p.field.startsWith(prefix) && p.field.slice(prefix.length).match(/^(lines|zones|displays)\[(\d+)\]/);
    const text = p.message + (p.hint ? " — fix: " + p.hint : "");
    if (m) errors[m[1] + "." + m[2]] = text; else top.push(p.field + ": " + text);
  }
  $("message").innerHTML = '<span class="bad">' + esc(r.error) + "</span>" + top.map((t) => '<div class="err">' + esc(t) + "</div>").join("");
  renderLists();
}

// ---- live view -----------------------------------------------------------------------------
let stillUrl = null;
async function refresh() {
  if (camera) {
    try {
      const r = await fetch("/api/view/" + encodeURIComponent(camera), { cache: "no-store" });
      if (r.ok) {
        const blob = await r.blob();
        const url = URL.createObjectURL(blob);
        const img = $("still");
        img.onload = () => {
          size = [img.naturalWidth, img.naturalHeight];
          if (stillUrl) URL.revokeObjectURL(stillUrl);
          stillUrl = url;
          $("viewinfo").textContent = "live · " + size[0] + "×" + size[1] + " · " + new Date().toLocaleTimeString();
        };
        img.src = url;
      } else {
        $("viewinfo").textContent = (await r.json().catch(() => ({}))).error || "no picture";
      }
      const live = await api("/api/live/" + encodeURIComponent(camera));
      if (live.ok && live.view) {
        feet = live.view.feet;
        counts = {};
        for (const [id, i, o] of live.view.lines) counts[id] = [i, o];
        if (!dragging) render();
      }
    } catch (e) { $("viewinfo").textContent = "agent unreachable: " + e; }
  }
  setTimeout(refresh, 1000);
}

async function placement() {
  const r = await api("/api/placement");
  if (r.ok) {
    const mine = (r.placement || []).find(([id]) => id === camera);
    const box = $("placement");
    if (!mine) { box.textContent = "Camera not running."; }
    else {
      const rep = mine[1];
      let h = "<div>" + rep.people + " people seen over " + Math.round(rep.observed_secs / 60) + " min.</div>";
      for (const w of rep.warnings) h += '<div class="warn"><b>' + esc(w.subject) + ":</b> " + esc(w.message) + "<br><small>Fix: " + esc(w.fix) + "</small></div>";
      for (const w of rep.waiting) h += '<div style="color:var(--dim)">' + esc(w) + "</div>";
      if (!rep.warnings.length) h += '<div class="ok">No placement problem found.</div>';
      box.innerHTML = h;
    }
  }
  setTimeout(placement, 10000);
}

// ---- audit ---------------------------------------------------------------------------------
let auditTimer = null;
function showAudit(r) {
  if (!r.ok) { $("auditmessage").innerHTML = '<span class="bad">' + esc(r.error) + "</span>"; return; }
  const a = r.result;
  const pct = (v) => (v === null || v === undefined ? "–" : Math.round(v * 100) + " %");
  let h = '<table class="tally" id="tally"><tr><th></th><th>in</th><th>out</th><th>total</th></tr>' +
    "<tr><td>You tapped</td><td>" + a.manual.in + "</td><td>" + a.manual.out + "</td><td id=manualtotal>" + (a.manual.in + a.manual.out) + "</td></tr>" +
    "<tr><td>Agent counted</td><td>" + a.agent.in + "</td><td>" + a.agent.out + "</td><td id=agenttotal>" + (a.agent.in + a.agent.out) + "</td></tr></table>" +
    "<div>" + a.minutes.toFixed(1) + " min · agreement <b id=agreement>" + pct(a.agreement) + "</b>";
  if (a.ratio !== null && a.ratio !== undefined) {
    h += " · agent/you " + pct(a.ratio) + " (95 % interval " + pct(a.ratio_low) + " – " + (a.ratio_high === null ? "∞" : pct(a.ratio_high)) + ")";
  }
  h += "</div>";
  if (a.interrupted) h += '<div class="bad">The camera restarted during the audit (a saved change): start a new audit.</div>';
  $("audit").innerHTML = h;
  const running = r.running;
  $("tapin").disabled = $("tapout").disabled = $("auditstop").disabled = !running;
  $("auditstart").disabled = running;
  $("auditpublish").disabled = running || a.interrupted;
}

async function auditPoll() {
  const r = await api("/api/audit");
  showAudit(r);
  if (!(r.ok && r.running)) return;
  // The audit ends by itself after the minutes asked for.
  if (r.result.minutes >= Number($("auditminutes").value || 5)) { auditStop(); return; }
  auditTimer = setTimeout(auditPoll, 1000);
}

async function auditStart() {
  $("auditmessage").textContent = "";
  const r = await api("/api/audit/start", { camera, line: $("auditline").value });
  showAudit(r);
  if (r.ok) { clearTimeout(auditTimer); auditTimer = setTimeout(auditPoll, 1000); }
}

async function tap(dir) { showAudit(await api("/api/audit/tap", { dir })); }

async function auditStop() { clearTimeout(auditTimer); showAudit(await api("/api/audit/stop", {})); }

async function auditPublish() {
  const r = await api("/api/audit/publish", {});
  $("auditmessage").innerHTML = r.ok ? '<span class="ok" id="published">Published (event ' + r.seq + "): the central platform stores it beside the windows.</span>"
    : '<span class="bad">' + esc(r.error) + "</span>";
}

// ---- wiring --------------------------------------------------------------------------------
$("camera").addEventListener("change", (e) => { camera = e.target.value; pick(); });
$("addline").addEventListener("click", () => {
  geom.lines.push({ id: fresh("line", geom.lines), from: [0.3, 0.5], to: [0.7, 0.5], in: "right" });
  render();
});
$("addzone").addEventListener("click", () => {
  geom.zones.push({ id: fresh("zone", geom.zones), polygon: [[0.4, 0.4], [0.6, 0.4], [0.6, 0.6], [0.4, 0.6]] });
  render();
});
$("save").addEventListener("click", save);
$("revert").addEventListener("click", () => { pick(); $("message").textContent = "Reverted to the saved file."; });
$("auditstart").addEventListener("click", auditStart);
$("auditstop").addEventListener("click", auditStop);
$("auditpublish").addEventListener("click", auditPublish);
$("tapin").addEventListener("click", () => tap("in"));
$("tapout").addEventListener("click", () => tap("out"));
document.addEventListener("keydown", (e) => {
  if (e.target.tagName === "INPUT") return;
  if (e.key === "i" && !$("tapin").disabled) tap("in");
  if (e.key === "o" && !$("tapout").disabled) tap("out");
});
setupDrag();
load().then(() => { refresh(); placement(); });
