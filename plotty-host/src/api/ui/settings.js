// The upload form's plot settings (pen heights, speeds, acceleration, model, reordering) and the
// presets of them. An empty field means "the daemon's setting": GET /api/options gives the
// configured values, shown as placeholders, and the field is then not sent. Filled fields go into
// the upload as the same form fields `plotty add`'s options use (speed_pendown, pen_pos_down, …),
// checked by the daemon's config rules. Presets live in the daemon (GET/PUT/DELETE
// /api/presets), so every browser sees the same ones.

import { $, el } from "./dom.js";
import { json } from "./api.js";

/** The option fields of the form: <input>/<select> elements with data-option="name". */
const fields = () => [...document.querySelectorAll("#up-settings [data-option]")];

/** The reordering levels as the form names them. */
const REORDERING = { 0: "file order, join adjoining paths", 1: "reorder and join strokes", 2: "reorder and join strokes", 3: "reorder and join strokes", 4: "file order exactly" };

/** What the daemon answered for GET /api/options (null until it did). */
let options = null;

/** Options as "name value" text for a job's page (`options`: its metadata.options). */
export function describeOptions(opts) {
  if (!opts || typeof opts !== "object") return "";
  const parts = [];
  const pct = (label, key) => { if (opts[key] != null) parts.push(label + " " + opts[key] + "%"); };
  pct("pen up", "pen_pos_up");
  pct("pen down", "pen_pos_down");
  pct("pen-down speed", "speed_pendown");
  pct("pen-up speed", "speed_penup");
  pct("acceleration", "accel");
  if (opts.model != null) {
    const m = options && options.models.find((x) => x.number === opts.model);
    parts.push("model " + (m ? m.name : opts.model));
  }
  if (opts.reordering != null) parts.push("reordering: " + (REORDERING[opts.reordering] || opts.reordering));
  for (const [k, v] of Object.entries(opts)) {
    if (!["pen_pos_up", "pen_pos_down", "speed_pendown", "speed_penup", "accel", "model", "reordering", "seed"].includes(k)) parts.push(k + " " + v);
  }
  return parts.join(" · ");
}

/** The settings part of the upload view. */
export function createSettings() {
  let presets = [];
  const error = (text) => {
    const box = $("preset-error");
    box.textContent = text || "";
    box.hidden = !text;
  };

  async function loadOptions() {
    try {
      options = await json("GET", "/api/options");
    } catch (e) { error("cannot read the daemon's settings: " + e.message); return; }
    const d = options.defaults;
    for (const f of fields()) {
      if (f.tagName === "INPUT") f.placeholder = d[f.dataset.option] != null ? String(d[f.dataset.option]) : "";
    }
    const model = $("opt-model");
    const daemons = options.models.find((m) => m.number === d.model);
    model.replaceChildren(el("option", "daemon's (" + (daemons ? daemons.name : d.model) + ")"));
    model.firstChild.value = "";
    for (const m of options.models) {
      const o = el("option", m.name);
      o.value = String(m.number);
      model.appendChild(o);
    }
    const re = $("opt-reordering").querySelector("option[value='']");
    re.textContent = "daemon's (" + (REORDERING[d.reordering] || d.reordering) + ")";
  }

  async function loadPresets(select) {
    try {
      presets = (await json("GET", "/api/presets")).presets;
    } catch (e) { error("cannot list the presets: " + e.message); return; }
    const menu = $("preset-select");
    const keep = select ?? menu.value;
    menu.replaceChildren(el("option", "none"));
    menu.firstChild.value = "";
    for (const p of presets) {
      const o = el("option", p.name);
      o.value = p.name;
      menu.appendChild(o);
    }
    menu.value = presets.some((p) => p.name === keep) ? keep : "";
    $("preset-delete").disabled = !menu.value;
  }

  /** The filled option fields as {name: text}. */
  function current() {
    const out = {};
    for (const f of fields()) if (f.value.trim() !== "") out[f.dataset.option] = f.value.trim();
    return out;
  }

  $("preset-select").addEventListener("change", () => {
    const p = presets.find((x) => x.name === $("preset-select").value);
    $("preset-delete").disabled = !p;
    error("");
    if (!p) return;
    $("preset-name").value = p.name;
    for (const f of fields()) {
      const v = p.options[f.dataset.option];
      f.value = v == null ? "" : String(v);
    }
  });

  $("preset-save").addEventListener("click", async () => {
    const name = $("preset-name").value.trim();
    if (!name) { error("Name the preset first."); $("preset-name").focus(); return; }
    error("");
    try {
      await json("PUT", "/api/presets/" + encodeURIComponent(name), JSON.stringify(current()), "application/json");
      await loadPresets(name);
    } catch (e) { error("Not saved: " + e.message); }
  });

  $("preset-delete").addEventListener("click", async () => {
    const name = $("preset-select").value;
    if (!name) return;
    error("");
    try {
      await json("DELETE", "/api/presets/" + encodeURIComponent(name));
      await loadPresets("");
    } catch (e) { error("Not deleted: " + e.message); }
  });

  return {
    /** Reads the defaults and the presets again (each time the upload view is shown). */
    refresh() { loadOptions(); loadPresets(); },
    /** Adds the filled fields to an upload's form. */
    appendTo(form) { for (const [k, v] of Object.entries(current())) form.append(k, v); },
  };
}
