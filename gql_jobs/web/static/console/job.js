// One job: /console/jobs/<id>. Everything the API knows about it, live while it runs.
import { gql } from "./api.js";
import { $, badge, copy, duration, el, json, say, timeEl } from "./format.js";
import { confirmAction } from "./bulk.js";
import { act, CANCELABLE, DELETABLE, REQUEUEABLE } from "./jobs.js";

const FINAL = new Set(["FINISHED", "FAILED", "STOPPED", "CANCELED"]);
const DETAIL = (extra) => `id status rawStatus task queue payload meta tags description submittedAt createdAt
  enqueuedAt startedAt endedAt result error { type message traceback }
  progress { current total fraction message updatedAt } retriesLeft timeout workerName resultExpiresAt
  position dependsOn { id status task } ${extra}`;

export class JobView {
  constructor({ base, features, live, navigate }) {
    Object.assign(this, { base, features, live, navigate });
    this.ui = { id: $("#job-id"), body: $("#job-body"), error: $("#job-error"), heading: $("#job-heading") };
    this.unsubscribe = null;
    this.jobId = null;
    this.ui.body.addEventListener("click", (event) => this.clicked(event));
    $("#job-heading .copy").addEventListener("click", (event) => copy(this.jobId, event.target));
  }

  fields() {
    return DETAIL(this.features.attempts || "");
  }

  async show(id) {
    this.hide();
    this.jobId = id;
    this.ui.id.textContent = id;
    document.title = `${id} · gql-jobs`;
    this.ui.body.replaceChildren(el("p", { class: "empty" }, "Loading…"));
    this.showError(null);
    try {
      const { job } = await gql(`query Job($id: ID!) { job(id: $id) { ${this.fields()} } }`, { id });
      if (this.jobId !== id) return;
      if (!job) {
        this.ui.body.replaceChildren(el("p", { class: "empty", id: "job-missing" },
          "No job has this id (or it has expired, or it is not yours)."));
        return;
      }
      this.render(job);
      if (!FINAL.has(job.status)) this.follow(id);
    } catch (error) {
      if (this.jobId === id) {
        this.ui.body.replaceChildren();
        this.showError(error);
      }
    }
  }

  hide() {
    this.unsubscribe?.();
    this.unsubscribe = null;
  }

  follow(id) {
    const socket = this.live();
    if (!socket) return;
    this.unsubscribe = socket.subscribe(
      `subscription Follow($id: ID!) { jobUpdates(id: $id) { ${this.fields()} } }`, { id }, {
        next: (payload) => {
          if (payload.errors?.length) return this.showError(payload.errors.map((e) => e.message).join("; "));
          if (this.jobId === id) this.render(payload.data.jobUpdates);
        },
        error: (errors) => this.showError(errors.map?.((e) => e.message).join("; ") || "Subscription failed"),
      });
  }

  showError(error) {
    this.ui.error.hidden = !error;
    this.ui.error.textContent = error ? String(error.message || error) : "";
  }

  render(job) {
    this.job = job;
    const body = this.ui.body;
    body.dataset.status = job.status;
    body.replaceChildren(
      el("div", { class: "job-head" }, badge(job.status), this.actions(job)),
      el("div", { class: "job-grid" },
        el("section", { class: "card", "aria-labelledby": "timeline-heading" },
          el("h3", { id: "timeline-heading" }, "Timeline"), timeline(job)),
        el("section", { class: "card", "aria-labelledby": "facts-heading" },
          el("h3", { id: "facts-heading" }, "About"), this.facts(job))),
      job.error ? errorSection(job.error) : null,
      attemptsSection(job.attempts),
      block("Result", job.status === "FINISHED" ? job.result : undefined, "result"),
      block("Payload", job.payload, "payload"),
      block("Meta", job.meta, "meta"),
      this.dependencies(job),
    );
  }

  actions(job) {
    const wrap = el("div", { class: "actions" });
    for (const [action, allowed, label] of [
      ["cancel", CANCELABLE, "Cancel"], ["requeue", REQUEUEABLE, "Requeue"], ["delete", DELETABLE, "Delete"],
    ]) {
      if (allowed.has(job.status)) {
        wrap.append(el("button", { type: "button", dataset: { action }, class: action === "delete" ? "danger" : null },
          label));
      }
    }
    return wrap;
  }

  facts(job) {
    const list = this.base;
    const tags = job.tags.length ? job.tags.map((t) => el("a", { href: `${list}?tag=${encodeURIComponent(t)}`,
      dataset: { nav: "" }, class: "tag" }, t)) : "none";
    const worker = job.workerName ? el("a", { href: `${list}/workers`, dataset: { nav: "" } }, job.workerName) : "—";
    const progress = job.progress ? [
      job.progress.fraction != null ? `${Math.round(job.progress.fraction * 100)}%` : `${job.progress.current}`,
      job.progress.message,
    ].filter(Boolean).join(" · ") : "—";
    const rows = [
      ["Task", job.task ?? "—"],
      ["Queue", el("a", { href: `${list}?queue=${encodeURIComponent(job.queue)}`, dataset: { nav: "" } }, job.queue)],
      ["Status", `${job.status} (RQ: ${job.rawStatus})`],
      ["Position in queue", job.position != null ? String(job.position + 1) : "—"],
      ["Tags", tags],
      ["Worker", worker],
      ["Progress", progress],
      ["Retries left", job.retriesLeft != null ? String(job.retriesLeft) : "—"],
      ["Timeout", job.timeout != null ? `${job.timeout} s` : "—"],
      ["Result kept until", job.resultExpiresAt ? timeEl(job.resultExpiresAt) : "—"],
      ["Description", job.description || "—"],
    ];
    if (this.features.attempts) rows.splice(7, 0, ["Attempts", job.attempts ? String(job.attempts.length) : "—"]);
    return el("dl", { class: "facts" }, rows.map(([name, value]) => [el("dt", {}, name),
      el("dd", { dataset: { fact: name.toLowerCase().replaceAll(" ", "-") } }, value)]));
  }

  dependencies(job) {
    if (!job.dependsOn.length) return null;
    return el("section", { class: "card", "aria-labelledby": "deps-heading" },
      el("h3", { id: "deps-heading" }, "Waits for"),
      el("ul", { class: "deps" }, job.dependsOn.map((dep) => el("li", {},
        el("a", { href: `${this.base}/jobs/${encodeURIComponent(dep.id)}`, dataset: { nav: "" } }, el("code", {}, dep.id)),
        " ", badge(dep.status), " ", dep.task ?? ""))));
  }

  async clicked(event) {
    const copyButton = event.target.closest("button[data-copy]");
    if (copyButton) return copy($(copyButton.dataset.copy).textContent, copyButton);
    const button = event.target.closest("button[data-action]");
    if (!button || !this.job) return;
    const id = this.job.id;
    if (button.dataset.action === "delete" && !(await confirmAction(`Delete job ${id} and its result?`))) return;
    button.disabled = true;
    this.showError(null);
    const done = await act(button.dataset.action, id, (message) => this.showError(message));
    if (done?.jobId) {
      say(`Job ${id} deleted.`);
      this.navigate(this.base);
      return;
    }
    if (done?.job) {
      say(`Job ${id} is ${done.job.status.toLowerCase()}.`);
      await this.show(id); // the whole job again (the mutation answers the list's fields)
    }
    button.disabled = false;
  }
}

/** Each run RQ recorded (Job.attempts), oldest first. */
function attemptsSection(attempts) {
  if (!attempts?.length) return null;
  const head = ["#", "Outcome", "Worker", "Started", "Ended", "Took", "Error"];
  const rows = attempts.map((a, i) => el("tr", { dataset: { outcome: a.outcome } },
    el("td", { class: "num" }, String(i + 1)), el("td", {}, badge(a.outcome)),
    el("td", {}, a.workerName ? el("code", {}, a.workerName) : "—"),
    el("td", { class: "when" }, timeEl(a.startedAt)), el("td", { class: "when" }, timeEl(a.endedAt)),
    el("td", {}, duration(a.durationSeconds)),
    el("td", { class: "attempt-error" }, a.error ? `${a.error.type ? `${a.error.type}: ` : ""}${a.error.message}` : "")));
  return el("section", { class: "card", "aria-labelledby": "attempts-heading" },
    el("h3", { id: "attempts-heading" }, `Attempts (${attempts.length})`),
    el("div", { class: "table-wrap" }, el("table", { id: "job-attempts" },
      el("thead", {}, el("tr", {}, head.map((h) => el("th", { scope: "col" }, h)))), el("tbody", {}, rows))));
}

function timeline(job) {
  const end = job.endedAt ? job.status.toLowerCase() : null;
  const steps = [
    ["Submitted", job.submittedAt || job.createdAt],
    ["Enqueued", job.enqueuedAt],
    ["Started", job.startedAt],
    [end ? `Ended (${end})` : "Ended", job.endedAt],
  ];
  const items = steps.map(([name, iso], i) => {
    const previous = steps.slice(0, i).reverse().find(([, t]) => t)?.[1];
    const gap = iso && previous ? duration((Date.parse(iso) - Date.parse(previous)) / 1000) : "";
    return el("li", { class: iso ? "done" : "pending", dataset: { step: name.split(" ")[0].toLowerCase() } },
      el("span", { class: "step" }, name),
      iso ? timeEl(iso) : el("span", { class: "muted" }, "not yet"),
      gap ? el("small", { class: "muted" }, ` (+${gap})`) : null);
  });
  return el("ol", { class: "timeline" }, items);
}

function errorSection(error) {
  const traceback = el("pre", { id: "job-traceback", class: "traceback" }, error.traceback || "(no traceback)");
  return el("section", { class: "card error-card", "aria-labelledby": "error-heading" },
    el("h3", { id: "error-heading" }, "Error"),
    el("p", { class: "error-message" }, el("strong", {}, error.type ? `${error.type}: ` : ""), error.message),
    el("div", { class: "pre-head" }, el("span", {}, "Traceback"),
      el("button", { type: "button", class: "copy", dataset: { copy: "#job-traceback" } }, "Copy traceback")),
    traceback);
}

function block(title, value, id) {
  if (value === undefined) return null;
  const pre = el("pre", { id: `job-${id}` }, value === null ? "null" : json(value));
  return el("section", { class: "card", "aria-labelledby": `${id}-heading` },
    el("div", { class: "pre-head" }, el("h3", { id: `${id}-heading` }, title),
      el("button", { type: "button", class: "copy", dataset: { copy: `#job-${id}` } }, `Copy ${title.toLowerCase()}`)),
    pre);
}

