// The queues and workers pages: what RQ knows, with links into the job list.
import { gql, needsKey } from "./api.js";
import { confirmAction } from "./bulk.js";
import { $, el, say, timeEl } from "./format.js";

const STATUSES = ["QUEUED", "STARTED", "DEFERRED", "SCHEDULED", "FINISHED", "FAILED", "STOPPED", "CANCELED"];
const QUEUES = "query Queues { queues { name counts { status count } } }";
const EMPTY = `mutation Empty($queue: String!) { emptyQueue(queue: $queue) {
  __typename ... on EmptyQueueSuccess { deleted } ... on Error { message } } }`;
const SUSPENSION = (field) => `mutation Suspension { ${field} {
  __typename ... on WorkersSuspension { suspended } ... on Error { message } } }`;
const WORKERS = `query Workers { workersSuspended workers { name state queues currentJobId lastHeartbeat birth
  successfulJobCount failedJobCount pid hostname } }`;

function table(id, head, rows, note, empty) {
  $(`#${id} thead`).replaceChildren(el("tr", {}, head.map((h) => el("th", { scope: "col" }, h))));
  $(`#${id} tbody`).replaceChildren(...rows);
  note.hidden = rows.length > 0;
  note.textContent = empty;
}

function failed(note, error) {
  note.hidden = false;
  note.textContent = needsKey(error) ? "Enter an API key above to see this page." : `Could not load: ${error.message}`;
}

export class QueuesView {
  constructor({ base }) {
    this.base = base;
    this.note = $("#queues-note");
    $("#queues tbody").addEventListener("click", (event) => this.empty(event));
  }

  /** Deletes the queue's waiting jobs (emptyQueue, admins), after asking. */
  async empty(event) {
    const button = event.target.closest("button[data-empty]");
    if (!button) return;
    const queue = button.dataset.empty;
    if (!(await confirmAction(`Delete the ${button.dataset.waiting} jobs waiting on queue ${queue}?`))) return;
    button.disabled = true;
    try {
      const result = (await gql(EMPTY, { queue })).emptyQueue;
      say(result.__typename === "EmptyQueueSuccess" ? `Queue ${queue}: ${result.deleted} jobs deleted.` : result.message);
    } catch (error) {
      say(error.message);
    }
    await this.show();
  }

  async show() {
    this.note.hidden = false;
    this.note.textContent = "Loading…";
    try {
      const { queues } = await gql(QUEUES);
      const counted = queues.some((q) => q.counts);
      const head = counted ? ["Queue", ...STATUSES.map((s) => s.toLowerCase())] : ["Queue"];
      const rows = queues.map((queue) => {
        const counts = new Map((queue.counts || []).map((c) => [c.status, c.count]));
        const link = (status, text) => el("a", {
          href: `${this.base}?${new URLSearchParams(status ? { queue: queue.name, status } : { queue: queue.name })}`,
          dataset: { nav: "" },
        }, text);
        const cells = counted ? STATUSES.map((s) => el("td", { class: "num" },
          counts.get(s) ? link(s, String(counts.get(s))) : String(counts.get(s) ?? "—"))) : [];
        const waiting = counts.get("QUEUED") || 0;
        const empty = counted ? el("td", {}, waiting ? el("button", { type: "button", class: "danger",
          dataset: { empty: queue.name, waiting: String(waiting) }, "aria-label": `Empty queue ${queue.name}` },
          "Empty") : null) : null;
        return el("tr", { dataset: { queue: queue.name } }, el("th", { scope: "row" }, link(null, queue.name)), cells,
          empty);
      });
      if (counted) head.push("Waiting jobs");
      table("queues", head, rows, this.note, "No queues yet: submit a job.");
      if (queues.length && !counted) {
        this.note.hidden = false;
        this.note.textContent = "Counts span every tenant's jobs, so only an admin key sees them.";
      }
    } catch (error) {
      failed(this.note, error);
    }
  }

  hide() {}
}

export class WorkersView {
  constructor({ base }) {
    this.base = base;
    this.note = $("#workers-note");
    this.toggle = $("#workers-toggle");
    this.toggle.addEventListener("click", () => this.suspendOrResume());
  }

  /** RQ's suspension (suspendWorkers / resumeWorkers, admins): workers finish their job and wait. */
  async suspendOrResume() {
    const suspend = this.toggle.dataset.suspended !== "true";
    if (suspend && !(await confirmAction("Suspend every worker? Each finishes its current job and takes no other until resumed."))) return;
    const field = suspend ? "suspendWorkers" : "resumeWorkers";
    this.toggle.disabled = true;
    try {
      const result = (await gql(SUSPENSION(field)))[field];
      if (result.__typename !== "WorkersSuspension") say(result.message);
    } catch (error) {
      say(error.message);
    }
    this.toggle.disabled = false;
    await this.show();
  }

  showSuspension(suspended) {
    $("#workers-suspension").textContent = suspended
      ? "Workers are suspended: they take no new jobs."
      : "Workers are taking jobs.";
    this.toggle.hidden = false;
    this.toggle.dataset.suspended = String(suspended);
    this.toggle.textContent = suspended ? "Resume workers" : "Suspend workers";
  }

  async show() {
    this.note.hidden = false;
    this.note.textContent = "Loading…";
    try {
      const { workers, workersSuspended } = await gql(WORKERS);
      this.showSuspension(workersSuspended);
      const head = ["Worker", "State", "Queues", "Current job", "Heartbeat", "Up since", "Done", "Failed", "Host / pid"];
      const rows = workers.map((w) => el("tr", { id: `worker-${w.name}`, dataset: { worker: w.name } },
        el("th", { scope: "row" }, el("code", {}, w.name)),
        el("td", {}, w.state),
        el("td", {}, w.queues.flatMap((q, i) => [i ? ", " : "",
          el("a", { href: `${this.base}?queue=${encodeURIComponent(q)}`, dataset: { nav: "" } }, q)])),
        el("td", {}, w.currentJobId ? el("a", { href: `${this.base}/jobs/${encodeURIComponent(w.currentJobId)}`,
          dataset: { nav: "" } }, el("code", {}, w.currentJobId)) : "—"),
        el("td", {}, timeEl(w.lastHeartbeat)),
        el("td", {}, timeEl(w.birth)),
        el("td", { class: "num" }, String(w.successfulJobCount ?? "—")),
        el("td", { class: "num" }, String(w.failedJobCount ?? "—")),
        el("td", {}, [w.hostname, w.pid].filter((v) => v != null).join(" / "))));
      table("workers", head, rows, this.note, "No worker is running: start one with `gql-jobs worker`.");
    } catch (error) {
      failed(this.note, error);
    }
  }

  hide() {}
}
