// The charts page: the `stats` query (admins only) drawn with uPlot (vendored, static/vendor-console/).
import { gql, needsKey } from "./api.js";
import { $, duration } from "./format.js";
import { offer } from "./jobs.js";

const STATS = `query Stats($window: Int!, $step: Int!, $queue: String, $task: String) {
  stats(window: $window, step: $step, queue: $queue, task: $task) {
    __typename
    ... on JobStats {
      buckets { start submitted finished failed runTime { count p50 p90 p99 } }
      totals { submitted finished failed runTime { count p50 p90 p99 mean } }
    }
    ... on Error { message }
  }
}`;
const CHARTS = {
  throughput: [["submitted", "Submitted", "--run"], ["finished", "Finished", "--ok"]],
  failures: [["failed", "Failed", "--bad"]],
  runtime: [["p50", "p50", "--ok"], ["p90", "p90", "--wait"], ["p99", "p99", "--bad"]],
};

// Whole jobs only on the count axes.
const COUNT_STEPS = [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000, 20000, 50000, 100000];

function color(name) {
  return getComputedStyle(document.documentElement).getPropertyValue(name).trim();
}

export class ChartsView {
  constructor({ base }) {
    this.base = base;
    this.form = $("#charts-form");
    this.note = $("#charts-note");
    this.totals = $("#charts-totals");
    this.plots = new Map();
    this.form.addEventListener("change", () => this.load());
    this.resize = () => {
      for (const [name, plot] of this.plots) plot.setSize(this.size(name));
    };
  }

  setMeta(tasks, queues) {
    for (const name of queues) offer(this.form.elements.queue, name);
    for (const name of tasks) offer(this.form.elements.task, name);
  }

  size(name) {
    const figure = $(`#chart-${name}`);
    return { width: Math.max(200, figure.clientWidth - 16), height: 220 };
  }

  show() {
    window.addEventListener("resize", this.resize);
    return this.load();
  }

  hide() {
    window.removeEventListener("resize", this.resize);
  }

  async load() {
    const [window_, step] = this.form.elements.window.value.split(":").map(Number);
    const variables = { window: window_, step };
    for (const name of ["queue", "task"]) if (this.form.elements[name].value) variables[name] = this.form.elements[name].value;
    this.note.hidden = false;
    this.note.textContent = "Loading…";
    try {
      const { stats } = await gql(STATS, variables);
      if (stats.__typename !== "JobStats") throw Object.assign(new Error(stats.message), { code: stats.__typename });
      this.draw(stats);
      const t = stats.totals;
      this.totals.textContent = `In this window: ${t.submitted} submitted, ${t.finished} finished, ${t.failed} failed`
        + (t.runTime.count ? `; run time p50 ${duration(t.runTime.p50)}, p90 ${duration(t.runTime.p90)},`
          + ` p99 ${duration(t.runTime.p99)}, mean ${duration(t.runTime.mean)}.` : ".");
      this.note.hidden = true;
      document.body.dataset.charts = "drawn";
    } catch (error) {
      this.note.textContent = error.code === "UnauthorizedError" || needsKey(error)
        ? "The charts need an admin key: the history spans every tenant's jobs."
        : `Could not load the charts: ${error.message}`;
    }
  }

  draw(stats) {
    const x = stats.buckets.map((b) => Date.parse(b.start) / 1000);
    const axis = { stroke: color("--muted"), grid: { stroke: color("--line") }, ticks: { stroke: color("--line") } };
    for (const [name, series] of Object.entries(CHARTS)) {
      const values = series.map(([field]) => stats.buckets.map((b) =>
        name === "runtime" ? b.runTime[field] ?? null : b[field]));
      const options = {
        ...this.size(name),
        series: [{}, ...series.map(([, label, stroke]) => ({
          label, stroke: color(stroke), width: 2, spanGaps: name === "runtime",
          value: name === "runtime" ? (_, v) => (v == null ? "—" : duration(v)) : undefined,
        }))],
        axes: [axis, name === "runtime"
          ? { ...axis, size: 80, values: (_, ticks) => ticks.map((v) => duration(v)) }
          : { ...axis, size: 50, incrs: COUNT_STEPS, values: (_, ticks) => ticks.map(String) }],
        scales: { y: { range: (_, min, max) => [0, Math.max(1, max ?? 1)] } },
      };
      this.plots.get(name)?.destroy();
      this.plots.set(name, new window.uPlot(options, [x, ...values], $(`#chart-${name}`)));
    }
  }
}
