// The daemon's HTTP API and WebSocket stream, with the API key when the daemon asks for one.
//
// The key is asked for once (the dialog in index.html) when a request is refused with 401, kept
// in sessionStorage (this tab, until it closes), and sent in the `Authorization` header; the
// WebSocket, which cannot send headers, offers it as the subprotocol `plotty-key.<base64url>`.
// It never goes into a URL, where it would end up in logs and the browser's history.

import { $ } from "./dom.js";

const KEY = "plotty.apiKey";

/** An HTTP answer that was not a success, with the daemon's error code and message. */
export class ApiError extends Error {
  constructor(status, code, message, body) {
    super(message);
    this.status = status;
    this.code = code;
    this.body = body;
  }
}

/** The key of this session, or null. */
export function apiKey() {
  return sessionStorage.getItem(KEY);
}

let asking = null;

/**
 * Shows the key dialog (once, however many requests wait for it) and resolves when a key was
 * entered. `why` says what the daemon answered.
 */
export function askForKey(why) {
  if (asking) return asking;
  const dialog = $("key-dialog"), input = $("key-input");
  $("key-reason").textContent = why;
  input.value = "";
  asking = new Promise((resolve) => {
    $("key-form").onsubmit = (e) => {
      e.preventDefault();
      const key = input.value.trim();
      if (!key) return;
      sessionStorage.setItem(KEY, key);
      dialog.close();
      asking = null;
      resolve(key);
    };
  });
  dialog.showModal();
  input.focus();
  return asking;
}

/**
 * `fetch` with the key and the `X-Plotty-Request` header (the daemon refuses state changes
 * without it: a page of another site cannot send it). A 401 asks for the key and tries again.
 */
export async function request(method, path, body, contentType) {
  for (;;) {
    const headers = { "X-Plotty-Request": "1" };
    const key = apiKey();
    if (key) headers["Authorization"] = "Bearer " + key;
    if (contentType) headers["Content-Type"] = contentType;
    const r = await fetch(path, { method, headers, body });
    if (r.status !== 401) return r;
    const refusal = await r.json().catch(() => ({}));
    sessionStorage.removeItem(KEY);
    await askForKey(refusal.error_code === "AUTH_FAILED"
      ? "That key was refused: enter the daemon's API key."
      : "This daemon needs its API key.");
  }
}

/** A request whose answer is JSON; throws ApiError on a refusal. */
export async function json(method, path, body, contentType) {
  const r = await request(method, path, body, contentType);
  const b = await r.json().catch(() => ({}));
  if (!r.ok) throw new ApiError(r.status, b.error_code, b.error_message || "HTTP " + r.status, b);
  return b;
}

/** The key as a WebSocket subprotocol token: base64url of its UTF-8, no padding. */
function keyProtocol(key) {
  let bin = "";
  for (const b of new TextEncoder().encode(key)) bin += String.fromCharCode(b);
  return "plotty-key." + btoa(bin).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

/**
 * Keeps a WebSocket to /ws open: `onMessage` gets each message as JSON, `onState` "open" or
 * "closed (retrying in N s)". A handshake refused for the key (a WebSocket cannot see the 401)
 * is found by asking /status over HTTP, which brings up the key dialog.
 */
export function stream(onOpen, onMessage, onState) {
  let retry = 500;
  const connect = () => {
    const proto = location.protocol === "https:" ? "wss://" : "ws://";
    const key = apiKey();
    const ws = new WebSocket(proto + location.host + "/ws", key ? ["plotty", keyProtocol(key)] : ["plotty"]);
    let opened = false;
    ws.onopen = () => {
      opened = true;
      retry = 500;
      onState("open");
      onOpen(ws);
    };
    ws.onmessage = (e) => {
      try { onMessage(JSON.parse(e.data)); } catch (err) { console.error(err); }
    };
    ws.onclose = async (e) => {
      onState("closed (retrying in " + (retry / 1000).toFixed(1) + " s)");
      // 4401: the key changed on the daemon's side; a refused handshake: maybe the key.
      if (e.code === 4401 || !opened) {
        if (e.code === 4401) sessionStorage.removeItem(KEY);
        try { await request("GET", "/status"); } catch (_) { /* the daemon is away: retry */ }
      }
      setTimeout(connect, retry);
      retry = Math.min(retry * 2, 10000);
    };
  };
  connect();
}
