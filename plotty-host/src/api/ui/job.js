// A job's page (#/job/<id>): its preview (pen-down strokes by layer colour, the pen-up path), the
// actions its state allows (Start asks whether the paper is in), the reason of a PAUSED, FAILED
// or ABORTED state, its import warnings, progress and ETA, its history, and while it plots the
// pen's trail drawn over the preview from the device status's position.

import { $, el, button, fmtDuration, flash, jobError } from "./dom.js";
import { json, request } from "./api.js";
import { describeOptions } from "./settings.js";

/** The actions each state allows (the daemon checks them again). */
const ACTIONS = {
  NEW: ["cancel"], QUEUED: ["cancel"], ANALYZED: ["cancel"], OPTIMIZED: ["cancel"],
  READY: ["start", "cancel"], ARMED: ["abort"], PLOTTING: ["pause", "abort"], PAUSED: ["resume", "abort"],
  COMPLETED: ["delete"], ABORTED: ["retry", "delete"], FAILED: ["retry", "delete"],
};
const LABELS = { start: "Start", pause: "Pause", resume: "Resume", abort: "Abort", cancel: "Cancel", retry: "Retry", delete: "Delete" };
const DANGER = new Set(["abort", "cancel", "delete"]);
/** Most points kept in the trail (a long plot would otherwise grow the page without end). */
const TRAIL_MAX = 20000;

/** Why a job is PAUSED, FAILED or ABORTED, and what to do, from its reason and error. */
export function explain(j, layerName) {
  const err = j.error ? " " + jobError(j.error) : "";
  if (j.state === "PAUSED") {
    switch (j.state_reason) {
      case "pen_change": return ["Pen change: " + (layerName ? "put in the pen for layer " + layerName : "put in the next layer's pen") + ", then press Resume.", false];
      case "user": return ["Paused (user): the pen is up; press Resume to go on.", false];
      case "device_error": return ["Paused (device_error): the plotter reported a problem." + err + " Fix it, then press Resume.", true];
      case "interrupted": return ["Paused (interrupted): the daemon stopped while this job was plotting. Home the carriage if asked, then press Resume.", true];
      case "shutdown": return ["Paused (shutdown): the daemon was shut down during the plot; press Resume to go on.", false];
      default: return ["Paused (" + (j.state_reason || "unknown reason") + ")." + err, !!j.error];
    }
  }
  if (j.state === "FAILED") return ["Failed (" + (j.state_reason || "error") + "):" + (err || " no message recorded."), true];
  if (j.state === "ABORTED") return ["Aborted (" + (j.state_reason || "user") + ")." + err + " Retry makes a new job of the same drawing.", !!j.error];
  return null;
}

export function createJobPage(state) {
  let current = null;   // the job shown
  let details = null;   // its GET /api/jobs/{id}
  let previewOf = null; // the job whose preview is in the page
  let trail = [];       // [x, y, penDown] of the pen while it plots

  let loads = 0;         // requests of the details made, to apply only the newest answer

  async function load() {
    const id = current, seq = ++loads;
    try {
      const d = await json("GET", "/api/jobs/" + encodeURIComponent(id));
      if (id !== current || seq !== loads) return;
      details = d;
      render();
      if (previewOf !== id && d.has_source) loadPreview(id);
    } catch (e) {
      if (id !== current) return;
      $("job-title").textContent = "Job " + id;
      setReason(e.message, true);
    }
  }

  async function loadPreview(id) {
    previewOf = id;
    trail = [];
    const box = $("job-preview");
    box.replaceChildren(el("p", "rendering the preview…", "muted"));
    try {
      const r = await request("GET", "/api/jobs/" + encodeURIComponent(id) + "/preview.svg?pen_up=1");
      if (id !== current) return;
      if (!r.ok) {
        const b = await r.json().catch(() => ({}));
        box.replaceChildren(el("p", "No preview: " + (b.error_message || "HTTP " + r.status), "error"));
        return;
      }
      const doc = new DOMParser().parseFromString(await r.text(), "image/svg+xml");
      const svg = document.importNode(doc.documentElement, true);
      svg.querySelectorAll("script, foreignObject").forEach((n) => n.remove());
      svg.id = "preview";
      box.replaceChildren(svg);
      drawTrail();
    } catch (e) {
      box.replaceChildren(el("p", "No preview: " + e.message, "error"));
    }
  }

  function setReason(text, bad) {
    const r = $("job-reason");
    r.hidden = !text;
    r.textContent = text || "";
    r.className = "reason" + (bad ? " bad" : "");
  }

  function job() {
    // The details are read again after every change the stream reports, so they are the
    // authority (an action's answer or a stream message may be older than they are); the stream
    // only adds what the details do not say.
    const live = state.jobs.get(current) || {};
    return { ...details, simulated: details.simulated || live.simulated, pen_change: details.state === "PAUSED" ? live.pen_change : undefined };
  }

  function render() {
    if (!details) return;
    const j = job();
    $("job-title").textContent = (j.name || "Job") + " (" + j.id + ")";
    const st = $("job-state");
    st.textContent = j.simulated ? j.state + " (simulated)" : j.state;
    st.className = "pill " + ({ COMPLETED: "ok", FAILED: "bad", ABORTED: "bad", PAUSED: "warn" }[j.state] || "");
    const layers = details.layers || [];
    const t = details.timing || {};
    const meta = [];
    if (layers.length) meta.push(layers.length + " layer" + (layers.length > 1 ? "s" : ""));
    if (t.estimate_post_s != null || t.estimate_pre_s != null) meta.push("planned " + fmtDuration(t.estimate_post_s ?? t.estimate_pre_s));
    if (j.paper) meta.push("paper " + j.paper);
    // Several plotters: the one the job is (or was last) on, else what it waits for.
    const req = j.requirements || {};
    if (j.device) meta.push("plotter " + j.device);
    else if (req.device) meta.push("for plotter " + req.device);
    if (req.tags && req.tags.length) meta.push("needs " + req.tags.join(", "));
    meta.push("priority " + j.priority);
    $("job-meta").textContent = meta.join(" · ");

    // The plot settings the job was added with (the rest are the daemon's).
    const opts = describeOptions(j.metadata && j.metadata.options);
    $("job-options").hidden = !opts;
    $("job-options").textContent = opts ? "Settings: " + opts : "";

    const why = explain(j, penLayer(j));
    setReason(why && why[0], why && why[1]);

    const actions = $("job-actions");
    actions.replaceChildren();
    for (const a of ACTIONS[j.state] || []) {
      actions.appendChild(button(LABELS[a], () => (a === "start" ? confirmStart() : act(a)), DANGER.has(a) ? "danger" : a === "resume" ? "primary" : undefined, "job-" + a));
    }
    if (j.state !== "READY") $("job-confirm").hidden = true;

    const warnings = $("job-warnings");
    warnings.replaceChildren();
    const analysed = (details.events || []).find((e) => e.to_state === "ANALYZED");
    const list = j.warnings || (analysed && analysed.metadata && analysed.metadata.warnings) || [];
    for (const w of list) warnings.appendChild(el("li", w));

    renderLayers(layers);
    renderProgress();
    const events = $("job-events");
    events.replaceChildren();
    for (const e of details.events || []) {
      const text = (e.timestamp || "").replace("T", " ").slice(0, 19) + "  " + (e.from_state ? e.from_state + " → " : "") + e.to_state + " (" + e.reason + ")";
      events.appendChild(el("li", text));
    }
  }

  /** The layers in plot order: colour, strokes, pen-down distance, planned time, pauses. */
  function renderLayers(layers) {
    const body = $("job-layers");
    body.replaceChildren();
    if (!layers.length) {
      const td = el("td", "known once the job is analysed", "muted");
      td.colSpan = 6;
      body.appendChild(el("tr")).appendChild(td);
    }
    for (const l of layers) {
      const tr = el("tr");
      tr.appendChild(el("td", String(l.number ?? l.index + 1)));
      const name = el("td");
      const swatch = el("span", undefined, "swatch");
      // Only a #rrggbb colour reaches the style (the daemon writes them so; anything else is not
      // shown rather than trusted).
      if (/^#[0-9a-f]{6}$/i.test(l.color || "")) swatch.style.background = l.color;
      name.appendChild(swatch);
      name.appendChild(document.createTextNode(l.name || "(unnamed)"));
      tr.appendChild(name);
      tr.appendChild(el("td", l.strokes == null ? "–" : String(l.strokes)));
      tr.appendChild(el("td", l.pen_down_mm == null ? "–" : (l.pen_down_mm / 1000).toFixed(2) + " m"));
      tr.appendChild(el("td", fmtDuration(l.estimate_s)));
      tr.appendChild(el("td", l.pause_before ? "pen change before" : "", "muted"));
      body.appendChild(tr);
    }
  }

  /** The layer a pen-change pause waits for, as "2 'red' (#ff0000)", or null. */
  function penLayer(j) {
    let l = j.pen_change;
    if (!l) {
      const last = [...(details.events || [])].reverse().find((e) => e.to_state === "PAUSED");
      if (last && last.reason === "pen_change" && last.metadata) l = last.metadata.layer;
    }
    if (!l) return null;
    return (l.number ?? l.index + 1) + (l.name ? " '" + l.name + "'" : "") + (l.color ? " (" + l.color + ")" : "");
  }

  function renderProgress() {
    const p = state.progress.get(current);
    $("job-progress").hidden = !p;
    if (!p) return;
    $("job-bar").style.width = (p.progress * 100).toFixed(1) + "%";
    $("job-progress-text").textContent = p.progress_percentage + "% · layer " + p.current_layer + "/" + p.total_layers + " · " +
      p.points_plotted + "/" + p.total_points + " points · " + p.distance_mm.toFixed(0) + " mm drawn · ETA " + fmtDuration(p.eta_seconds);
  }

  function confirmStart() {
    $("job-confirm").hidden = false;
    $("confirm-start").focus();
  }
  $("confirm-start").addEventListener("click", () => { $("job-confirm").hidden = true; act("start"); });
  $("confirm-cancel").addEventListener("click", () => { $("job-confirm").hidden = true; });

  async function act(action) {
    const id = current;
    try {
      if (action === "delete") {
        await json("DELETE", "/api/jobs/" + encodeURIComponent(id));
        state.jobs.delete(id);
        location.hash = "#/";
        return;
      }
      const j = await json("POST", "/api/jobs/" + encodeURIComponent(id) + "/" + action);
      // A retry is a new job: show it. (The list learns of it from the stream.)
      if (j.id !== id) { location.hash = "#/job/" + encodeURIComponent(j.id); return; }
      load();
    } catch (e) {
      flash(LABELS[action] + ": " + e.message);
    }
  }

  function drawTrail() {
    const svg = document.getElementById("preview");
    if (!svg) return;
    const NS = "http://www.w3.org/2000/svg";
    let path = svg.querySelector("#trail"), pen = svg.querySelector("#pen");
    if (!path) {
      path = document.createElementNS(NS, "path");
      path.id = "trail";
      path.setAttribute("fill", "none");
      path.setAttribute("stroke", "#e0302099");
      path.setAttribute("stroke-width", "0.8");
      svg.appendChild(path);
    }
    if (!pen) {
      pen = document.createElementNS(NS, "circle");
      pen.id = "pen";
      pen.setAttribute("r", "2");
      pen.setAttribute("fill", "#e03020");
      svg.appendChild(pen);
    }
    let d = "", down = false;
    for (const [x, y, isDown] of trail) { d += (isDown && down ? "L" : "M") + x.toFixed(2) + " " + y.toFixed(2); down = isDown; }
    path.setAttribute("d", d);
    path.dataset.points = String(trail.length);
    const last = trail[trail.length - 1];
    pen.style.display = last ? "" : "none";
    if (last) { pen.setAttribute("cx", last[0]); pen.setAttribute("cy", last[1]); }
  }

  return {
    show(id) {
      if (id !== current) { current = id; details = null; previewOf = null; trail = []; $("job-preview").replaceChildren(); $("job-confirm").hidden = true; }
      load();
    },
    hide() { current = null; },
    jobChanged(j) {
      if (!current || j.id !== current) return;
      if (j.deleted) { setReason("This job was deleted.", false); $("job-actions").replaceChildren(); return; }
      load();
    },
    // Only the bar and its text: the buttons stay the same elements while a plot runs.
    progress(p) { if (p.job_id === current) renderProgress(); },
    device(d) {
      if (!current || d.current_job_id !== current || !d.position) return;
      const last = trail[trail.length - 1];
      if (last && last[0] === d.position.x && last[1] === d.position.y) return;
      trail.push([d.position.x, d.position.y, d.pen_up === false]);
      if (trail.length > TRAIL_MAX) trail.shift();
      drawTrail();
    },
  };
}
