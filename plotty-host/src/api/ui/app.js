// The web UI's entry module: the shared state (jobs, progress, devices, alerts) fed by the
// WebSocket stream, the views (#/ queue, #/upload, #/job/<id>) and the device and alert panels.

import { $, el, button, fmtDuration, flash } from "./dom.js";
import { json, stream } from "./api.js";
import { createUpload } from "./upload.js";
import { createJobPage } from "./job.js";

/** What the page knows, kept current by the stream. */
const state = {
  jobs: new Map(),      // id -> job (the HTTP view, updated by job_state_change)
  progress: new Map(),  // id -> last job_progress
  devices: new Map(),   // deviceKey -> last device_status
  alerts: [],
};

const upload = createUpload(state);
const jobPage = createJobPage(state);

// ---- views ----

function route() {
  const hash = location.hash || "#/";
  const job = hash.match(/^#\/job\/([^/]+)$/);
  const view = job ? "job" : hash === "#/upload" ? "upload" : "queue";
  for (const v of ["queue", "upload", "job"]) $("view-" + v).hidden = v !== view;
  $("nav-queue").classList.toggle("active", view === "queue");
  $("nav-upload").classList.toggle("active", view === "upload");
  if (view === "upload") upload.shown();
  if (job) jobPage.show(decodeURIComponent(job[1]));
  else jobPage.hide();
}
window.addEventListener("hashchange", route);

function stateLabel(j) {
  // A plot on the simulator drew nothing: never shown as a drawn one.
  if (!j.simulated) return j.state;
  return j.state === "COMPLETED" ? "COMPLETED (simulated, nothing drawn)" : j.state + " (simulated)";
}

/** Which jobs each filter of the list shows. */
const FILTERS = {
  all: () => true,
  waiting: (j) => ["NEW", "QUEUED", "ANALYZED", "OPTIMIZED", "READY"].includes(j.state),
  active: (j) => ["ARMED", "PLOTTING", "PAUSED"].includes(j.state),
  finished: (j) => ["COMPLETED", "ABORTED", "FAILED"].includes(j.state),
};
let filter = "all";
for (const b of document.querySelectorAll("#filters button")) {
  b.addEventListener("click", () => {
    filter = b.dataset.filter;
    for (const o of document.querySelectorAll("#filters button")) o.classList.toggle("active", o === b);
    renderJobs();
  });
}

/** The time column: when a finished job ended and how long it took, else the planned time. */
function timeLabel(j) {
  const t = j.timing || {};
  if (t.finished_at) return t.finished_at.replace("T", " ").slice(0, 16) + (t.elapsed_s != null ? " · " + fmtDuration(t.elapsed_s) : "");
  const planned = t.estimate_post_s ?? t.estimate_pre_s;
  return planned != null ? "planned " + fmtDuration(planned) : "";
}

/** The search box and the state menu, on top of the filter buttons. */
function matches(j) {
  const text = $("job-search").value.trim().toLowerCase();
  const st = $("job-state-filter").value;
  if (st && j.state !== st) return false;
  return !text || (j.name || "").toLowerCase().includes(text) || j.id.toLowerCase().includes(text);
}
$("job-search").addEventListener("input", () => renderJobs());
$("job-state-filter").addEventListener("change", () => renderJobs());

function renderJobs() {
  const body = $("jobs");
  body.replaceChildren();
  const list = [...state.jobs.values()]
    .filter(FILTERS[filter])
    .filter(matches)
    .sort((a, b) => (b.created_at || "").localeCompare(a.created_at || ""));
  if (!list.length) {
    const td = el("td", state.jobs.size ? "no jobs here" : "no jobs — upload an SVG", "muted");
    td.colSpan = 6;
    body.appendChild(el("tr")).appendChild(td);
  }
  for (const j of list) {
    const tr = el("tr");
    tr.dataset.job = j.id;
    const link = el("a", j.id);
    link.href = "#/job/" + encodeURIComponent(j.id);
    tr.appendChild(el("td", undefined, "id")).appendChild(link);
    tr.appendChild(el("td", j.name || ""));
    const st = el("td", stateLabel(j), "state");
    if (j.state_reason && ["PAUSED", "FAILED", "ABORTED"].includes(j.state)) st.title = j.state_reason + (j.error ? ": " + j.error : "");
    tr.appendChild(st);
    tr.appendChild(el("td", String(j.priority ?? "")));
    tr.appendChild(el("td", timeLabel(j), "muted"));
    const td = el("td"), p = state.progress.get(j.id);
    if (p) {
      const b = el("div", undefined, "bar"), f = el("div");
      f.style.width = (p.progress * 100).toFixed(1) + "%";
      b.appendChild(f);
      b.title = p.progress_percentage + "%";
      td.appendChild(b);
    }
    tr.appendChild(td);
    body.appendChild(tr);
  }
}

// ---- device panel ----

const DEVICE_ACTIONS = [["pen-up", "Pen up"], ["pen-down", "Pen down"], ["motors-on", "Motors on"], ["motors-off", "Motors off"], ["home", "Home"]];

/** Each device's panel, built once: a status update rewrites its figures, never its controls
 *  (a walk being typed in survives the status a plot sends ten times a second). */
const panels = new Map(); // deviceKey -> { root, dl, controls: [elements disabled while busy] }

/** A plotter's key: its id, and for another daemon's (a farm) that daemon too (two daemons'
 *  unnamed plotters may share an id). */
function deviceKey(d) {
  return d.remote ? d.daemon + "/" + d.device_id : d.device_id;
}

function devicePanel(d) {
  let p = panels.get(deviceKey(d));
  if (p) return p;
  const root = el("div", undefined, "device");
  const dl = el("dl");
  root.appendChild(dl);
  const controls = [];
  const actions = el("div", undefined, "actions");
  for (const [action, label] of DEVICE_ACTIONS) {
    const b = button(label, () => deviceAction(d.device_id, action));
    b.dataset.action = action;
    controls.push(b);
    actions.appendChild(b);
  }
  root.appendChild(actions);
  // Walk the carriage by a distance (the daemon refuses a walk outside the travel).
  const walk = el("form", undefined, "walk");
  const mm = (name) => {
    const i = el("input");
    i.type = "number"; i.step = "0.1"; i.value = "0"; i.name = name; i.id = "walk-" + name;
    const label = el("label", name + " ");
    label.appendChild(i);
    walk.appendChild(label);
    return i;
  };
  const x = mm("x"), y = mm("y");
  const go = el("button", "Walk (mm)");
  go.type = "submit";
  controls.push(go);
  walk.appendChild(go);
  walk.addEventListener("submit", (e) => {
    e.preventDefault();
    const q = "?x_mm=" + encodeURIComponent(x.value || "0") + "&y_mm=" + encodeURIComponent(y.value || "0");
    deviceAction(d.device_id, "walk" + q);
  });
  root.appendChild(walk);
  // Pen height test: the pen to a trial height now (the config's heights are unchanged).
  const height = el("form", undefined, "walk pen-height");
  const which = el("select");
  which.id = "height-position";
  which.setAttribute("aria-label", "which position");
  for (const [v, label] of [["down", "pen down"], ["up", "pen up"]]) {
    const o = el("option", label);
    o.value = v;
    which.appendChild(o);
  }
  const pct = el("input");
  pct.type = "number"; pct.step = "any"; pct.id = "height-percent"; pct.required = true;
  const pctLabel = el("label", "height % ");
  pctLabel.appendChild(pct);
  const tryIt = el("button", "Try height");
  tryIt.type = "submit";
  tryIt.id = "height-try";
  controls.push(tryIt);
  height.append(which, pctLabel, tryIt);
  height.addEventListener("submit", (e) => {
    e.preventDefault();
    deviceAction(d.device_id, "pen-height?position=" + which.value + "&percent=" + encodeURIComponent(pct.value));
  });
  root.appendChild(height);
  // A past error, with what to do, and the button that clears it.
  const problem = el("div", undefined, "device-error");
  problem.hidden = true;
  const problemText = el("p");
  const clear = button("Clear", () => deviceAction(d.device_id, "clear-error"), undefined, "device-clear");
  problem.append(problemText, clear);
  root.insertBefore(problem, actions);
  p = { root, dl, controls, problem, problemText, clear };
  panels.set(deviceKey(d), p);
  return p;
}

function renderDevice() {
  const box = $("device");
  for (const id of [...panels.keys()]) if (!state.devices.has(id)) { panels.get(id).root.remove(); panels.delete(id); }
  if (!state.devices.size) { box.replaceChildren(); box.textContent = "no plotter attached"; box.className = "muted"; return; }
  if (box.className === "muted") { box.replaceChildren(); box.className = ""; }
  for (const d of state.devices.values()) {
    const p = devicePanel(d);
    if (!p.root.parentNode) box.appendChild(p.root);
    p.dl.replaceChildren();
    const row = (k, v, cls, id) => { p.dl.appendChild(el("dt", k)); const dd = p.dl.appendChild(el("dd", v, cls)); if (id) dd.id = id; };
    row("device", d.device_id + " (" + d.device_type + (d.simulated ? ": nothing is drawn on paper" : "") + ")");
    // A farm: the daemon the plotter is attached to; another daemon's is shown, never driven.
    if (d.daemon) row("daemon", d.daemon + (d.remote ? " (another daemon: manual control there)" : ""), undefined, "device-daemon");
    if (d.notice) row("note", d.notice, "warn");
    row("status", d.status);
    p.problem.hidden = !d.error_message;
    p.problemText.textContent = d.error_message ? "Last error: " + d.error_message + " — " + advice(d) : "";
    row("firmware", d.firmware_version || "–");
    const supply = d.motor_supply;
    row("motor supply", supply ? "QC " + supply.reading + (supply.low ? " — too low to plot: check the power supply" : " (enough)") : "– (read while idle every 15 s, and when a plot starts)",
      supply && supply.low ? "warn" : undefined, "device-supply");
    row("pen", d.pen_up == null ? "–" : d.pen_up ? "up" : "down");
    row("position", d.position ? d.position.x.toFixed(1) + ", " + d.position.y.toFixed(1) + " mm" : "–", undefined, "device-position");
    row("job", d.current_job_id || "–");
    // Manual control only while no job holds the device, and only of this daemon's plotters
    // (the daemon refuses it anyway).
    for (const c of p.controls) c.disabled = !!d.current_job_id || !!d.remote;
    p.clear.disabled = !!d.remote;
  }
}

/** What to do about a device's error. */
function advice(d) {
  if (d.status === "disconnected" || d.status === "offline") return "check the USB cable and the plotter's power; plotty reconnects by itself.";
  if (/motor supply|power supply/i.test(d.error_message)) return "check the motor power supply (its plug and switch), then start the job again. Clear this once dealt with.";
  return "check the plotter, home it if the carriage moved, then Clear this.";
}

async function deviceAction(id, action) {
  try {
    const r = await json("POST", "/api/devices/" + encodeURIComponent(id) + "/" + action);
    flash(r.message);
  } catch (e) { flash(action.split("?")[0] + ": " + e.message); }
}

// ---- alerts ----

function renderAlerts() {
  const ul = $("alerts");
  ul.replaceChildren();
  if (!state.alerts.length) { ul.appendChild(el("li", "none")); return; }
  ul.className = "";
  for (const a of state.alerts.slice(-20).reverse()) {
    ul.appendChild(el("li", (a.timestamp || "").slice(11, 19) + " " + a.title + ": " + a.message, a.severity));
  }
}

// ---- the stream ----

function onMessage(m) {
  switch (m.type) {
    case "hello":
      $("conn").textContent = "connected (plotty " + m.daemon_version + ")";
      $("conn").className = "pill ok";
      break;
    case "job_state_change": {
      const j = state.jobs.get(m.job_id) || { id: m.job_id, name: m.job_name };
      if (m.metadata && m.metadata.priority !== undefined) j.priority = m.metadata.priority;
      j.state = m.to_state;
      j.name = m.job_name || j.name;
      if (!m.snapshot) j.state_reason = m.reason;
      if (m.snapshot && m.metadata) j.state_reason = m.metadata.state_reason;
      if (m.error !== undefined) j.error = m.error;
      if (m.metadata && m.metadata.simulated) j.simulated = true;
      if (m.metadata && Array.isArray(m.metadata.warnings)) j.warnings = m.metadata.warnings;
      // The layer whose pen a pen-change pause waits for (until the job moves on).
      j.pen_change = m.reason === "pen_change" && m.metadata ? m.metadata.layer : undefined;
      state.jobs.set(m.job_id, j);
      if (["COMPLETED", "ABORTED", "FAILED"].includes(m.to_state)) {
        state.progress.delete(m.job_id);
        refreshJob(m.job_id);
      }
      renderJobs();
      upload.jobChanged(j);
      jobPage.jobChanged(j, m);
      break;
    }
    case "job_deleted":
      state.jobs.delete(m.job_id);
      state.progress.delete(m.job_id);
      renderJobs();
      jobPage.jobChanged({ id: m.job_id, deleted: true });
      break;
    case "job_progress":
      state.progress.set(m.job_id, m);
      renderJobs();
      jobPage.progress(m);
      break;
    case "device_status":
      state.devices.set(deviceKey(m), m);
      renderDevice();
      jobPage.device(m);
      break;
    case "system_status": {
      $("health").textContent = m.status;
      $("health").className = "pill " + (m.status === "healthy" ? "ok" : "warn");
      const pct = (f) => (f == null ? "–" : (f * 100).toFixed(1) + "%");
      $("sys").textContent = "up " + fmtDuration(m.uptime) + " · " + m.queue_length + " waiting · " + m.active_jobs +
        " active · cpu " + pct(m.cpu_usage) + " · mem " + pct(m.memory_usage);
      break;
    }
    case "system_alert":
      // A replayed alert (snapshot) keeps the timestamp it was raised with: one raised while the
      // snapshot was sent may come twice, and is shown once.
      if (state.alerts.some((a) => a.timestamp === m.timestamp && a.title === m.title && a.message === m.message)) break;
      state.alerts.push(m);
      renderAlerts();
      break;
    case "device_removed":
      // `auto` switched an unnamed plotter from the simulator to an AxiDraw: its old id is gone
      // (another daemon's with that daemon: deviceKey).
      state.devices.delete(deviceKey(m));
      renderDevice();
      break;
    case "error":
      if (m.error_code !== "LAGGED") flash(m.error_code + ": " + m.error_message);
      break;
  }
}

/** Reads one job again (its times once it ended: the stream does not carry them). */
async function refreshJob(id) {
  try {
    const j = await json("GET", "/api/jobs/" + encodeURIComponent(id));
    const known = state.jobs.get(id);
    if (!known) return;
    known.timing = j.timing;
    known.error = j.error;
    known.state_reason = j.state_reason;
    renderJobs();
  } catch (_) { /* deleted meanwhile: the stream says so */ }
}

async function loadJobs() {
  try {
    const r = await json("GET", "/api/jobs?limit=200");
    state.jobs.clear();
    for (const j of r.jobs) { state.jobs.set(j.id, j); if (j.progress) state.progress.set(j.id, j.progress); }
    renderJobs();
  } catch (e) { flash("cannot list the jobs: " + e.message); }
}

async function start() {
  route();
  // An HTTP request first: if the daemon wants a key, the dialog asks for it before the
  // WebSocket (which cannot see a 401) connects.
  await loadJobs();
  stream(
    (ws) => { ws.send(JSON.stringify({ type: "subscribe", channels: ["all"] })); loadJobs(); },
    onMessage,
    (s) => {
      if (s === "open") return;
      $("conn").textContent = "disconnected, " + s;
      $("conn").className = "pill bad";
    },
  );
}
start();
