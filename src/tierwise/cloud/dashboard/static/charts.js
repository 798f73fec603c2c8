// Small line charts in plain SVG: one or more series over time, an optional budget line.
// No library: the page must work on an operator's offline machine, and this is all it needs.
(() => {
"use strict";

const SVG_NS = "http://www.w3.org/2000/svg";
const WIDTH = 320;
const HEIGHT = 120;
const PAD = { left: 40, right: 8, top: 10, bottom: 18 };

function svgElement(name, attrs) {
  const el = document.createElementNS(SVG_NS, name);
  for (const [key, value] of Object.entries(attrs || {})) el.setAttribute(key, String(value));
  return el;
}

function niceMax(value) {
  if (!(value > 0)) return 1;
  const power = Math.pow(10, Math.floor(Math.log10(value)));
  for (const step of [1, 2, 2.5, 5, 10]) {
    if (step * power >= value) return step * power;
  }
  return 10 * power;
}

function formatNumber(value) {
  if (value === null || value === undefined || Number.isNaN(value)) return "–";
  // Axis labels have 36 px: an hour's budget in ms reads 3.6M, not 3600000.
  if (Math.abs(value) >= 1e6) return `${+(value / 1e6).toFixed(1)}M`;
  if (Math.abs(value) >= 1e4) return `${+(value / 1e3).toFixed(1)}k`;
  if (Math.abs(value) >= 100) return value.toFixed(0);
  if (Math.abs(value) >= 10) return value.toFixed(1);
  return value.toFixed(2);
}

// Draw `series` ([{name, cls, points: [[ts, value|null], ...]}]) into `svg`, replacing what
// it showed. `budget` (a number) draws a dashed line; `label` names the chart for screen readers.
function drawChart(svg, series, options) {
  const { budget = null, label = "", unit = "", span = null } = options || {};
  svg.setAttribute("viewBox", `0 0 ${WIDTH} ${HEIGHT}`);
  svg.setAttribute("role", "img");
  while (svg.firstChild) svg.removeChild(svg.firstChild);

  const all = series.flatMap((s) => s.points.filter((p) => p[1] !== null));
  const times = all.map((p) => p[0]);
  // `span` ([t0, t1]) lines up the charts of one site; else the data's own range.
  const t0 = span ? span[0] : times.length ? Math.min(...times) : 0;
  const t1 = span ? span[1] : times.length ? Math.max(...times) : 1;
  const top = niceMax(Math.max(budget || 0, ...all.map((p) => p[1]), 0) * 1.1);
  const x = (t) => PAD.left + ((t - t0) / Math.max(t1 - t0, 1e-9)) * (WIDTH - PAD.left - PAD.right);
  const y = (v) => HEIGHT - PAD.bottom - (v / top) * (HEIGHT - PAD.top - PAD.bottom);

  svg.appendChild(svgElement("line", {
    x1: PAD.left, x2: WIDTH - PAD.right, y1: y(0), y2: y(0), class: "axis",
  }));
  for (const value of [0, top / 2, top]) {
    const text = svgElement("text", { x: PAD.left - 4, y: y(value) + 4, class: "tick" });
    text.textContent = formatNumber(value);
    svg.appendChild(text);
  }
  const spanText = svgElement("text", { x: WIDTH - PAD.right, y: HEIGHT - 4, class: "tick end" });
  spanText.textContent = times.length ? `last ${Math.round(t1 - t0)} s` : "no data yet";
  svg.appendChild(spanText);
  if (budget !== null) {
    svg.appendChild(svgElement("line", {
      x1: PAD.left, x2: WIDTH - PAD.right, y1: y(budget), y2: y(budget), class: "budget",
    }));
  }

  const described = [];
  for (const s of series) {
    // A null value breaks the line: an interval the site did not measure.
    let run = [];
    const runs = [run];
    for (const [t, v] of s.points) {
      if (v === null) {
        run = [];
        runs.push(run);
      } else {
        run.push(`${x(t).toFixed(1)},${y(v).toFixed(1)}`);
      }
    }
    for (const points of runs.filter((r) => r.length)) {
      const line = svgElement(points.length > 1 ? "polyline" : "circle", points.length > 1
        ? { points: points.join(" "), class: `line ${s.cls}` }
        : { cx: points[0].split(",")[0], cy: points[0].split(",")[1], r: 2, class: `dot ${s.cls}` });
      svg.appendChild(line);
    }
    const last = s.points.filter((p) => p[1] !== null).pop();
    described.push(`${s.name} ${last ? formatNumber(last[1]) + unit : "no data"}`);
  }
  const budgetText = budget !== null ? `, budget ${formatNumber(budget)}${unit}` : "";
  svg.setAttribute("aria-label", `${label}: ${described.join(", ")}${budgetText}`);
  svg.dataset.points = String(all.length);
  svg.dataset.last = all.length ? String(all[all.length - 1][1]) : "";
}

window.tierwiseCharts = { drawChart, formatNumber };
})();
