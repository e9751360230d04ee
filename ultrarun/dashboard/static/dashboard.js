// ultrarun dashboard: polls /api/poll, and on a change fetches the figures and the table page.
// Every text from the run is set with textContent (never innerHTML); plot labels the server
// escaped. docs/dashboard.md says what each view shows.
"use strict";

const POLL_MS = 500;
const token = new URLSearchParams(location.search).get("token");
const state = {
  cursor: 0, version: -1, figuresVersion: -1, tableVersion: -1, figuresBusy: false,
  tableBusy: false, budgets: [], statuses: [], offBudgets: new Set(), offStatuses: new Set(),
  sort: "finished", order: "desc", offset: 0, limit: 50, q: "", filterKey: "",
};

function api(path, query) {
  const q = new URLSearchParams(query || {});
  if (token) q.set("token", token);
  return fetch(path + "?" + q.toString(), { cache: "no-store" }).then((r) => {
    if (!r.ok) throw new Error(path + ": HTTP " + r.status);
    return r.json();
  });
}

function el(id) { return document.getElementById(id); }

function fmt(x) {
  if (x === null || x === undefined) return "–";
  if (typeof x !== "number") return String(x);
  if (Number.isInteger(x) && Math.abs(x) < 1e15) return String(x);
  return String(Number(x.toPrecision(6)));
}

function text(node, value) { node.textContent = value; return node; }

function make(tag, value, cls) {
  const node = document.createElement(tag);
  if (value !== undefined) node.textContent = value;
  if (cls) node.className = cls;
  return node;
}

function filterQuery() {
  const q = {};
  if (state.offBudgets.size) q.budgets = state.budgets.filter((b) => !state.offBudgets.has(b)).join(",");
  if (state.offStatuses.size) q.statuses = state.statuses.filter((s) => !state.offStatuses.has(s)).join(",");
  return q;
}

// ---------------------------------------------------------------------------- summary
function renderSummary(s) {
  text(el("run-name"), s.directory + (s.run_id ? " (run " + s.run_id + ")" : ""));
  text(el("n-runs"), String(s.runs));
  text(el("n-configs"), String(s.configurations));
  const inc = s.incumbent;
  text(el("incumbent-loss"), inc ? fmt(inc.loss) : "none yet");
  el("incumbent-loss").dataset.value = inc ? String(inc.loss) : "";
  text(el("incumbent-where"), inc ? "budget " + fmt(inc.budget) + ", config " + inc.id + " " + JSON.stringify(inc.config) : "");
  text(el("wall-time"), fmt(s.wall_time));
  text(el("by-status"), Object.entries(s.by_status).map(([k, v]) => k + ": " + v).join(", ") || "none");
  text(el("best-per-budget"), s.best_per_budget.map((b) => fmt(b.budget) + ": " + fmt(b.loss)).join(", ") || "none yet");
  renderFilters(s);
}

function renderFilters(s) {
  const statuses = Object.keys(s.by_status);
  syncChecks(el("budget-filters"), s.budgets, state.budgets, state.offBudgets, (b) => "budget " + fmt(b));
  state.budgets = s.budgets.slice();
  syncChecks(el("status-filters"), statuses, state.statuses, state.offStatuses, (x) => x);
  state.statuses = statuses;
}

function syncChecks(box, values, before, off, label) {
  if (JSON.stringify(values) === JSON.stringify(before)) return;
  box.replaceChildren();
  for (const value of values) {
    const input = document.createElement("input");
    input.type = "checkbox";
    input.checked = !off.has(value);
    input.dataset.value = String(value);
    input.addEventListener("change", () => {
      if (input.checked) off.delete(value); else off.add(value);
      state.offset = 0;
      refreshFigures(true);
      refreshTable(true);
    });
    const wrap = make("label");
    wrap.append(input, " " + label(value));
    box.append(wrap);
  }
}

function renderDispatcher(d) {
  const box = el("dispatcher");
  if (!d) { box.hidden = true; return; }
  box.hidden = false;
  const body = el("workers").tBodies[0];
  body.replaceChildren();
  if (!d.connected) {
    text(el("dispatcher-summary"), "not connected: " + (d.error || ""));
    return;
  }
  const q = d.dispatcher;
  text(el("dispatcher-summary"), q ? "queued " + q.queued + ", running " + q.running + ", finished " +
    Object.entries(q.finished || {}).map(([k, v]) => k + " " + v).join(", ") : "no dispatcher registered (no master running)");
  const now = Date.now() / 1000;
  for (const w of d.workers) {
    const row = body.insertRow();
    const job = w.job ? JSON.stringify(w.job.id) + " b=" + fmt(w.job.budget) : "";
    for (const v of [w.name, w.host, w.pid, w.state, job, w.jobs_done, w.last_seen ? (now - w.last_seen).toFixed(1) + " s ago" : ""]) {
      row.insertCell().textContent = v === null || v === undefined ? "" : String(v);
    }
  }
}

// ---------------------------------------------------------------------------- figures
const BASE_LAYOUT = { margin: { l: 60, r: 20, t: 20, b: 50 }, height: 360, hovermode: "closest", autosize: true };
const CONFIG = { responsive: true, displaylogo: false };

function plot(node, fig, height) {
  if (!fig || fig.empty) {
    if (node.dataset.plotted) { Plotly.purge(node); delete node.dataset.plotted; }
    node.replaceChildren(make("div", "No data: " + (fig ? fig.empty : "none"), "empty"));
    return;
  }
  if (!node.dataset.plotted) node.replaceChildren();
  const layout = Object.assign({}, BASE_LAYOUT, fig.layout, { uirevision: node.id + state.filterKey });
  if (height) layout.height = height;
  Plotly.react(node, fig.data, layout, CONFIG);
  node.dataset.plotted = "1";
}

function sampledNote(id, meta) {
  const shown = meta ? meta.shown : 0, total = meta ? meta.total : 0;
  text(el(id), shown < total ? "Showing " + shown + " of " + total + " (the best and an even sample)." : "");
}

const PARALLEL_EVERY_MS = 10000;  // WebGL in a browser without a GPU is slow: not every poll
const yieldToBrowser = () => new Promise((resolve) => setTimeout(resolve, 0));

async function renderFigures(f) {
  // one figure per task, so that polls, the summary and the table are not held up
  plot(el("fig-losses"), f.losses);
  let shown = 0, total = 0;
  for (const t of (f.losses.data || [])) if (t.meta && t.meta.total) { shown += t.meta.shown; total += t.meta.total; }
  sampledNote("losses-sampled", { shown, total });
  await yieldToBrowser();
  plot(el("fig-trajectory"), f.trajectory);
  await yieldToBrowser();
  plot(el("fig-finished"), f.finished);
  await yieldToBrowser();
  plot(el("fig-concurrency"), f.concurrency);
  await yieldToBrowser();
  plot(el("fig-importance"), f.importance);
  const m = f.importance.meta;
  text(el("importance-note"), m
    ? "Method: PED-ANOVA (Watanabe et al., 2023): per hyperparameter, the Pearson divergence between the distribution of its values in the best " +
      Math.round(m.quantile * 100) + "% of runs and in all " + m.runs + " successful runs on budget " + fmt(m.budget) +
      " (1-D Parzen estimates; log scale where the space says log), as a share of the total. Not causal: it says where good configurations are concentrated."
    : "Method: PED-ANOVA (Watanabe et al., 2023), once a budget has enough successful runs.");
  await yieldToBrowser();
  plot(el("fig-correlation"), f.correlation);
  await yieldToBrowser();
  renderParameters(f.parameters || []);
  await yieldToBrowser();
  state.parallel = f.parallel;
  renderParallel(false);
}

function renderParallel(late) {
  const now = Date.now();
  if (!state.parallel || (late && !state.parallelPending)) return;
  if (state.parallelKey !== state.filterKey || now - (state.parallelAt || 0) >= PARALLEL_EVERY_MS) {
    plot(el("fig-parallel"), state.parallel, 420);
    sampledNote("parallel-sampled", state.parallel.meta);
    state.parallelAt = now;
    state.parallelKey = state.filterKey;
    state.parallelPending = false;
  } else {
    state.parallelPending = true;  // drawn by a later poll: the last picture is never skipped
  }
}

function renderParameters(panels) {
  const box = el("fig-parameters");
  if (!panels.length) {
    box.replaceChildren(make("p", "No data: no successful run yet", "muted"));
    delete box.dataset.names;
    return;
  }
  const names = panels.map((p) => p.name).join("\u0000");
  if (box.dataset.names !== names) {
    box.replaceChildren();
    panels.forEach((p, i) => {
      const wrap = make("div");
      wrap.append(make("h3", p.name + (p.log ? " (log)" : "")));
      const div = make("div", undefined, "plot");
      div.id = "fig-param-" + i;
      wrap.append(div);
      box.append(wrap);
    });
    box.dataset.names = names;
  }
  panels.forEach((p, i) => plot(el("fig-param-" + i), p.figure, 260));
}

function refreshFigures(force) {
  // at most once a second, and for a large run not more often than twice the time drawing took
  if (state.figuresBusy) return;
  const key = JSON.stringify(filterQuery());
  if (!force && key === state.filterKey &&
      (state.figuresVersion >= state.version || Date.now() < (state.figuresNextAt || 0))) return;
  state.figuresBusy = true;
  state.filterKey = key;
  const started = performance.now();
  api("/api/figures", filterQuery()).then((r) => {
    if (r.version === state.figuresVersion && !force) return null;  // the server's are not newer
    state.figuresVersion = r.version;
    return renderFigures(r.figures);
  }).catch(showError).finally(() => {
    state.figuresBusy = false;
    state.figuresNextAt = Date.now() + Math.max(1000, 2 * (performance.now() - started));
  });
}

// ------------------------------------------------------------------------------ table
const COLUMNS = ["config_id", "budget", "status", "loss", "duration", "finished", "worker", "config", "error"];

function renderTable(page) {
  const body = el("runs-table").tBodies[0];
  body.replaceChildren();
  for (const r of page.rows) {
    const row = body.insertRow();
    row.dataset.index = r.index;
    if (r.status !== "SUCCESS") row.className = "failed";
    row.insertCell().textContent = r.config_id;
    for (const [v, num] of [[fmt(r.budget), 1], [r.status, 0], [fmt(r.loss), 1], [fmt(r.duration), 1], [fmt(r.finished), 1], [r.worker || "", 0]]) {
      const c = row.insertCell();
      c.textContent = v;
      if (num) c.className = "num";
    }
    row.insertCell().append(make("code", JSON.stringify(r.config)));
    const err = row.insertCell();
    if (r.error) {
      const lines = r.error.trim().split("\n");
      const d = make("details");
      d.append(make("summary", lines[lines.length - 1].slice(0, 120)), make("pre", r.error));
      err.append(d);
    }
  }
  text(el("runs-total"), "(" + page.total + (page.total === 1 ? " run" : " runs") + " shown by the filters)");
  const last = Math.min(page.offset + page.limit, page.total);
  text(el("runs-page-info"), page.total ? (page.offset + 1) + "–" + last + " of " + page.total : "none");
  el("runs-prev").disabled = page.offset === 0;
  el("runs-next").disabled = last >= page.total;
  for (const th of el("runs-table").tHead.rows[0].cells) {
    th.className = th.dataset.sort === state.sort ? "sorted-" + state.order : "";
  }
}

function refreshTable(force) {
  if (state.tableBusy) { state.tablePending = true; return; }
  if (!force && state.tableVersion >= state.version) return;
  state.tableBusy = true;
  const q = Object.assign(filterQuery(), { sort: state.sort, order: state.order, offset: state.offset, limit: state.limit, q: state.q });
  api("/api/runs", q).then((page) => {
    state.tableVersion = page.version;
    renderTable(page);
  }).catch(showError).finally(() => {
    state.tableBusy = false;
    if (state.tablePending) { state.tablePending = false; refreshTable(true); }
  });
}

function wireTable() {
  for (const th of el("runs-table").tHead.rows[0].cells) {
    th.addEventListener("click", () => {
      if (state.sort === th.dataset.sort) state.order = state.order === "asc" ? "desc" : "asc";
      else { state.sort = th.dataset.sort; state.order = th.dataset.sort === "loss" ? "asc" : "desc"; }
      state.offset = 0;
      refreshTable(true);
    });
  }
  el("runs-prev").addEventListener("click", () => { state.offset = Math.max(0, state.offset - state.limit); refreshTable(true); });
  el("runs-next").addEventListener("click", () => { state.offset += state.limit; refreshTable(true); });
  let timer = null;
  el("runs-search").addEventListener("input", (e) => {
    clearTimeout(timer);
    timer = setTimeout(() => { state.q = e.target.value; state.offset = 0; refreshTable(true); }, 250);
  });
}

// ------------------------------------------------------------------------------- poll
function showError(err) {
  text(el("live"), "error: " + err.message + " (retrying)");
}

function poll() {
  api("/api/poll", { cursor: state.cursor }).then((p) => {
    renderSummary(p.summary);
    renderDispatcher(p.dispatcher);
    state.cursor = p.cursor;
    state.version = p.version;
    const src = p.summary.source ? "reading " + p.summary.source : "waiting for result logs to appear";
    text(el("live"), "live: " + src + "; last checked " + new Date().toLocaleTimeString() +
      (p.new ? "; " + p.new + " new run(s)" : ""));
    refreshTable(false);
    refreshFigures(false);
    renderParallel(true);
  }).catch(showError).finally(() => { setTimeout(poll, POLL_MS); });
}

wireTable();
poll();
