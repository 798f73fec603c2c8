// The fleet page: sign in with a token, then poll the cloud's JSON endpoints about once a
// second and redraw. The token lives in sessionStorage (this tab only) and travels in the
// Authorization header, never in a URL. Data is written with textContent, never as HTML.
"use strict";

const TOKEN_KEY = "tierwise-dashboard-token";
const POLL_MS = 1000;
const MAX_CHARTED_SITES = 4; // charted by default; more can be chosen in the Sites table
const POINTS = 120;
const SLOW_EVERY = 5; // cost and drift change slowly: read them every fifth poll

const state = { charted: null, timer: null, polling: false, polls: 0 };
const $ = (id) => document.getElementById(id);

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (key === "class") node.className = value;
    else if (key.startsWith("data-")) node.setAttribute(key, String(value));
    else if (key === "text") node.textContent = String(value);
    else node.setAttribute(key, value === true ? "" : String(value));
  }
  for (const child of children) {
    if (child === null || child === undefined) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

function token() {
  return sessionStorage.getItem(TOKEN_KEY);
}

class Refused extends Error {}

async function getJson(path) {
  const response = await fetch(path, {
    headers: { Authorization: `Bearer ${token()}`, Accept: "application/json" },
    cache: "no-store",
    credentials: "omit",
    referrerPolicy: "no-referrer",
  });
  if (response.status === 401 || response.status === 403) {
    throw new Refused(response.status === 401 ? "the cloud does not know this token"
      : "this token may not see that");
  }
  if (!response.ok) throw new Error(`${path}: HTTP ${response.status}`);
  return response.json();
}

// What only some tokens may read (cost: the operator's): null when this token may not.
async function getOptional(path) {
  try {
    return await getJson(path);
  } catch (error) {
    if (error instanceof Refused) return null;
    throw error;
  }
}

// --- signing in and out -----------------------------------------------------------------

function showLogin(message) {
  clearTimeout(state.timer);
  sessionStorage.removeItem(TOKEN_KEY);
  state.charted = null;
  // Nothing seen with that token stays on the page (the next token may see less).
  $("sites").tBodies[0].replaceChildren();
  $("rollouts").tBodies[0].replaceChildren();
  $("live").replaceChildren();
  $("cost").tBodies[0].replaceChildren();
  $("drift").tBodies[0].replaceChildren();
  $("cost-section").hidden = true;
  $("drift-section").hidden = true;
  state.polls = 0;
  $("board").hidden = true;
  $("logout").hidden = true;
  $("login").hidden = false;
  $("login-error").textContent = message || "";
  $("updated").textContent = "";
  $("problem").textContent = "";
  $("token").value = "";
  $("token").focus();
}

function showBoard() {
  $("login").hidden = true;
  $("board").hidden = false;
  $("logout").hidden = false;
  poll();
}

$("login-form").addEventListener("submit", (event) => {
  event.preventDefault();
  const typed = $("token").value.trim();
  if (!typed) return;
  sessionStorage.setItem(TOKEN_KEY, typed);
  $("token").value = "";
  showBoard();
});
$("logout").addEventListener("click", () => showLogin("Signed out."));

// --- polling ----------------------------------------------------------------------------

async function poll() {
  if (state.polling || !token()) return;
  state.polling = true;
  try {
    const fleet = await getJson("/v1/fleet");
    if (state.charted === null) {
      state.charted = new Set(fleet.sites.slice(0, MAX_CHARTED_SITES).map((s) => s.site));
    }
    const charted = fleet.sites.filter((s) => state.charted.has(s.site));
    const lives = await Promise.all(
      charted.map((s) => getJson(`/v1/sites/${encodeURIComponent(s.site)}/live?points=${POINTS}`)),
    );
    // Redrawing replaces the controls: give the keyboard focus back to the same one.
    const focused = document.activeElement && document.activeElement.getAttribute("aria-label");
    renderSites(fleet);
    renderRollouts(fleet.rollouts);
    renderLive(lives);
    if (state.polls++ % SLOW_EVERY === 0) {
      const cost = await getOptional("/v1/cost");
      const drift = cost !== null ? await getJson("/v1/drift")
        : (await Promise.all(fleet.sites.map((s) => getOptional(
          `/v1/sites/${encodeURIComponent(s.site)}/drift`)))).flat().filter((v) => v);
      renderCost(cost);
      renderDrift(drift);
    }
    if (focused) {
      const again = [...document.querySelectorAll("[aria-label]")]
        .find((node) => node.getAttribute("aria-label") === focused);
      if (again) again.focus();
    }
    $("updated").textContent = `Updated ${new Date(fleet.now * 1000).toLocaleTimeString()}`;
    if ($("problem").textContent) $("problem").textContent = "";
  } catch (error) {
    if (error instanceof Refused) {
      state.polling = false;
      showLogin(`Sign-in refused: ${error.message}.`);
      return;
    }
    $("problem").textContent = `Cannot reach the cloud (${error.message}); retrying.`;
  }
  state.polling = false;
  state.timer = setTimeout(poll, POLL_MS);
}

// --- the Sites table ----------------------------------------------------------------------

function ago(now, then) {
  if (then === null || then === undefined) return "never";
  const s = Math.max(0, now - then);
  if (s < 90) return `${Math.round(s)} s ago`;
  if (s < 5400) return `${Math.round(s / 60)} min ago`;
  return `${Math.round(s / 3600)} h ago`;
}

function featureItem(f) {
  const installed = f.installed_version === null ? "not installed" : `v${f.installed_version}`;
  const deployed = f.deployed_version === null ? "not deployed" : `v${f.deployed_version}`;
  const unhealthy = f.healthy === false;
  return el("li", { class: unhealthy ? "unhealthy" : null, "data-feature": f.feature },
    `${f.feature}: ${installed} / ${deployed}`,
    f.placement ? ` (${f.placement})` : "",
    unhealthy && f.detail ? ` — ${f.detail}` : "");
}

function renderSites(fleet) {
  const body = $("sites").tBodies[0];
  const rows = fleet.sites.map((site) => {
    const status = site.online ? "online" : "offline";
    const box = el("input", {
      type: "checkbox",
      "aria-label": `Chart ${site.site}`,
      checked: state.charted.has(site.site),
    });
    box.addEventListener("change", () => {
      if (box.checked) state.charted.add(site.site);
      else state.charted.delete(site.site);
    });
    return el("tr", { "data-site": site.site, "data-online": String(site.online) },
      el("th", { scope: "row" }, site.site),
      el("td", {}, el("span", { class: `badge ${status}` }, status)),
      el("td", {}, ago(fleet.now, site.last_contact)),
      el("td", { class: site.outbox.estimated ? "estimated" : null },
        site.outbox.depth_events === null ? "–"
          : `${site.outbox.estimated ? "≈ " : ""}${site.outbox.depth_events}`),
      el("td", {}, el("ul", { class: "feature-list" }, ...site.features.map(featureItem))),
      el("td", {}, box));
  });
  body.replaceChildren(...rows);
}

// --- the Rollouts table -------------------------------------------------------------------

function renderRollouts(rollouts) {
  $("no-rollouts").hidden = rollouts.length > 0;
  $("rollouts").hidden = rollouts.length === 0;
  $("rollouts").tBodies[0].replaceChildren(...rollouts.map((r) => el("tr",
    { "data-rollout": r.id, "data-stage": r.stage },
    el("th", { scope: "row" }, r.package),
    el("td", {}, `v${r.version}`),
    el("td", {}, el("span", { class: `badge stage-${r.stage.replace(" ", "-")}` }, r.stage)),
    el("td", {}, r.canary_sites.join(", ") || "–"),
    el("td", {}, r.other_sites.join(", ") || "–"),
    el("td", {}, r.reason))));
}

// --- cost and input drift ----------------------------------------------------------------

const dollars = (value) => `$${value.toLocaleString(undefined, { maximumFractionDigits: 2 })}`;

function renderCost(cost) {
  $("cost-section").hidden = cost === null;
  if (cost === null) return;
  if (cost.spec === null) {
    $("cost-note").textContent = "No plan uploaded yet (PUT /v1/plan; tierwise up does it).";
  } else {
    const traffic = cost.traffic.map((t) => `${t.feature} ${formatNumber(t.measured_requests_per_s)}`
      + ` req/s measured vs ${formatNumber(t.planned_requests_per_s)} planned`).join("; ");
    $("cost-note").textContent = `Plan of ${cost.spec}; traffic over the last `
      + `${cost.window_s} s: ${traffic}.`;
  }
  $("cost").tBodies[0].replaceChildren(...cost.strategies.map((s) => el("tr",
    { "data-strategy": s.strategy },
    el("th", { scope: "row" }, s.strategy),
    el("td", {}, dollars(s.plan_per_month)),
    el("td", { "data-measured": s.measured_per_month }, dollars(s.measured_per_month)),
    el("td", {}, dollars(s.fixed_per_month)))));
}

function renderDrift(verdicts) {
  $("drift-section").hidden = verdicts.length === 0;
  $("drift").tBodies[0].replaceChildren(...verdicts.map((v) => el("tr",
    { class: v.drifted ? "flagged" : null, "data-site": v.site, "data-drifted": String(v.drifted) },
    el("th", { scope: "row" }, v.site),
    el("td", {}, `${v.feature} (${v.package} v${v.version})`),
    el("td", {}, v.drifted ? "drifted ⚠" : "stable"),
    el("td", {}, v.column),
    el("td", {}, `${formatNumber(v.psi)} / ${formatNumber(v.threshold)}`),
    el("td", {}, String(v.rows)),
    el("td", {}, new Date(v.since * 1000).toLocaleTimeString()))));
}

// --- live charts --------------------------------------------------------------------------

const { drawChart, formatNumber } = window.tierwiseCharts;

function chart(title, series, options) {
  const svg = document.createElementNS("http://www.w3.org/2000/svg", "svg");
  svg.setAttribute("class", "chart");
  drawChart(svg, series, { ...options, label: title });
  const legend = el("div", { class: "legend", "aria-hidden": "true" },
    ...series.map((s) => el("span", { class: s.cls }, `— ${s.name}`)));
  return el("figure", {}, el("figcaption", {}, title), svg, series.length > 1 ? legend : null);
}

function figure(label, value, extra) {
  return el("span", {}, `${label} `, el("b", {}, value), extra || "");
}

function planTable(feature) {
  if (!feature.plan.length) return null;
  const rows = feature.plan.map((c) => el("tr", { class: c.flagged ? "flagged" : null },
    el("th", { scope: "row" }, c.metric),
    el("td", {}, formatNumber(c.planned)),
    el("td", {}, formatNumber(c.measured)),
    el("td", { class: "gap" }, c.gap === null ? "–" : `${(c.gap * 100).toFixed(0)}%${c.flagged ? " ⚠" : ""}`)));
  return el("div", { class: "scroll" }, el("table", { class: "plan" },
    el("caption", { class: "visually-hidden" }, `Plan vs measured for ${feature.feature}`),
    el("thead", {}, el("tr", {},
      el("th", { scope: "col" }, "Plan vs measured"), el("th", { scope: "col" }, "planned"),
      el("th", { scope: "col" }, "measured"), el("th", { scope: "col" }, "gap"))),
    el("tbody", {}, ...rows)));
}

function featureBlock(site, f, span) {
  const last = f.points.length ? f.points[f.points.length - 1] : null;
  const misses = f.points.reduce((sum, p) => sum + p.deadline_misses, 0);
  const at = (key) => f.points.map((p) => [p.ts, p[key]]);
  const share = last && last.escalated_share !== null ? `${(last.escalated_share * 100).toFixed(1)}%` : "–";
  return el("div", { class: "feature", "data-feature": f.feature },
    el("h4", {}, `${f.feature}`, f.version ? ` — ${f.package} v${f.version}` : ""),
    el("div", { class: "figures" },
      figure("requests/s", formatNumber(last && last.requests_per_s)),
      figure("p50", `${formatNumber(last && last.p50_ms)} ms`),
      figure("p99", `${formatNumber(last && last.p99_ms)} ms`,
        f.deadline_ms ? ` / budget ${formatNumber(f.deadline_ms)} ms` : ""),
      figure("escalated", share),
      figure("deadline misses", String(misses))),
    el("div", { class: "charts" },
      chart(`p99 latency (ms) of ${f.feature} at ${site}`,
        [{ name: "p99", cls: "p99", points: at("p99_ms") },
          { name: "p50", cls: "p50", points: at("p50_ms") }],
        { budget: f.deadline_ms, unit: " ms", span }),
      chart(`requests/s of ${f.feature} at ${site}`,
        [{ name: "requests/s", cls: "rate", points: at("requests_per_s") }], { span })),
    planTable(f));
}

function outboxBlock(live, span) {
  const o = live.outbox;
  const approx = o.estimated ? "≈ " : "";
  const age = o.oldest_unsent_age_s === null ? "nothing waiting"
    : `oldest unsent ${approx}${formatNumber(o.oldest_unsent_age_s)} s`;
  return el("div", { class: "outbox" },
    el("div", { class: "figures" },
      el("span", {
        class: o.estimated ? "estimated" : null,
        "data-outbox": o.depth_events ?? "",
        "data-estimated": String(o.estimated),
      },
        "outbox ", el("b", {}, o.depth_events === null ? "–" : `${approx}${o.depth_events}`),
        " events", o.estimated ? " (estimated: no recent snapshot from the site)" : ""),
      el("span", {}, age),
      el("span", {}, `dropped ${o.dropped_events ?? "–"}`)),
    el("div", { class: "charts" },
      chart(`outbox depth (events) at ${live.site}`,
        [{ name: "depth", cls: "outbox", points: live.outbox_points.map((p) => [p.ts, p.depth_events]) }],
        { span })));
}

function driftBlock(live) {
  if (!live.drift.length) return null;
  const pct = (share) => `${(share * 100).toFixed(1)}%`;
  return el("div", { class: "drift" },
    el("h4", {}, "Escalation drift (newest first)"),
    el("ul", {}, ...live.drift.map((d) => el("li", { class: d.drifted ? "unhealthy" : null },
      `${new Date(d.ts * 1000).toLocaleTimeString()} ${d.feature} (${d.package} v${d.version}): `,
      d.drifted ? "drifted — " : "back — ",
      `hard share ${pct(d.observed)} of the last ${d.rows} rows vs ${pct(d.planned)} planned `
        + `(p = ${d.p_value.toPrecision(2)})`))));
}

function renderLive(lives) {
  $("live").replaceChildren(...lives.map((live) => {
    const status = live.online ? "online" : "offline";
    // Every chart of a site spans the same time: its snapshots' (the outbox has one a snapshot).
    const times = live.outbox_points.map((p) => p.ts);
    const span = times.length ? [times[0], times[times.length - 1]] : null;
    return el("article", { class: "site-card", "data-site": live.site, "aria-label": `Site ${live.site}` },
      el("h3", {}, live.site, el("span", { class: `badge ${status}` }, status)),
      outboxBlock(live, span),
      driftBlock(live),
      ...live.features.map((f) => featureBlock(live.site, f, span)));
  }));
}

// --- start --------------------------------------------------------------------------------

if (token()) showBoard();
else showLogin("");
