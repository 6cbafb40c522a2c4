// The dashboard: each panel is one request to /api/{panel}?store=&days=, drawn with uPlot
// (vendored, MIT). Every figure shown is also left on its element as data-* attributes so the
// browser test can compare the page with SQL.
"use strict";

const $ = (id) => document.getElementById(id);
const charts = {};

async function get(panel) {
  const q = new URLSearchParams({ store: $("store").value, days: $("days").value });
  const r = await fetch(`/api/${panel}?${q}`);
  if (r.status === 401) { location.href = "/login"; throw new Error("logged out"); }
  if (!r.ok) throw new Error(`${panel}: ${r.status}`);
  return r.json();
}

function width(el) { return Math.max(300, el.clientWidth); }

function chart(id, data, series, opts = {}) {
  const el = $(id);
  if (charts[id]) { charts[id].destroy(); }
  el.textContent = "";
  if (!data[0].length) { el.textContent = "no data in this period"; return; }
  charts[id] = new uPlot({
    width: width(el.parentElement) - 10, height: 180,
    series: [{}, ...series], axes: [{}, { size: 50 }], ...opts,
  }, data, el);
}

const sum = (a) => a.reduce((s, v) => s + (v || 0), 0);
const cell = (tr, v) => { const td = document.createElement("td"); td.textContent = v; tr.append(td); };
const time = (s) => new Date(s * 1000).toLocaleString();

function table(id, head, rows) {
  const t = $(id);
  t.textContent = "";
  const h = document.createElement("tr");
  head.forEach((x) => { const th = document.createElement("th"); th.textContent = x; h.append(th); });
  t.append(h);
  rows.forEach((r) => { const tr = document.createElement("tr"); r.forEach((v) => cell(tr, v)); t.append(tr); });
}

const draw = {
  async footfall() {
    const d = await get("footfall");
    const lo = d.forecast.map((f) => f == null ? null : Math.max(0, f - 2 * Math.sqrt(f)));
    const hi = d.forecast.map((f) => f == null ? null : f + 2 * Math.sqrt(f));
    chart("footfall-chart", [d.t, d.crossings, d.visitors_in, d.forecast, lo, hi], [
      { label: "crossings", stroke: "#3b6fd8", width: 2 },
      { label: "visitors in", stroke: "#2e9e5b", width: 2 },
      { label: "forecast", stroke: "#999", dash: [6, 4] },
      { label: "band low", stroke: "#ccc" },
      { label: "band high", stroke: "#ccc" },
    ], { bands: [{ series: [5, 4], fill: "#9992" }] });
    const s = sum(d.crossings), v = sum(d.visitors_in);
    $("footfall").dataset.crossings = s;
    $("footfall").dataset.visitorsIn = v;
    $("footfall-sum").textContent = `${s} crossings, ${v} visitors in; band: forecast ± 2√forecast`;
  },
  async occupancy() {
    const d = await get("occupancy");
    const n = d.now;
    $("occupancy").dataset.people = n ? n.people : "";
    $("occ-now").textContent = n ? (n.capacity ? `${n.people} / ${n.capacity}` : `${n.people}`) : "–";
    $("occ-now").className = "big" + (n && n.capacity && n.people > n.capacity ? " warn" : "");
    $("occ-detail").textContent = n ? `${n.boxes} box(es)` + (n.boxes_suppressed ? `, ${n.boxes_suppressed} below k (left out)` : "") + (n.at ? `, as of ${time(n.at)}` : "") : "no occupancy configured";
    chart("occ-chart", [d.t, d.max], [{ label: "most inside per hour", stroke: "#8a4fd8", width: 2 }]);
  },
  async conversion() {
    const d = await get("conversion");
    const c = d.t.map((_, i) => d.groups_in[i] ? d.transactions[i] / d.groups_in[i] : null);
    chart("conversion-chart", [d.t, c], [{ label: "conversion", stroke: "#d8713b", width: 2, value: (u, v) => v == null ? "–" : (100 * v).toFixed(1) + " %" }]);
    const t = sum(d.transactions), g = sum(d.groups_in);
    $("conversion").dataset.transactions = t;
    $("conversion").dataset.groupsIn = g;
    $("conversion-sum").textContent = `${t} transactions, ${g} groups in` + (g ? `: ${(100 * t / g).toFixed(1)} %` : "");
  },
  async queues() {
    const d = await get("queues");
    chart("queues-chart", [d.t, d.wait_mean_s], [{ label: "mean wait (s)", stroke: "#b3261e", width: 2 }]);
    $("queues").dataset.served = sum(d.served);
  },
  async dwell() {
    const d = await get("dwell");
    chart("dwell-chart", [d.t, d.dwell_mean_s], [{ label: "mean dwell (s)", stroke: "#2e7d9e", width: 2 }]);
    $("dwell").dataset.visits = sum(d.visits);
  },
  async funnel() {
    const d = await get("funnel");
    const el = $("funnel-bars");
    el.textContent = "";
    const top = Math.max(1, d.passed, d.entered, d.engaged, d.checkout);
    for (const k of ["passed", "entered", "engaged", "checkout"]) {
      const row = document.createElement("div");
      row.textContent = `${k}: ${d[k]}`;
      const bar = document.createElement("div");
      bar.className = "bar";
      bar.style.width = `${(100 * d[k] / top).toFixed(1)}%`;
      el.append(row, bar);
      $("funnel").dataset[k] = d[k];
    }
  },
  async alerts() {
    const d = await get("alerts");
    const raised = d.alerts.filter((a) => a.state === "raised").reverse();
    chart("alerts-chart", [raised.map((a) => a.at), raised.map((a) => a.value)],
      [{ label: "alert value when raised", stroke: "#b3261e", paths: () => null, points: { size: 8, fill: "#b3261e" } }]);
    table("alerts-table", ["time", "source", "alert", "state", "value", "threshold"],
      d.alerts.map((a) => [time(a.at), a.source, a.alert, a.state, a.value ?? "below k", a.threshold]));
    $("alerts").dataset.count = d.alerts.length;
  },
  async audits() {
    const d = await get("audits");
    table("audits-table", ["ended", "source", "line", "minutes", "taps (in/out)", "agent (in/out)", "agreement"],
      d.audits.map((a) => {
        const x = a.audit;
        const pair = (o) => o ? `${o.in ?? "–"} / ${o.out ?? "–"}` : "–";
        const agree = x.agreement == null ? "below k" : `${(100 * x.agreement).toFixed(0)} %`;
        return [x.ended, a.source, x.line, x.minutes, pair(x.manual), pair(x.agent), agree];
      }));
    $("audits").dataset.count = d.audits.length;
  },
  async fleet() {
    const d = await get("fleet");
    table("fleet-table", ["box", "state", "reason", "since", "missing seqs"],
      d.boxes.map((b) => [b.device, b.state, b.reason ?? "–", b.since ? time(b.since) : "–", b.missing_seqs]));
    $("fleet-rejected").textContent = `${d.rejected_last_day} message(s) rejected by the ingest in the last day`;
    $("fleet").dataset.offline = d.boxes.filter((b) => b.state !== "online").length;
    $("fleet").dataset.missing = sum(d.boxes.map((b) => b.missing_seqs));
  },
};

async function refresh() {
  document.body.dataset.loaded = "";
  const started = performance.now();
  await Promise.all(Object.entries(draw).map(async ([k, f]) => {
    try { await f(); } catch (e) { $(k).dataset.error = String(e); }
  }));
  document.body.dataset.loaded = String(Math.round(performance.now() - started));
}

async function start() {
  const r = await fetch("/api/stores");
  if (r.status === 401) { location.href = "/login"; return; }
  const { stores } = await r.json();
  const sel = $("store");
  stores.forEach((s) => { const o = document.createElement("option"); o.value = o.textContent = s; sel.append(o); });
  const wanted = new URLSearchParams(location.search).get("store");
  if (wanted && stores.includes(wanted)) sel.value = wanted;
  sel.onchange = refresh;
  $("days").onchange = refresh;
  await refresh();
}

start();
