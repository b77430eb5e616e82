// tower-siem dashboard. Plain JavaScript, no build step.
//
// Every piece of data (entity names, samples, paths, user agents) may come from an attacker:
// it is only ever inserted as text (textContent, or DOM nodes built by el()), never as markup.
"use strict";

const POLL_MS = 2000;
const WINDOW_S = 600;
const FEED_ROWS = 200;
const ACTIONS = ["allow", "step_up", "throttle", "block"];
const COLOURS = { allow: "#4c9a5f", step_up: "#c9a227", throttle: "#d9822b", block: "#c8453c" };

const $ = (sel) => document.querySelector(sel);

// An element with text: el("td", "text", "class"), or with children: el("td", [node, …]).
function el(tag, content, cls) {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  if (Array.isArray(content)) {
    for (const c of content) if (c != null) e.append(c);
  } else if (content != null) {
    e.textContent = String(content);
  }
  return e;
}

function clear(node) {
  while (node.firstChild) node.removeChild(node.firstChild);
}

// The API, with the header a cookie-authenticated change needs (see the admin module docs).
async function api(path, options = {}) {
  const headers = { "X-Siem-Request": "1", Accept: "application/json" };
  if (options.body) headers["Content-Type"] = "application/json";
  const res = await fetch(path, { credentials: "same-origin", ...options, headers });
  if (res.status === 401) {
    status("session expired: reload the page to log in again");
    throw new Error("unauthorized");
  }
  let body = null;
  try {
    body = await res.json();
  } catch (_) {
    body = null;
  }
  return { ok: res.ok, status: res.status, body };
}

function status(text) {
  $("#status").textContent = text;
}

function fmtNum(n) {
  return typeof n === "number" ? n.toLocaleString("en") : "–";
}

function fmtScore(s) {
  return typeof s === "number" ? s.toFixed(0) : "–";
}

function fmtLeft(ms) {
  if (typeof ms !== "number") return "";
  let s = Math.round(ms / 1000);
  if (s < 60) return s + " s";
  const m = Math.floor(s / 60);
  s %= 60;
  if (m < 60) return m + " min " + s + " s";
  const h = Math.floor(m / 60);
  return h + " h " + (m % 60) + " min";
}

function fmtTime(t) {
  const d = new Date(t);
  return isNaN(d) ? String(t || "") : d.toLocaleTimeString("en-GB");
}

function actionCell(action) {
  return el("td", action || "", "action action-" + (action || "none"));
}

// The entity an event is about, in the API's display form.
function eventEntity(ev) {
  if (ev.user) return "user:" + ev.user;
  if (ev.ip) return "ip:" + ev.ip;
  if (ev.session) return "session:" + ev.session;
  if (ev.device) return "device:" + ev.device;
  return "";
}

function eventDetail(ev) {
  const parts = [];
  if (ev.http) {
    parts.push((ev.http.method || "") + " " + (ev.http.path || ""));
    if (ev.http.status) parts.push("→ " + ev.http.status);
  }
  if (ev.verdict && ev.verdict.reasons && ev.verdict.reasons.length) {
    parts.push("(" + ev.verdict.reasons.join(", ") + ")");
  }
  if (!ev.http && ev.attrs && typeof ev.attrs === "object") {
    // Stored events hold attributes as [name, value] pairs.
    const pairs = Array.isArray(ev.attrs) ? ev.attrs : Object.entries(ev.attrs);
    for (const p of pairs.slice(0, 4)) {
      if (Array.isArray(p) && p.length === 2) parts.push(p[0] + "=" + p[1]);
    }
  }
  return parts.join(" ");
}

// ---- Charts -------------------------------------------------------------------------------

function chartSize(node) {
  return { width: Math.max(260, node.clientWidth || 400), height: 200 };
}

function makeChart(node, series, data) {
  if (typeof uPlot === "undefined") {
    node.textContent = "chart library not loaded";
    return null;
  }
  const opts = {
    ...chartSize(node),
    scales: { x: { time: true } },
    axes: [{ stroke: "#888", grid: { stroke: "rgba(128,128,128,.15)" } },
           { stroke: "#888", grid: { stroke: "rgba(128,128,128,.15)" } }],
    series: [{}, ...series],
    legend: { live: false },
  };
  return new uPlot(opts, data, node);
}

// Samples of /api/stats and /api/offenders, one per poll, for the last WINDOW_S seconds.
const history = [];
// Verdicts seen in the feed since the last poll, by action.
let feedCounts = { allow: 0, step_up: 0, throttle: 0, block: 0 };
let feedLive = false;
let epsChart = null;
let actionChart = null;

function pushSample(stats, offenders) {
  const t = Date.now() / 1000;
  const events = stats && stats.engine ? stats.engine.events : null;
  const hits = {};
  if (stats && stats.engine && Array.isArray(stats.engine.rules)) {
    for (const r of stats.engine.rules) hits[r.id] = r.hits;
  }
  const prev = history[history.length - 1];
  const dt = prev ? t - prev.t : 0;
  const sample = { t, events, hits, eps: null, actions: {} };
  if (prev && dt > 0 && events != null && prev.events != null) {
    sample.eps = Math.max(0, (events - prev.events) / dt);
  }
  if (feedLive) {
    for (const a of ACTIONS) sample.actions[a] = dt > 0 ? feedCounts[a] / dt : null;
  } else {
    // Without the feed, the verdict counts are not in the stats: plot how many entities
    // stand at each action instead.
    for (const a of ACTIONS) sample.actions[a] = 0;
    for (const o of offenders || []) {
      const a = o.verdict && o.verdict.action;
      if (a in sample.actions) sample.actions[a] += 1;
    }
    sample.actions.allow = null;
  }
  feedCounts = { allow: 0, step_up: 0, throttle: 0, block: 0 };
  history.push(sample);
  while (history.length && history[0].t < t - WINDOW_S) history.shift();
  drawCharts();
}

function drawCharts() {
  const xs = history.map((s) => s.t);
  // How many points each chart has drawn, for a glance in the inspector (and the tests).
  $("#chart-eps").dataset.points = String(history.filter((s) => s.eps != null).length);
  const epsData = [xs, history.map((s) => s.eps)];
  const actData = [xs, ...ACTIONS.map((a) => history.map((s) => s.actions[a] ?? null))];
  if (!epsChart) {
    epsChart = makeChart($("#chart-eps"),
      [{ label: "events/s", stroke: "#3b6fb6", fill: "rgba(59,111,182,.12)", width: 1.5 }], epsData);
  } else {
    epsChart.setData(epsData);
  }
  if (!actionChart) {
    actionChart = makeChart($("#chart-actions"),
      ACTIONS.map((a) => ({ label: a, stroke: COLOURS[a], width: 1.5, spanGaps: false })), actData);
  } else {
    actionChart.setData(actData);
  }
}

window.addEventListener("resize", () => {
  for (const [c, sel] of [[epsChart, "#chart-eps"], [actionChart, "#chart-actions"],
                          [storyChart, "#story-chart"]]) {
    if (c) c.setSize(chartSize($(sel)));
  }
});

// ---- Header totals --------------------------------------------------------------------------

function renderTotals(stats, offenders) {
  const dl = $("#totals");
  clear(dl);
  const e = (stats && stats.engine) || {};
  const last = history[history.length - 1];
  const by = { step_up: 0, throttle: 0, block: 0 };
  for (const o of offenders || []) {
    const a = o.verdict && o.verdict.action;
    if (a in by) by[a] += 1;
  }
  let delivered = 0;
  let dropped = 0;
  for (const s of (stats && stats.pipeline && stats.pipeline.sinks) || []) {
    delivered += s.delivered || 0;
    if (s.dropped && typeof s.dropped === "object") {
      for (const v of Object.values(s.dropped)) if (typeof v === "number") dropped += v;
    }
  }
  const items = [
    ["events", fmtNum(e.events)],
    ["events/s", last && last.eps != null ? last.eps.toFixed(1) : "–"],
    ["entities", fmtNum(e.entities)],
    ["blocked", fmtNum(by.block)],
    ["throttled", fmtNum(by.throttle)],
    ["stepped up", fmtNum(by.step_up)],
    ["delivered", fmtNum(delivered)],
    ["dropped", fmtNum(dropped)],
  ];
  for (const [k, v] of items) dl.append(el("div", [el("dt", k), el("dd", v)]));
}

// ---- Offenders ----------------------------------------------------------------------------

function entityButton(entity) {
  const b = el("button", entity, "link");
  b.type = "button";
  b.addEventListener("click", () => openStory(entity));
  return b;
}

function actionButtons(entity, after) {
  const act = async (what, body) => {
    try {
      const r = await api("api/entities/" + encodeURIComponent(entity) + "/" + what, {
        method: "POST",
        body: body ? JSON.stringify(body) : undefined,
      });
      status(r.ok ? what + " " + entity + ": done" : what + " failed: " + ((r.body && r.body.error) || r.status));
    } catch (e) {
      status(what + " failed: " + e.message);
    }
    await refresh();
    if (after) after();
  };
  const mk = (label, what, body) => {
    const b = el("button", label);
    b.type = "button";
    b.addEventListener("click", () => act(what, body));
    return b;
  };
  return el("div", [
    mk("Unblock", "unblock"),
    mk("Allow 1h", "allow", { for: "1h" }),
    mk("Block 10m", "block", { for: "10m" }),
  ], "buttons");
}

function renderOffenders(offenders) {
  const tbody = $("#offenders tbody");
  clear(tbody);
  $("#offender-count").textContent = "(" + offenders.length + ")";
  if (!offenders.length) {
    const td = el("td", "nobody is stepped up, throttled or blocked", "empty");
    td.colSpan = 7;
    tbody.append(el("tr", [td]));
    return;
  }
  for (const o of offenders.slice(0, 100)) {
    const rules = (o.contributions || []).map((c) => c.rule).join(", ");
    tbody.append(el("tr", [
      el("td", [entityButton(String(o.entity))]),
      el("td", o.state || ""),
      actionCell(o.verdict && o.verdict.action),
      el("td", fmtScore(o.verdict && o.verdict.score), "num"),
      el("td", rules),
      el("td", fmtLeft(o.time_left_ms), "num"),
      el("td", [actionButtons(String(o.entity))]),
    ]));
  }
}

// ---- Top rules and networks ---------------------------------------------------------------

function renderTopRules(stats, offenders) {
  const tbody = $("#top-rules tbody");
  clear(tbody);
  const rules = (stats && stats.engine && stats.engine.rules) || [];
  const now = history[history.length - 1];
  const ago = history.find((s) => now && s.t >= now.t - 60);
  const byOffenders = {};
  for (const o of offenders) {
    for (const c of o.contributions || []) byOffenders[c.rule] = (byOffenders[c.rule] || 0) + 1;
  }
  const top = rules.filter((r) => r.hits > 0).sort((a, b) => b.hits - a.hits).slice(0, 10);
  if (!top.length) {
    const td = el("td", "no rule has fired yet", "empty");
    td.colSpan = 4;
    tbody.append(el("tr", [td]));
  }
  for (const r of top) {
    const recent = ago && ago.hits[r.id] != null ? r.hits - ago.hits[r.id] : null;
    tbody.append(el("tr", [
      el("td", r.id),
      el("td", fmtNum(r.hits), "num"),
      el("td", recent == null ? "–" : fmtNum(recent), "num"),
      el("td", fmtNum(byOffenders[r.id] || 0), "num"),
    ]));
  }
}

// The /24 of an IPv4 address, the /48 of an IPv6 one; a net: entity as itself.
function networkOf(entity) {
  if (entity.startsWith("net:")) return entity.slice(4);
  if (!entity.startsWith("ip:")) return null;
  const ip = entity.slice(3);
  if (ip.includes(".") && !ip.includes(":")) {
    const p = ip.split(".");
    return p.length === 4 ? p.slice(0, 3).join(".") + ".0/24" : null;
  }
  // IPv6: expand "::" to get the first three groups.
  const [head, tail] = ip.split("::");
  const h = head ? head.split(":") : [];
  const t = tail !== undefined && tail ? tail.split(":") : [];
  const groups = tail !== undefined ? [...h, ...Array(Math.max(0, 8 - h.length - t.length)).fill("0"), ...t] : h;
  if (groups.length < 3) return null;
  return groups.slice(0, 3).map((g) => (parseInt(g, 16) || 0).toString(16)).join(":") + "::/48";
}

function renderTopNets(offenders) {
  const tbody = $("#top-nets tbody");
  clear(tbody);
  const nets = new Map();
  for (const o of offenders) {
    const net = networkOf(String(o.entity));
    if (!net) continue;
    const n = nets.get(net) || { net, count: 0, blocked: 0, top: 0 };
    n.count += 1;
    if (o.state === "blocked") n.blocked += 1;
    n.top = Math.max(n.top, (o.verdict && o.verdict.score) || 0);
    nets.set(net, n);
  }
  const top = [...nets.values()].sort((a, b) => b.count - a.count || b.top - a.top).slice(0, 10);
  if (!top.length) {
    const td = el("td", "no offending address", "empty");
    td.colSpan = 4;
    tbody.append(el("tr", [td]));
  }
  for (const n of top) {
    tbody.append(el("tr", [
      el("td", [entityButton("net:" + n.net)]),
      el("td", fmtNum(n.count), "num"),
      el("td", fmtNum(n.blocked), "num"),
      el("td", fmtScore(n.top), "num"),
    ]));
  }
}

// ---- Polling ------------------------------------------------------------------------------

async function refresh() {
  let stats = null;
  let offenders = [];
  try {
    const [s, o] = await Promise.all([api("api/stats"), api("api/offenders")]);
    if (s.ok) stats = s.body;
    if (o.ok && Array.isArray(o.body)) offenders = o.body;
  } catch (e) {
    if (e.message !== "unauthorized") status("cannot reach the admin API: " + e.message);
    return;
  }
  pushSample(stats, offenders);
  renderTotals(stats, offenders);
  renderOffenders(offenders);
  renderTopRules(stats, offenders);
  renderTopNets(offenders);
}

// ---- Live feed ----------------------------------------------------------------------------

let paused = false;

function filters() {
  const f = new FormData($("#feed-filters"));
  return {
    name: String(f.get("name") || "").trim().toLowerCase(),
    entity: String(f.get("entity") || "").trim().toLowerCase(),
    action: String(f.get("action") || ""),
  };
}

function matches(ev, f) {
  if (f.name && !String(ev.name || "").toLowerCase().includes(f.name)) return false;
  if (f.entity) {
    const who = [ev.ip, ev.user, ev.session, ev.device].filter(Boolean).join(" ").toLowerCase();
    if (!who.includes(f.entity)) return false;
  }
  if (f.action && !(ev.verdict && ev.verdict.action === f.action)) return false;
  return true;
}

function feedRow(ev) {
  const entity = eventEntity(ev);
  return el("tr", [
    el("td", fmtTime(ev.time)),
    el("td", ev.name || ""),
    el("td", entity ? [entityButton(entity)] : ""),
    actionCell(ev.verdict && ev.verdict.action),
    el("td", fmtScore(ev.verdict && ev.verdict.score), "num"),
    el("td", eventDetail(ev), "sample"),
  ]);
}

function startFeed() {
  const note = $("#feed-status");
  if (typeof EventSource === "undefined") {
    note.textContent = "live feed unavailable in this browser";
    return;
  }
  const source = new EventSource("api/feed", { withCredentials: true });
  let opened = false;
  source.addEventListener("open", () => {
    opened = true;
    feedLive = true;
    note.textContent = "live";
    $("#actions-title").textContent = "Verdicts per second, by action";
    $("#actions-note").textContent = "";
  });
  source.addEventListener("siem", (msg) => {
    let ev;
    try {
      ev = JSON.parse(msg.data);
    } catch (_) {
      return;
    }
    const a = ev.verdict && ev.verdict.action;
    if (a in feedCounts) feedCounts[a] += 1;
    if (paused || !matches(ev, filters())) return;
    const tbody = $("#feed tbody");
    tbody.prepend(feedRow(ev));
    while (tbody.rows.length > FEED_ROWS) tbody.deleteRow(tbody.rows.length - 1);
  });
  source.addEventListener("lagged", (msg) => {
    note.textContent = "live (the feed skipped events to keep up: " + String(msg.data).slice(0, 40) + ")";
  });
  source.addEventListener("error", () => {
    if (source.readyState === EventSource.CLOSED || !opened) {
      source.close();
      feedLive = false;
      note.textContent = "live feed unavailable (this server has no /api/feed)";
      $("#actions-title").textContent = "Entities by action";
      $("#actions-note").textContent =
        "Verdict counts come from the live feed; without it, the chart shows how many entities stand at each action.";
    } else {
      note.textContent = "reconnecting…";
    }
  });
}

// ---- One entity's story -------------------------------------------------------------------

let storyChart = null;
let storyEntity = null;

async function openStory(entity) {
  storyEntity = entity;
  const aside = $("#story");
  aside.hidden = false;
  $("#story-title").textContent = entity;
  for (const sel of ["#story-facts", "#story-actions", "#story-rules tbody", "#story-events tbody"]) {
    clear($(sel));
  }
  $("#story-events-note").textContent = "loading…";
  $("#story-chart-note").textContent = "";
  if (storyChart) {
    storyChart.destroy();
    storyChart = null;
  }
  clear($("#story-chart"));
  let info;
  try {
    info = await api("api/entities/" + encodeURIComponent(entity));
  } catch (_) {
    return;
  }
  if (storyEntity !== entity) return;
  const o = info.body || {};
  const facts = $("#story-facts");
  const fact = (k, v) => facts.append(el("dt", k), el("dd", v));
  if (!info.ok) {
    fact("state", (o && o.error) || "unknown (" + info.status + ")");
  } else {
    fact("state", o.state || "");
    if (o.verdict) {
      fact("action", o.verdict.action || "");
      fact("score", fmtScore(o.verdict.score));
    }
    if (o.time_left_ms != null) fact("time left", fmtLeft(o.time_left_ms));
    if (o.offenses != null) fact("automatic blocks", fmtNum(o.offenses));
    if (o.last_seen) fact("last seen", new Date(o.last_seen).toLocaleString("en-GB"));
  }
  $("#story-actions").append(actionButtons(entity, () => openStory(entity)));
  const rules = $("#story-rules tbody");
  for (const c of o.contributions || []) {
    rules.append(el("tr", [
      el("td", c.rule + (c.weak ? " (weak)" : "")),
      el("td", fmtScore(c.score), "num"),
      el("td", fmtNum(c.hits), "num"),
      el("td", c.sample || "", "sample"),
    ]));
  }
  if (!(o.contributions || []).length) {
    const td = el("td", "no rule holds a score against it", "empty");
    td.colSpan = 4;
    rules.append(el("tr", [td]));
  }
  // Its events: in the entity's answer when the server has an event store, else asked for.
  let events = Array.isArray(o.events) ? o.events : null;
  if (!events) {
    try {
      const r = await api("api/events?entity=" + encodeURIComponent(entity) + "&limit=200");
      if (r.ok && r.body && Array.isArray(r.body.events)) events = r.body.events;
    } catch (_) {
      events = null;
    }
  }
  if (storyEntity !== entity) return;
  renderStoryEvents(events);
}

function renderStoryEvents(events) {
  const note = $("#story-events-note");
  const tbody = $("#story-events tbody");
  if (!events) {
    note.textContent = "no event store on this server: only the current score is known";
    $("#story-chart-note").textContent = "needs the event store";
    return;
  }
  note.textContent = events.length ? events.length + " most recent, newest first" : "none stored";
  for (const ev of events.slice(0, 200)) {
    tbody.append(el("tr", [
      el("td", fmtTime(ev.time)),
      el("td", ev.name || ""),
      actionCell(ev.verdict && ev.verdict.action),
      el("td", fmtScore(ev.verdict && ev.verdict.score), "num"),
      el("td", eventDetail(ev), "sample"),
    ]));
  }
  const points = events
    .filter((ev) => ev.verdict && typeof ev.verdict.score === "number")
    .map((ev) => [Date.parse(ev.time) / 1000, ev.verdict.score])
    .filter(([t]) => !isNaN(t))
    .sort((a, b) => a[0] - b[0]);
  if (!points.length) {
    $("#story-chart-note").textContent = "no scored event stored";
    return;
  }
  storyChart = makeChart($("#story-chart"),
    [{ label: "score", stroke: "#c8453c", width: 1.5, points: { show: true } }],
    [points.map((p) => p[0]), points.map((p) => p[1])]);
}

// ---- Start --------------------------------------------------------------------------------

function start() {
  $("#story-close").addEventListener("click", () => {
    $("#story").hidden = true;
    storyEntity = null;
  });
  $("#feed-filters").addEventListener("submit", (e) => e.preventDefault());
  $("#feed-pause").addEventListener("click", (e) => {
    paused = !paused;
    e.target.textContent = paused ? "Resume" : "Pause";
  });
  $("#logout").addEventListener("click", async () => {
    try {
      await api("logout", { method: "POST" });
    } catch (_) {
      // Already logged out.
    }
    window.location.reload();
  });
  startFeed();
  refresh();
  setInterval(refresh, POLL_MS);
}

start();
