// The job list: filters and page in the URL, cursor paging, live rows, per-status counts, bulk actions.
import { gql } from "./api.js";
import { $, badge, copy, el, say, shortId, timeEl } from "./format.js";
import { bulkAct, confirmAction, BULK_VERBS } from "./bulk.js";

export const PAGE_SIZE = 50;
export const CANCELABLE = new Set(["QUEUED", "STARTED", "DEFERRED", "SCHEDULED"]);
export const REQUEUEABLE = new Set(["FAILED", "STOPPED", "CANCELED"]);
export const DELETABLE = new Set(["QUEUED", "FINISHED", "FAILED", "DEFERRED", "SCHEDULED", "STOPPED", "CANCELED"]);
export const JOB = `id status task queue tags submittedAt createdAt enqueuedAt startedAt endedAt
  progress { current total fraction message updatedAt } error { message }`;
const FILTERS = ["status", "queue", "task", "tag"];
const TIME_FILTERS = ["submittedAfter", "submittedBefore"];
const LIST = `query Jobs($filter: JobFilter, $first: Int, $after: String, $last: Int, $before: String) {
  jobs(filter: $filter, first: $first, after: $after, last: $last, before: $before) {
    totalCount
    pageInfo { hasNextPage hasPreviousPage startCursor endCursor }
    edges { node { ${JOB} } }
  }
}`;
const COUNTS = "query Counts { queues { name counts { status count } } }";
const EVENTS = `subscription Events($filter: JobFilter) {
  jobEvents(filter: $filter) { type jobId job { ${JOB} } }
}`;
const ACTIONS = {
  cancel: ["cancelJob", "CancelJobSuccess", "job { " + JOB + " }"],
  requeue: ["requeueJob", "RequeueJobSuccess", "job { " + JOB + " }"],
  delete: ["deleteJob", "DeleteJobSuccess", "jobId"],
};

function freshness(job) {
  const times = [job.submittedAt, job.enqueuedAt, job.startedAt, job.endedAt, job.progress?.updatedAt];
  return Math.max(0, ...times.filter(Boolean).map((t) => Date.parse(t)));
}

function submitted(job) {
  return Date.parse(job.submittedAt || job.createdAt || 0) || 0;
}

/** datetime-local ("2026-12-02T01:23:45", local time) to ISO 8601 UTC, and back. */
function localToIso(value) {
  return value ? new Date(value).toISOString() : "";
}
function isoToLocal(iso) {
  if (!iso) return "";
  const d = new Date(iso);
  return new Date(d.getTime() - d.getTimezoneOffset() * 60_000).toISOString().slice(0, 19);
}

export class JobList {
  constructor({ base, features, live, navigate }) {
    Object.assign(this, { base, features, live, navigate });
    this.jobs = new Map();
    this.selected = new Set();
    this.loading = null;
    this.loaded = false;
    this.cursor = {}; // { after } or { before } of the page shown
    this.pageInfo = null;
    this.unsubscribe = null;
    this.current = -1; // the row j/k moved to
    this.ui = {
      tbody: $("#jobs tbody"),
      count: $("#jobs-count"),
      empty: $("#jobs-empty"),
      error: $("#jobs-error"),
      filters: $("#filters"),
      counts: $("#status-counts"),
      bulk: $("#bulk"),
      bulkCount: $("#bulk-count"),
      bulkStatus: $("#bulk-status"),
      allMatching: $("#bulk-all-matching"),
      selectPage: $("#select-page"),
      newer: $("#page-newer"),
      older: $("#page-older"),
    };
    if (features.timeRange) this.ui.filters.querySelector(".time-range").hidden = false;
    if (features.bulk) this.ui.allMatching.closest("label").hidden = false;
    this.ui.filters.addEventListener("change", () => this.filtersChanged());
    this.ui.filters.addEventListener("submit", (event) => event.preventDefault());
    this.ui.tbody.addEventListener("click", (event) => this.clicked(event));
    this.ui.tbody.addEventListener("change", (event) => this.picked(event));
    this.ui.selectPage.addEventListener("change", () => this.pickPage(this.ui.selectPage.checked));
    this.ui.allMatching.addEventListener("change", () => this.updateBulk());
    this.ui.bulk.addEventListener("click", (event) => this.bulk(event));
    this.ui.newer.addEventListener("click", () => this.page({ before: this.pageInfo?.startCursor }));
    this.ui.older.addEventListener("click", () => this.page({ after: this.pageInfo?.endCursor }));
  }

  // ---- the URL is the state ------------------------------------------------------------------

  /** The filter the URL names (what the API takes). */
  filter(params = new URLSearchParams(window.location.search)) {
    const filter = {};
    for (const name of FILTERS) if (params.get(name)) filter[name] = params.get(name);
    if (this.features.timeRange) {
      for (const name of TIME_FILTERS) if (params.get(name)) filter[name] = params.get(name);
    }
    return filter;
  }

  show(params) {
    const form = this.ui.filters.elements;
    for (const name of FILTERS) {
      const value = params.get(name) || "";
      if (form[name].tagName === "SELECT") offer(form[name], value);
      form[name].value = value;
    }
    for (const name of TIME_FILTERS) form[name].value = isoToLocal(params.get(name));
    this.cursor = params.get("after") ? { after: params.get("after") }
      : params.get("before") ? { before: params.get("before") } : {};
    this.subscribe();
    this.load();
  }

  hide() {
    this.unsubscribe?.();
    this.unsubscribe = null;
  }

  urlFor(filter, cursor = {}) {
    const params = new URLSearchParams({ ...filter, ...cursor });
    const query = params.toString();
    return query ? `${this.base}?${query}` : this.base;
  }

  filtersChanged() {
    const form = this.ui.filters.elements;
    const filter = {};
    for (const name of FILTERS) if (form[name].value.trim()) filter[name] = form[name].value.trim();
    for (const name of TIME_FILTERS) if (form[name].value) filter[name] = localToIso(form[name].value);
    this.selected.clear();
    this.ui.bulkStatus.textContent = "";
    this.navigate(this.urlFor(filter));
  }

  page(cursor) {
    this.selected.clear();
    this.navigate(this.urlFor(this.filter(), cursor));
  }

  matches(job, filter = this.filter()) {
    return Object.entries(filter).every(([name, value]) => {
      if (name === "tag") return (job.tags || []).includes(value);
      if (name === "submittedAfter") return submitted(job) >= Date.parse(value);
      if (name === "submittedBefore") return submitted(job) < Date.parse(value);
      if (!FILTERS.includes(name)) return true; // filters the list applies that a row cannot show
      return job[name] === value;
    });
  }

  firstPage() {
    return !this.cursor.after && !this.cursor.before;
  }

  // ---- loading -------------------------------------------------------------------------------

  async load() {
    const touched = new Set();
    this.loading = touched;
    const variables = { filter: this.filter() };
    if (this.cursor.before) Object.assign(variables, { last: PAGE_SIZE, before: this.cursor.before });
    else Object.assign(variables, { first: PAGE_SIZE, after: this.cursor.after });
    if (!variables.after) delete variables.after;
    this.loadCounts();
    try {
      const data = await gql(LIST, variables);
      // Answers can arrive out of order (a filter changed twice quickly): only the latest renders.
      if (this.loading !== touched) return;
      const previous = this.jobs;
      this.jobs = new Map();
      for (const { node } of data.jobs.edges) {
        const newer = touched.has(node.id) ? previous.get(node.id) : null;
        const job = newer && freshness(newer) > freshness(node) ? newer : node;
        this.jobs.set(job.id, job);
      }
      this.pageInfo = data.jobs.pageInfo;
      if (this.cursor.before && !this.pageInfo.hasPreviousPage) {
        // Paged back to the newest jobs: this is the first page, which takes new jobs live.
        this.cursor = {};
        window.history.replaceState(null, "", this.urlFor(this.filter()));
      }
      this.loaded = true;
      this.renderAll();
      this.updateCounts(data.jobs.totalCount);
      this.showError(null);
    } catch (error) {
      if (this.loading === touched) {
        this.loaded = true;
        this.updateCounts();
        this.showError(error);
      }
    } finally {
      if (this.loading === touched) this.loading = null;
    }
  }

  async loadCounts() {
    try {
      const { queues } = await gql(COUNTS);
      const wanted = this.filter().queue;
      const totals = new Map();
      let known = false;
      for (const queue of queues) {
        offer(this.ui.filters.elements.queue, queue.name);
        if (!queue.counts || (wanted && queue.name !== wanted)) continue;
        known = true;
        for (const { status, count } of queue.counts) totals.set(status, (totals.get(status) || 0) + count);
      }
      this.renderStatusCounts(known ? totals : null);
    } catch {
      this.renderStatusCounts(null);
    }
  }

  renderStatusCounts(totals) {
    this.ui.counts.hidden = !totals;
    if (!totals) return this.ui.counts.replaceChildren();
    const filter = this.filter();
    const items = [...totals].filter(([, count]) => count > 0).map(([status, count]) => {
      const link = el("a", { href: this.urlFor({ ...filter, status }), dataset: { nav: "", status } },
        badge(status), ` ${count}`);
      if (filter.status === status) link.setAttribute("aria-current", "true");
      return el("li", {}, link);
    });
    this.ui.counts.replaceChildren(...items);
  }

  // ---- rendering -----------------------------------------------------------------------------

  renderAll() {
    const rows = [...this.jobs.values()].map((job) => this.row(job));
    this.ui.tbody.replaceChildren(...rows);
    this.current = -1;
    this.updateBulk();
  }

  row(job) {
    const checked = this.selected.has(job.id);
    const pick = el("td", { class: "pick" },
      el("input", { type: "checkbox", checked, "aria-label": `Select job ${job.id}`, dataset: { pick: job.id } }));
    const link = el("a", { href: `${this.base}/jobs/${encodeURIComponent(job.id)}`, dataset: { nav: "" }, title: job.id },
      el("code", {}, shortId(job.id)));
    const copyButton = el("button", { type: "button", class: "copy icon", dataset: { copyId: job.id },
      "aria-label": `Copy id of job ${job.id}`, title: "Copy the id" }, "copy");
    const id = el("th", { scope: "row", class: "id" }, link, copyButton);
    const status = el("td", { class: "status" }, badge(job.status));
    const tr = el("tr", { tabIndex: -1, dataset: { jobId: job.id, status: job.status } },
      pick, id, el("td", { class: "task" }, job.task ?? ""), el("td", { class: "queue" }, job.queue), status,
      progressCell(job), timeCell(job.submittedAt || job.createdAt, "submitted"), timeCell(job.startedAt, "started"),
      timeCell(job.endedAt, "ended"), actionsCell(job));
    if (checked) tr.classList.add("picked");
    return tr;
  }

  renderJob(job) {
    const old = this.ui.tbody.querySelector(`tr[data-job-id="${CSS.escape(job.id)}"]`);
    const fresh = this.row(job);
    if (old) {
      const focused = old.contains(document.activeElement) ? document.activeElement.dataset.action : null;
      if (old.classList.contains("current")) fresh.classList.add("current");
      old.replaceWith(fresh);
      if (focused) fresh.querySelector(`[data-action="${focused}"]`)?.focus();
      return;
    }
    const after = [...this.ui.tbody.rows].find((tr) => submitted(this.jobs.get(tr.dataset.jobId)) < submitted(job));
    this.ui.tbody.insertBefore(fresh, after || null);
  }

  updateCounts(total) {
    if (total !== undefined) this.total = total;
    const shown = this.jobs.size;
    this.ui.count.textContent = this.total != null && this.total > shown ? `(${shown} of ${this.total})` : `(${shown})`;
    this.ui.empty.hidden = shown > 0;
    this.ui.empty.textContent = this.loaded ? "No jobs match." : "Loading…";
    const info = this.pageInfo;
    this.ui.newer.disabled = !(this.cursor.after || info?.hasPreviousPage);
    this.ui.older.disabled = !(this.cursor.before || info?.hasNextPage);
  }

  showError(error) {
    this.ui.error.hidden = !error;
    this.ui.error.textContent = error ? String(error.message || error) : "";
  }

  // ---- live updates --------------------------------------------------------------------------

  subscribe() {
    this.unsubscribe?.();
    const socket = this.live();
    if (!socket) return;
    // The status filter is applied here, not by the server, so that rows leaving it disappear.
    const { queue, task, tag } = this.filter();
    const filter = Object.fromEntries(Object.entries({ queue, task, tag }).filter(([, v]) => v));
    this.unsubscribe = socket.subscribe(EVENTS, { filter }, {
      next: (payload) => {
        if (payload.errors?.length) return this.showError(payload.errors.map((e) => e.message).join("; "));
        const event = payload.data.jobEvents;
        if (event.type === "DELETED" || !event.job) this.remove(event.jobId);
        else this.upsert(event.job, { announce: true });
      },
      error: (errors) => this.showError(errors.map?.((e) => e.message).join("; ") || "Subscription failed"),
    });
  }

  upsert(job, { announce = false } = {}) {
    offer(this.ui.filters.elements.queue, job.queue);
    offer(this.ui.filters.elements.task, job.task);
    const known = this.jobs.get(job.id);
    if (known && freshness(job) < freshness(known)) return; // an older snapshot arriving late
    if (this.loading) this.loading.add(job.id);
    if (!this.matches(job)) {
      if (known) this.remove(job.id);
      return;
    }
    if (!known && !this.firstPage()) return; // new jobs belong on the first page only
    this.jobs.set(job.id, job);
    this.renderJob(job);
    if (!known) this.trim();
    this.updateCounts();
    if (announce && known?.status !== job.status) {
      say(`Job ${shortId(job.id)} (${job.task}) is ${job.status.toLowerCase()}.`);
    }
  }

  remove(id) {
    this.jobs.delete(id);
    this.ui.tbody.querySelector(`tr[data-job-id="${CSS.escape(id)}"]`)?.remove();
    this.updateCounts();
  }

  trim() {
    while (this.jobs.size > PAGE_SIZE) {
      const oldest = this.ui.tbody.rows[this.ui.tbody.rows.length - 1];
      this.jobs.delete(oldest.dataset.jobId);
      oldest.remove();
    }
  }

  // ---- one job's buttons, the keyboard ---------------------------------------------------------

  async clicked(event) {
    const copyButton = event.target.closest("button[data-copy-id]");
    if (copyButton) return copy(copyButton.dataset.copyId, copyButton);
    const button = event.target.closest("button[data-action]");
    if (!button) return;
    const id = button.closest("tr").dataset.jobId;
    if (button.dataset.action === "delete" && !(await confirmAction(`Delete job ${id} and its result?`))) return;
    button.disabled = true;
    try {
      this.showError(null);
      const done = await act(button.dataset.action, id, (message) => this.showError(message));
      if (done?.job) this.upsert(done.job, { announce: true });
      else if (done?.jobId) {
        this.remove(done.jobId);
        say(`Job ${shortId(id)} deleted.`);
      }
    } finally {
      button.disabled = false;
    }
  }

  move(step) {
    const rows = [...this.ui.tbody.rows];
    if (!rows.length) return;
    this.current = Math.max(0, Math.min(rows.length - 1, this.current + step));
    rows.forEach((tr, i) => tr.classList.toggle("current", i === this.current));
    rows[this.current].focus();
  }

  openCurrent() {
    const tr = this.ui.tbody.rows[this.current];
    if (tr) this.navigate(`${this.base}/jobs/${encodeURIComponent(tr.dataset.jobId)}`);
  }

  // ---- selection and bulk actions -------------------------------------------------------------

  picked(event) {
    const id = event.target.dataset.pick;
    if (!id) return;
    if (event.target.checked) this.selected.add(id);
    else this.selected.delete(id);
    event.target.closest("tr").classList.toggle("picked", event.target.checked);
    this.updateBulk();
  }

  pickPage(checked) {
    for (const box of this.ui.tbody.querySelectorAll("input[data-pick]")) {
      box.checked = checked;
      box.closest("tr").classList.toggle("picked", checked);
      if (checked) this.selected.add(box.dataset.pick);
      else this.selected.delete(box.dataset.pick);
    }
    this.updateBulk();
  }

  updateBulk() {
    const n = this.selected.size;
    const all = this.features.bulk && this.ui.allMatching.checked;
    this.ui.bulk.hidden = n === 0 && !all;
    if (!n && !all) this.ui.allMatching.checked = false;
    const matching = this.total != null ? `all ${this.total} matching jobs` : "every matching job";
    this.ui.bulkCount.textContent = all ? `${matching} selected` : `${n} selected`;
    const boxes = this.ui.tbody.querySelectorAll("input[data-pick]");
    this.ui.selectPage.checked = boxes.length > 0 && [...boxes].every((b) => b.checked);
  }

  async bulk(event) {
    const button = event.target.closest("button[data-bulk]");
    if (!button) return;
    const action = button.dataset.bulk;
    const all = this.features.bulk && this.ui.allMatching.checked;
    const target = all ? { filter: this.filter() } : { ids: [...this.selected] };
    const what = all ? this.ui.bulkCount.textContent.replace(/ selected$/, "")
      : `${target.ids.length} selected job${target.ids.length === 1 ? "" : "s"}`;
    if (!(await confirmAction(`${BULK_VERBS[action]} ${what}?`))) return;
    button.disabled = true;
    this.ui.bulkStatus.textContent = `${BULK_VERBS[action]}: working…`;
    try {
      const outcome = await bulkAct(this.features, action, target, JOB);
      const skipped = (outcome.skipped.length ? `, ${outcome.skipped.length} skipped` : "")
        + (outcome.truncated ? ", more remain: run it again" : "");
      say(`${BULK_VERBS[action]}: ${outcome.count} done${skipped}.`);
      this.ui.bulkStatus.textContent = `${BULK_VERBS[action]}: ${outcome.count} done${skipped}.`;
      this.selected.clear();
      this.ui.allMatching.checked = false;
      this.load();
    } catch (error) {
      this.ui.bulkStatus.textContent = `${BULK_VERBS[action]}: not done (${error.message}).`;
    } finally {
      button.disabled = false;
    }
  }
}

/** One job's cancel/requeue/delete; the mutation's success member, or null after saying why not
 * (aloud, and on the page through `showError`: a refused action must not pass unseen). */
export async function act(action, id, showError) {
  const [field, success, fields] = ACTIONS[action];
  const mutation = `mutation ($id: ID!) { ${field}(id: $id) {
    __typename ... on ${success} { ${fields} } ... on Error { message } } }`;
  let message;
  try {
    const result = (await gql(mutation, { id }))[field];
    if (result.__typename === success) return result;
    message = result.message;
  } catch (error) {
    message = error.message;
  }
  message = `${BULK_VERBS[action]} ${id}: not done (${message}).`;
  say(message);
  showError(message);
  return null;
}

export function offer(select, name) {
  if (name && ![...select.options].some((o) => o.value === name)) select.append(new Option(name, name));
}

function timeCell(iso, name) {
  return el("td", { class: `when ${name}` }, timeEl(iso));
}

function progressCell(job) {
  const bar = el("progress", { max: 1, "aria-label": `Progress of ${job.id}` });
  const fraction = job.status === "FINISHED" ? 1 : job.progress?.fraction;
  if (fraction != null) bar.value = fraction;
  else if (job.status !== "STARTED") bar.value = 0; // no value: indeterminate, only while running
  const percent = fraction != null ? `${Math.round(fraction * 100)}%` : "";
  const text = [percent, job.error?.message || job.progress?.message].filter(Boolean).join(" · ");
  return el("td", { class: "progress" }, bar, el("span", { title: text }, text));
}

function actionsCell(job) {
  const td = el("td", { class: "actions" });
  for (const [action, allowed, label] of [
    ["cancel", CANCELABLE, "Cancel"], ["requeue", REQUEUEABLE, "Requeue"], ["delete", DELETABLE, "Delete"],
  ]) {
    if (!allowed.has(job.status)) continue;
    td.append(el("button", { type: "button", dataset: { action }, "aria-label": `${label} job ${job.id}`,
      class: action === "delete" ? "danger" : null }, label));
  }
  return td;
}
