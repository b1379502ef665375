// The job console: a plain client of the public GraphQL API (see gql_jobs/web/console.py).
// This module routes between the views (each has a real URL under /console), holds the API key,
// the live connection, the theme and the keyboard shortcuts.
import { apiKey, endpoint, gql, setApiKey } from "./api.js";
import { $ } from "./format.js";
import { JOB, JobList } from "./jobs.js";
import { JobView } from "./job.js";
import { QueuesView, WorkersView } from "./fleet.js";
import { ChartsView } from "./charts.js";
import { LiveSocket } from "./live-socket.js";
import { SubmitForm } from "./submit.js";
import { FEATURES } from "./features.js";

const META = "query Meta { tasks { name description inputSchema } queues { name } }";
const STATE_TEXT = {
  idle: "Not connected",
  connecting: "Connecting…",
  reconnecting: "Connection lost, reconnecting…",
  live: "Live",
  refused: "Live updates refused: check the API key",
};
const THEME_STORAGE = "gql-jobs:theme";

const base = document.body.dataset.base;
const state = { socket: null, view: null, viewName: null };
const context = {
  base,
  features: FEATURES,
  live: () => state.socket,
  navigate,
};
const views = {
  jobs: new JobList(context),
  job: new JobView(context),
  queues: new QueuesView(context),
  workers: new WorkersView(context),
  charts: new ChartsView(context),
};
const submitForm = new SubmitForm(JOB, (job) => views.jobs.upsert(job));

// ---- routing: one page, a URL per view ---------------------------------------------------------

function parse(pathname) {
  const rest = pathname.startsWith(base) ? pathname.slice(base.length) : "";
  const job = rest.match(/^\/jobs\/(.+)$/);
  if (job) return ["job", decodeURIComponent(job[1])];
  const name = rest.replace(/^\/|\/$/g, "");
  return [name in views && name !== "job" ? name : "jobs", null];
}

function route() {
  const [name, id] = parse(window.location.pathname);
  if (state.view && state.viewName !== name) state.view.hide();
  state.viewName = name;
  state.view = views[name];
  for (const main of document.querySelectorAll("main[data-view]")) main.hidden = main.dataset.view !== name;
  for (const link of document.querySelectorAll(".views a[data-view]")) {
    if (link.dataset.view === name || (name === "job" && link.dataset.view === "jobs")) {
      link.setAttribute("aria-current", "page");
    } else link.removeAttribute("aria-current");
  }
  if (name !== "job") document.title = `${name[0].toUpperCase()}${name.slice(1)} · gql-jobs`;
  if (name === "jobs") views.jobs.show(new URLSearchParams(window.location.search));
  else if (name === "job") views.job.show(id);
  else state.view.show();
}

function navigate(url) {
  const target = new URL(url, window.location.href);
  if (target.href !== window.location.href) window.history.pushState(null, "", target.href);
  route();
  window.scrollTo(0, 0);
}

document.addEventListener("click", (event) => {
  const link = event.target.closest("a[data-nav]");
  if (!link || event.defaultPrevented || event.button !== 0) return;
  if (event.metaKey || event.ctrlKey || event.shiftKey || event.altKey) return; // a new tab: the browser's
  event.preventDefault();
  navigate(link.href);
});
window.addEventListener("popstate", route);

// ---- the key, the live connection, what the server offers -----------------------------------------

function setConnection(name, detail) {
  const ui = $("#connection");
  ui.dataset.state = name;
  ui.textContent = detail ? `${STATE_TEXT[name]} (${detail})` : STATE_TEXT[name];
}

function connect() {
  state.socket?.close();
  const socketUrl = new URL(endpoint);
  socketUrl.protocol = endpoint.protocol === "https:" ? "wss:" : "ws:";
  const params = apiKey() ? { Authorization: `Bearer ${apiKey()}` } : {};
  state.socket = new LiveSocket(socketUrl.href, params, (name, detail) => {
    setConnection(name, detail);
    // Once (re)subscribed, read the list again: nothing changed while away is missed.
    if ((name === "live" || name === "refused") && state.viewName === "jobs") views.jobs.load();
  });
}

async function loadMeta() {
  try {
    const data = await gql(META);
    submitForm.setTasks(data.tasks);
    const taskNames = data.tasks.map((t) => t.name);
    const queueNames = data.queues.map((q) => q.name);
    fill($("#filter-task"), taskNames);
    fill($("#filter-queue"), queueNames);
    views.charts.setMeta(taskNames, queueNames);
  } catch (error) {
    submitForm.explain(error);
  }
}

function fill(select, names) {
  const current = select.value;
  [...select.options].slice(1).forEach((o) => o.remove());
  for (const name of new Set([...names, current].filter(Boolean))) select.append(new Option(name, name));
  select.value = current;
}

function start() {
  loadMeta();
  connect();
  route();
}

$("#api-key").value = apiKey();
$("#key-form").addEventListener("submit", (event) => {
  event.preventDefault();
  setApiKey($("#api-key").value.trim());
  start();
});
$("#forget-key").addEventListener("click", () => {
  setApiKey("");
  $("#api-key").value = "";
  start();
});
if (!document.body.dataset.graphiql) $("#graphiql-link").remove();
if (!document.body.dataset.docs) $("#docs-link").remove();

// ---- search by id, the theme, the keyboard ------------------------------------------------------

$("#search").addEventListener("submit", (event) => {
  event.preventDefault();
  const id = $("#search-id").value.trim();
  if (id) navigate(`${base}/jobs/${encodeURIComponent(id)}`);
});

function applyTheme(theme) {
  const root = document.documentElement;
  if (theme) root.dataset.theme = theme;
  const dark = (root.dataset.theme || (matchMedia("(prefers-color-scheme: dark)").matches ? "dark" : "light")) === "dark";
  const toggle = $("#theme-toggle");
  toggle.setAttribute("aria-label", dark ? "Switch to the light theme" : "Switch to the dark theme");
  toggle.title = toggle.getAttribute("aria-label");
  return dark;
}
$("#theme-toggle").addEventListener("click", () => {
  const dark = applyTheme();
  const next = dark ? "light" : "dark";
  window.localStorage.setItem(THEME_STORAGE, next);
  applyTheme(next);
  if (state.viewName === "charts") views.charts.show(); // redraw in the new colours
});
applyTheme();

const TYPING = new Set(["INPUT", "SELECT", "TEXTAREA"]);
document.addEventListener("keydown", (event) => {
  if (event.metaKey || event.ctrlKey || event.altKey || TYPING.has(event.target.tagName)) return;
  if ($("#confirm").open) return;
  if (event.key === "/") {
    event.preventDefault();
    if (state.viewName !== "jobs") navigate(base);
    $("#search-id").focus();
  } else if (state.viewName === "jobs" && (event.key === "j" || event.key === "k")) {
    event.preventDefault();
    views.jobs.move(event.key === "j" ? 1 : -1);
  } else if (state.viewName === "jobs" && event.key === "Enter" && event.target.matches?.("tr[data-job-id], body")) {
    event.preventDefault();
    views.jobs.openCurrent();
  }
});

start();
