// Small DOM and formatting helpers shared by the views.
export const $ = (selector, root = document) => root.querySelector(selector);

export function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(props)) {
    if (value == null || value === false) continue;
    if (name === "class") node.className = value;
    else if (name === "dataset") Object.assign(node.dataset, value);
    else if (name in node && typeof value !== "string") node[name] = value;
    else node.setAttribute(name, value === true ? "" : value);
  }
  node.append(...children.flat(Infinity).filter((c) => c != null && c !== false));
  return node;
}

export function shortId(id) {
  return id.length > 14 ? `${id.slice(0, 12)}…` : id;
}

const pad = (n) => String(n).padStart(2, "0");

/** "2026-12-02 01:23:45" in the browser's time zone: a date always, so no time is ambiguous. */
export function dateTime(iso) {
  const d = new Date(iso);
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
}

export function timeEl(iso) {
  if (!iso) return null;
  return el("time", { dateTime: iso, title: new Date(iso).toString() }, dateTime(iso));
}

export function duration(seconds) {
  if (seconds == null) return "";
  if (seconds < 1) return `${Math.round(seconds * 1000)} ms`;
  if (seconds < 120) return `${seconds.toFixed(seconds < 10 ? 2 : 1)} s`;
  const m = Math.floor(seconds / 60);
  return m < 120 ? `${m} min ${Math.round(seconds % 60)} s` : `${Math.floor(m / 60)} h ${m % 60} min`;
}

export function badge(status) {
  return el("span", { class: `badge ${status.toLowerCase()}` }, status.toLowerCase());
}

export function json(value) {
  return JSON.stringify(value, null, 2);
}

/** Copies text; says so on the button. navigator.clipboard needs a secure context (loopback is). */
export async function copy(text, button) {
  try {
    await navigator.clipboard.writeText(text);
    if (button) flash(button, "Copied");
  } catch {
    if (button) flash(button, "Copy failed");
  }
}

function flash(button, text) {
  const before = button.dataset.label || button.textContent;
  button.dataset.label = before;
  button.textContent = text;
  window.setTimeout(() => (button.textContent = before), 1500);
}

const announcer = () => document.getElementById("announcer");
export function say(message) {
  announcer().textContent = "";
  window.setTimeout(() => (announcer().textContent = message), 50);
}
