// DOM and formatting helpers shared by the web UI's modules. Text from the daemon is always
// inserted with textContent, never as HTML.

/** The element with `id`. */
export const $ = (id) => document.getElementById(id);

/** A new element with optional text and class. */
export function el(tag, text, cls) {
  const e = document.createElement(tag);
  if (text !== undefined && text !== null) e.textContent = text;
  if (cls) e.className = cls;
  return e;
}

/** A button that runs `onClick`; `cls` may be "primary" or "danger". */
export function button(label, onClick, cls, id) {
  const b = el("button", label, cls);
  b.type = "button";
  if (id) b.id = id;
  b.addEventListener("click", onClick);
  return b;
}

/** Seconds as "1h 2m 3s" ("–" when unknown). */
export function fmtDuration(s) {
  if (s == null || !isFinite(s)) return "–";
  s = Math.round(s);
  const h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60), r = s % 60;
  return (h ? h + "h " : "") + (h || m ? m + "m " : "") + r + "s";
}

/** Most messages shown at once (older ones go first): a stack would cover the page. */
const FLASH_MAX = 3;

/** A message in the corner for a few seconds (what an action did, or why not). */
export function flash(text) {
  const d = el("div", text);
  const box = $("flash");
  box.appendChild(d);
  while (box.children.length > FLASH_MAX) box.firstChild.remove();
  setTimeout(() => d.remove(), 8000);
}

/**
 * A job's error as its uploader reads it: without the daemon's own path of the stored copy
 * ("/…/jobs/<id>/source.svg: "), which means nothing in a browser.
 */
export function jobError(text) {
  return (text || "").replace(/^\S*\/jobs\/[^/\s]+\/source\.svg: /, "");
}
