// The upload view: SVG files by drag-and-drop or the file picker (several at once), the job's
// name, priority, layers, paper, plot settings (settings.js) and "start now", sent to POST /api/jobs (the endpoint
// `plotty add` uses) as one multipart form. Each created job is then followed live: its import
// warnings once analysed, or its error (a broken SVG) in red, with a link to its page.

import { $, el, jobError } from "./dom.js";
import { json } from "./api.js";
import { createSettings } from "./settings.js";

/** The upload view; `state` is the page's (the stream may report a job before the POST answers). */
export function createUpload(state) {
  let files = [];
  const results = new Map(); // job id -> <li> of the results list
  const settings = createSettings();

  const renderFiles = () => {
    const ul = $("upload-files");
    ul.replaceChildren();
    for (const f of files) ul.appendChild(el("li", f.name + " (" + Math.max(1, Math.round(f.size / 1024)) + " KiB)"));
    $("up-submit").disabled = files.length === 0;
    $("up-name").disabled = files.length > 1;
    $("up-name").placeholder = files.length > 1 ? "each job takes its file's name" : "the file's name";
  };
  const choose = (list) => {
    files = [...list];
    $("upload-error").hidden = true;
    renderFiles();
  };

  $("file-input").addEventListener("change", (e) => choose(e.target.files));
  const drop = $("drop");
  drop.addEventListener("dragover", (e) => { e.preventDefault(); drop.classList.add("over"); });
  drop.addEventListener("dragleave", () => drop.classList.remove("over"));
  drop.addEventListener("drop", (e) => {
    e.preventDefault();
    drop.classList.remove("over");
    if (e.dataTransfer && e.dataTransfer.files.length) choose(e.dataTransfer.files);
  });

  $("upload-form").addEventListener("submit", async (e) => {
    e.preventDefault();
    if (!files.length) return;
    const form = new FormData();
    const field = (name, value) => { if (value !== "" && value != null) form.append(name, value); };
    if (files.length === 1) field("name", $("up-name").value.trim());
    field("priority", $("up-priority").value.trim());
    field("layers", $("up-layers").value.trim());
    field("paper", $("up-paper").value.trim());
    // Which plotter: by name, or by tags it must have (comma-separated).
    field("device", $("up-device").value.trim());
    field("tags", $("up-tags").value.trim());
    settings.appendTo(form);
    form.append("start", $("up-start").checked ? "true" : "false");
    for (const f of files) form.append("file", f, f.name);
    const errorBox = $("upload-error");
    errorBox.hidden = true;
    $("up-submit").disabled = true;
    try {
      // The browser sets the multipart boundary itself.
      const r = await json("POST", "/api/jobs", form);
      for (const j of r.jobs) addResult(j);
      files = [];
      $("file-input").value = "";
      renderFiles();
    } catch (err) {
      errorBox.textContent = "Not queued: " + err.message;
      errorBox.hidden = false;
      // Some files may have been queued before one was refused.
      if (err.body && Array.isArray(err.body.jobs)) for (const j of err.body.jobs) addResult(j);
      $("up-submit").disabled = files.length === 0;
    }
  });

  function addResult(j) {
    const li = el("li");
    li.dataset.job = j.id;
    li.dataset.name = j.name || "";
    const link = el("a", j.name || j.id);
    link.href = "#/job/" + encodeURIComponent(j.id);
    li.appendChild(link);
    li.appendChild(el("span", " — " + j.state, "state"));
    li.appendChild(el("ul", undefined, "notes"));
    $("upload-results").prepend(li);
    results.set(j.id, li);
    const known = state.jobs.get(j.id);
    update(known ? { ...j, ...known } : j);
  }

  function update(j) {
    const li = results.get(j.id);
    if (!li) return;
    const label = j.state === "FAILED" ? " — could not be imported" : " — " + j.state;
    li.querySelector(".state").textContent = label;
    const notes = li.querySelector(".notes");
    notes.replaceChildren();
    if (j.state === "FAILED" && j.error) notes.appendChild(el("li", jobError(j.error), "error"));
    if (Array.isArray(j.warnings)) {
      if (!j.warnings.length) notes.appendChild(el("li", "imported without warnings", "muted"));
      for (const w of j.warnings) notes.appendChild(el("li", w, "warning"));
    }
  }

  return { jobChanged: update, shown: () => settings.refresh() };
}
