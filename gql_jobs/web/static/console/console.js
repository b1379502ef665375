// The job console: a plain client of the public GraphQL API (see gql_jobs/console.py).
import { LiveSocket } from "./live-socket.js";

const KEY_STORAGE = "gql-jobs:api-key";
const PAGE_SIZE = 50;
const CANCELABLE = new Set(["QUEUED", "STARTED", "DEFERRED", "SCHEDULED"]);
const REQUEUEABLE = new Set(["FAILED", "STOPPED", "CANCELED"]);
const JOB = `id status task queue submittedAt createdAt enqueuedAt startedAt endedAt
  progress { current total fraction message updatedAt } error { message }`;
const META = "query Meta { tasks { name description inputSchema } queues { name } }";
const LIST = `query Jobs($filter: JobFilter, $first: Int) {
  jobs(filter: $filter, first: $first) { totalCount edges { node { ${JOB} } } }
}`;
const EVENTS = `subscription Events($filter: JobFilter) {
  jobEvents(filter: $filter) { type jobId job { ${JOB} } }
}`;
const SUBMIT = `mutation Submit($input: SubmitJobInput!) {
  submitJob(input: $input) {
    __typename
    ... on SubmitJobSuccess { job { ${JOB} } }
    ... on Error { message }
    ... on InvalidPayloadError { fieldErrors { path message } }
  }
}`;
const ACTIONS = {
  cancel: ["cancelJob", "CancelJobSuccess"],
  requeue: ["requeueJob", "RequeueJobSuccess"],
};

const $ = (selector) => document.querySelector(selector);
const endpoint = new URL(document.body.dataset.endpoint, window.location.href);
const ui = {
  connection: $("#connection"),
  tbody: $("#jobs tbody"),
  count: $("#jobs-count"),
  empty: $("#jobs-empty"),
  error: $("#jobs-error"),
  filters: $("#filters"),
  keyForm: $("#key-form"),
  key: $("#api-key"),
  form: $("#submit-form"),
  task: $("#submit-task"),
  taskDescription: $("#submit-task-description"),
  payload: $("#payload-fields"),
  submitStatus: $("#submit-status"),
  announcer: $("#announcer"),
};
const state = { jobs: new Map(), tasks: new Map(), socket: null, unsubscribe: null, loading: null };

// ---- talking to the API ----------------------------------------------------------------------

function apiKey() {
  return window.sessionStorage.getItem(KEY_STORAGE) || "";
}

async function gql(query, variables = {}) {
  const headers = {
    "Content-Type": "application/json",
    Accept: "application/graphql-response+json, application/json",
  };
  if (apiKey()) headers.Authorization = `Bearer ${apiKey()}`;
  const response = await fetch(endpoint, {
    method: "POST",
    headers,
    body: JSON.stringify({ query, variables }),
  });
  let body;
  try {
    body = await response.json();
  } catch {
    throw new Error(`The server answered ${response.status} ${response.statusText}`);
  }
  if (body.errors?.length) throw new Error(body.errors.map((e) => e.message).join("; "));
  if (!response.ok) throw new Error(`The server answered ${response.status}`);
  return body.data;
}

function currentFilter() {
  const data = new FormData(ui.filters);
  const filter = {};
  for (const name of ["status", "queue", "task"]) if (data.get(name)) filter[name] = data.get(name);
  return filter;
}

function matches(job, filter = currentFilter()) {
  return Object.entries(filter).every(([name, value]) => job[name] === value);
}

// ---- the jobs table ----------------------------------------------------------------------------

function freshness(job) {
  const times = [job.submittedAt, job.enqueuedAt, job.startedAt, job.endedAt, job.progress?.updatedAt];
  return Math.max(0, ...times.filter(Boolean).map((t) => Date.parse(t)));
}

function submitted(job) {
  return Date.parse(job.submittedAt || job.createdAt || 0) || 0;
}

function say(message) {
  ui.announcer.textContent = "";
  window.setTimeout(() => (ui.announcer.textContent = message), 50);
}

function shortId(id) {
  return id.length > 14 ? `${id.slice(0, 12)}…` : id;
}

function time(iso) {
  const cell = document.createElement("td");
  if (!iso) return cell;
  const when = new Date(iso);
  const el = document.createElement("time");
  el.dateTime = iso;
  el.title = when.toLocaleString();
  const today = when.toDateString() === new Date().toDateString();
  el.textContent = today ? when.toLocaleTimeString() : when.toLocaleString();
  cell.append(el);
  return cell;
}

function cell(text, className) {
  const td = document.createElement("td");
  td.textContent = text ?? "";
  if (className) td.className = className;
  return td;
}

function progressCell(job) {
  const td = document.createElement("td");
  td.className = "progress";
  const bar = document.createElement("progress");
  bar.max = 1;
  bar.setAttribute("aria-label", `Progress of ${job.id}`);
  const fraction = job.status === "FINISHED" ? 1 : job.progress?.fraction;
  if (fraction != null) bar.value = fraction;
  else if (job.status !== "STARTED") bar.value = 0; // no value: indeterminate, only while running
  const label = document.createElement("span");
  const percent = fraction != null ? `${Math.round(fraction * 100)}%` : "";
  label.textContent = [percent, job.error?.message || job.progress?.message].filter(Boolean).join(" · ");
  td.append(bar, label);
  return td;
}

function actionsCell(job) {
  const td = document.createElement("td");
  td.className = "actions";
  for (const [action, allowed] of [["cancel", CANCELABLE], ["requeue", REQUEUEABLE]]) {
    if (!allowed.has(job.status)) continue;
    const button = document.createElement("button");
    button.type = "button";
    button.dataset.action = action;
    button.textContent = action === "cancel" ? "Cancel" : "Requeue";
    button.setAttribute("aria-label", `${button.textContent} job ${job.id}`);
    td.append(button);
  }
  return td;
}

function row(job) {
  const tr = document.createElement("tr");
  tr.dataset.jobId = job.id;
  tr.dataset.status = job.status;
  const id = document.createElement("th");
  id.scope = "row";
  const code = document.createElement("code");
  code.textContent = shortId(job.id);
  code.title = job.id;
  id.append(code);
  const status = cell("", "status");
  const badge = document.createElement("span");
  badge.className = `badge ${job.status.toLowerCase()}`;
  badge.textContent = job.status.toLowerCase();
  status.append(badge);
  tr.append(id, cell(job.task), cell(job.queue), status, progressCell(job));
  tr.append(time(job.submittedAt || job.createdAt), time(job.startedAt), time(job.endedAt), actionsCell(job));
  return tr;
}

function renderJob(job) {
  const old = ui.tbody.querySelector(`tr[data-job-id="${CSS.escape(job.id)}"]`);
  const fresh = row(job);
  if (old) {
    const focused = old.contains(document.activeElement) ? document.activeElement.dataset.action : null;
    old.replaceWith(fresh);
    if (focused) fresh.querySelector(`[data-action="${focused}"]`)?.focus();
    return;
  }
  const after = [...ui.tbody.rows].find((tr) => submitted(state.jobs.get(tr.dataset.jobId)) < submitted(job));
  ui.tbody.insertBefore(fresh, after || null);
}

function updateCounts(total) {
  if (total !== undefined) state.total = total;
  const shown = state.jobs.size;
  ui.count.textContent = state.total != null && state.total > shown ? `(${shown} of ${state.total})` : `(${shown})`;
  ui.empty.hidden = shown > 0;
}

function offer(select, name) {
  if (name && ![...select.options].some((o) => o.value === name)) select.append(new Option(name, name));
}

function upsert(job, { announce = false } = {}) {
  offer(ui.filters.elements.queue, job.queue);
  offer(ui.filters.elements.task, job.task);
  const known = state.jobs.get(job.id);
  if (known && freshness(job) < freshness(known)) return; // an older snapshot arriving late
  if (state.loading) state.loading.add(job.id);
  if (!matches(job)) {
    if (known) remove(job.id);
    return;
  }
  state.jobs.set(job.id, job);
  renderJob(job);
  if (!known) trim();
  updateCounts();
  if (announce && known?.status !== job.status) {
    say(`Job ${shortId(job.id)} (${job.task}) is ${job.status.toLowerCase()}.`);
  }
}

function remove(id) {
  state.jobs.delete(id);
  ui.tbody.querySelector(`tr[data-job-id="${CSS.escape(id)}"]`)?.remove();
  updateCounts();
}

function trim() {
  while (state.jobs.size > PAGE_SIZE) {
    const oldest = ui.tbody.rows[ui.tbody.rows.length - 1];
    state.jobs.delete(oldest.dataset.jobId);
    oldest.remove();
  }
}

function showError(error) {
  ui.error.hidden = !error;
  ui.error.textContent = error ? String(error.message || error) : "";
}

async function loadJobs() {
  const touched = new Set();
  state.loading = touched;
  try {
    const data = await gql(LIST, { filter: currentFilter(), first: PAGE_SIZE });
    // Answers can arrive out of order (a filter changed twice quickly): only the latest load renders.
    if (state.loading !== touched) return;
    const previous = state.jobs;
    state.jobs = new Map();
    ui.tbody.replaceChildren();
    for (const { node } of data.jobs.edges) {
      const newer = touched.has(node.id) ? previous.get(node.id) : null;
      const job = newer && freshness(newer) > freshness(node) ? newer : node;
      state.jobs.set(job.id, job);
      ui.tbody.append(row(job));
    }
    updateCounts(data.jobs.totalCount);
    showError(null);
  } catch (error) {
    if (state.loading === touched) showError(error);
  } finally {
    if (state.loading === touched) state.loading = null;
  }
}

// ---- live updates ------------------------------------------------------------------------------

const STATE_TEXT = {
  idle: "Not connected",
  connecting: "Connecting…",
  reconnecting: "Connection lost, reconnecting…",
  live: "Live",
  refused: "Live updates refused: check the API key",
};

function setConnection(name, detail) {
  ui.connection.dataset.state = name;
  ui.connection.textContent = detail ? `${STATE_TEXT[name]} (${detail})` : STATE_TEXT[name];
}

function subscribe() {
  state.unsubscribe?.();
  // The status filter is applied here, not by the server, so that rows leaving it disappear.
  const { queue, task } = currentFilter();
  const filter = Object.fromEntries(Object.entries({ queue, task }).filter(([, v]) => v));
  state.unsubscribe = state.socket.subscribe(EVENTS, { filter }, {
    next(payload) {
      if (payload.errors?.length) return showError(payload.errors.map((e) => e.message).join("; "));
      const event = payload.data.jobEvents;
      if (event.type === "DELETED" || !event.job) remove(event.jobId);
      else upsert(event.job, { announce: true });
    },
    error: (errors) => showError(errors.map?.((e) => e.message).join("; ") || "Subscription failed"),
  });
}

function connect() {
  state.socket?.close();
  const socketUrl = new URL(endpoint);
  socketUrl.protocol = endpoint.protocol === "https:" ? "wss:" : "ws:";
  const params = apiKey() ? { Authorization: `Bearer ${apiKey()}` } : {};
  state.socket = new LiveSocket(socketUrl.href, params, (name, detail) => {
    setConnection(name, detail);
    // Once (re)subscribed, read the list: nothing changed while away is missed. Without live
    // updates (a refused key), still show the list, or why not.
    if (name === "live" || name === "refused") loadJobs();
  });
  subscribe();
}

// ---- submitting, and the form built from each task's JSON Schema --------------------------------

function resolve(schema, root) {
  let s = schema || {};
  if (s.$ref?.startsWith("#/$defs/")) s = root.$defs?.[s.$ref.slice(8)] || {};
  const options = s.anyOf || s.oneOf;
  if (options) {
    const real = options.filter((o) => o.type !== "null");
    if (real.length === 1) s = { ...resolve(real[0], root), ...s, anyOf: undefined, oneOf: undefined };
  }
  return s;
}

function control(name, schema, required, root) {
  const s = resolve(schema, root);
  const id = `payload-${name}`;
  const wrap = document.createElement("div");
  wrap.className = "field";
  wrap.dataset.field = name;
  const label = document.createElement("label");
  label.htmlFor = id;
  label.textContent = (s.title || name) + (required ? " (required)" : "");
  let input;
  if (Array.isArray(s.enum)) {
    input = document.createElement("select");
    if (!required) input.append(new Option("", ""));
    for (const value of s.enum) input.append(new Option(String(value), JSON.stringify(value)));
    input.dataset.kind = "json";
  } else if (s.type === "boolean") {
    input = document.createElement("input");
    input.type = "checkbox";
    input.checked = Boolean(s.default);
    input.dataset.kind = "boolean";
  } else if (s.type === "integer" || s.type === "number") {
    input = document.createElement("input");
    input.type = "number";
    input.step = s.type === "integer" ? "1" : "any";
    if (s.minimum != null) input.min = s.minimum;
    if (s.maximum != null) input.max = s.maximum;
    input.dataset.kind = "number";
  } else if (s.type === "string") {
    input = document.createElement("input");
    if (s.maxLength) input.maxLength = s.maxLength;
    input.dataset.kind = "string";
  } else {
    input = document.createElement("textarea");
    input.rows = 3;
    input.placeholder = "JSON";
    input.dataset.kind = "json";
  }
  input.id = id;
  input.name = name;
  if (s.default !== undefined && input.type !== "checkbox") {
    input.value = input.dataset.kind === "json" ? JSON.stringify(s.default) : String(s.default);
  }
  const hint = document.createElement("small");
  hint.id = `${id}-hint`;
  hint.textContent = s.description || "";
  const error = document.createElement("p");
  error.id = `${id}-error`;
  error.className = "error";
  input.setAttribute("aria-describedby", `${hint.id} ${error.id}`);
  if (input.type === "checkbox") wrap.append(input, label, hint, error);
  else wrap.append(label, input, hint, error);
  return wrap;
}

function buildPayloadFields() {
  const task = state.tasks.get(ui.task.value);
  ui.payload.querySelectorAll(".field").forEach((el) => el.remove());
  ui.taskDescription.textContent = task?.description || "";
  if (!task) return;
  const schema = task.inputSchema || {};
  const properties = schema.properties || {};
  const required = new Set(schema.required || []);
  if (Object.keys(properties).length === 0) {
    const field = control("payload", { title: "Payload (a JSON object)", default: {} }, false, schema);
    field.dataset.field = "";
    ui.payload.append(field);
    return;
  }
  for (const [name, prop] of Object.entries(properties)) {
    ui.payload.append(control(name, prop, required.has(name), schema));
  }
}

function readPayload() {
  const fields = [...ui.payload.querySelectorAll(".field")];
  if (fields.length === 1 && fields[0].dataset.field === "") {
    return JSON.parse(fields[0].querySelector("textarea").value || "{}");
  }
  const payload = {};
  for (const field of fields) {
    const input = field.querySelector("input, select, textarea");
    const kind = input.dataset.kind;
    if (kind === "boolean") payload[input.name] = input.checked;
    else if (input.value === "") continue; // let the task's default apply
    else if (kind === "number") payload[input.name] = Number(input.value);
    else if (kind === "json") payload[input.name] = JSON.parse(input.value);
    else payload[input.name] = input.value;
  }
  return payload;
}

function fieldError(path, message) {
  const field = ui.payload.querySelector(`.field[data-field="${CSS.escape(path[0] ?? "")}"]`)
    || ui.payload.querySelector('.field[data-field=""]');
  if (!field) return false;
  field.querySelector(".error").textContent = message;
  field.querySelector("input, select, textarea").setAttribute("aria-invalid", "true");
  return true;
}

function clearFieldErrors() {
  ui.payload.querySelectorAll(".error").forEach((el) => (el.textContent = ""));
  ui.payload.querySelectorAll("[aria-invalid]").forEach((el) => el.removeAttribute("aria-invalid"));
}

async function submitJob(event) {
  event.preventDefault();
  clearFieldErrors();
  const button = ui.form.querySelector("button[type=submit]");
  let payload;
  try {
    payload = readPayload();
  } catch (error) {
    ui.submitStatus.textContent = `The payload is not valid JSON: ${error.message}`;
    return;
  }
  const input = { task: ui.task.value, payload };
  const queue = ui.form.elements.queue.value.trim();
  const tags = ui.form.elements.tags.value.split(",").map((t) => t.trim()).filter(Boolean);
  if (queue) input.queue = queue;
  if (tags.length) input.tags = tags;
  button.disabled = true;
  ui.submitStatus.textContent = "Submitting…";
  try {
    const result = (await gql(SUBMIT, { input })).submitJob;
    if (result.__typename === "SubmitJobSuccess") {
      upsert(result.job);
      ui.submitStatus.textContent = `Submitted ${result.job.id} (${result.job.task}).`;
    } else {
      const unplaced = (result.fieldErrors || []).filter((e) => !fieldError(e.path, e.message));
      ui.submitStatus.textContent = [result.message, ...unplaced.map((e) => e.message)].join(" ");
    }
  } catch (error) {
    ui.submitStatus.textContent = `Not submitted: ${error.message}`;
  } finally {
    button.disabled = false;
  }
}

async function act(event) {
  const button = event.target.closest("button[data-action]");
  if (!button) return;
  const id = button.closest("tr").dataset.jobId;
  const [field, success] = ACTIONS[button.dataset.action];
  const mutation = `mutation ($id: ID!) { ${field}(id: $id) {
    __typename ... on ${success} { job { ${JOB} } } ... on Error { message } } }`;
  button.disabled = true;
  try {
    const result = (await gql(mutation, { id }))[field];
    if (result.__typename === success) upsert(result.job, { announce: true });
    else say(result.message);
  } catch (error) {
    say(error.message);
  } finally {
    button.disabled = false;
  }
}

// ---- start -------------------------------------------------------------------------------------

function fillSelect(select, names, keepFirst = true) {
  const current = select.value;
  [...select.options].slice(keepFirst ? 1 : 0).forEach((o) => o.remove());
  for (const name of names) select.append(new Option(name, name));
  if (names.includes(current)) select.value = current;
}

async function loadMeta() {
  try {
    const data = await gql(META);
    state.tasks = new Map(data.tasks.map((t) => [t.name, t]));
    const taskNames = data.tasks.map((t) => t.name);
    fillSelect(ui.filters.elements.task, taskNames);
    fillSelect(ui.filters.elements.queue, data.queues.map((q) => q.name));
    fillSelect(ui.task, taskNames, false);
    buildPayloadFields();
  } catch (error) {
    showError(error);
  }
}

function start() {
  loadMeta();
  connect();
}

const graphiql = $("#graphiql-link");
if (!document.body.dataset.graphiql) graphiql.remove();
ui.key.value = apiKey();
ui.keyForm.addEventListener("submit", (event) => {
  event.preventDefault();
  window.sessionStorage.setItem(KEY_STORAGE, ui.key.value.trim());
  start();
});
$("#forget-key").addEventListener("click", () => {
  window.sessionStorage.removeItem(KEY_STORAGE);
  ui.key.value = "";
  start();
});
ui.filters.addEventListener("change", () => {
  subscribe();
  loadJobs();
});
ui.task.addEventListener("change", buildPayloadFields);
ui.form.addEventListener("submit", submitJob);
ui.tbody.addEventListener("click", act);
start();
