// The submit form, built from each task's input JSON Schema.
import { gql, needsKey } from "./api.js";
import { $ } from "./format.js";

const SUBMIT = (fields) => `mutation Submit($input: SubmitJobInput!) {
  submitJob(input: $input) {
    __typename
    ... on SubmitJobSuccess { job { ${fields} } }
    ... on Error { message }
    ... on InvalidPayloadError { fieldErrors { path message } }
  }
}`;

export class SubmitForm {
  /** onSubmitted(job): a job was accepted. */
  constructor(jobFields, onSubmitted) {
    this.jobFields = jobFields;
    this.onSubmitted = onSubmitted;
    this.tasks = new Map();
    this.form = $("#submit-form");
    this.task = $("#submit-task");
    this.description = $("#submit-task-description");
    this.payload = $("#payload-fields");
    this.status = $("#submit-status");
    this.task.addEventListener("change", () => this.buildPayloadFields());
    this.form.addEventListener("submit", (event) => this.submit(event));
  }

  setTasks(tasks) {
    this.tasks = new Map(tasks.map((t) => [t.name, t]));
    const current = this.task.value;
    this.task.replaceChildren(...tasks.map((t) => new Option(t.name, t.name)));
    if (this.tasks.has(current)) this.task.value = current;
    this.form.querySelector("button[type=submit]").disabled = tasks.length === 0;
    this.buildPayloadFields();
    if (tasks.length === 0) this.description.textContent = "This server has no tasks registered.";
  }

  /** No task list: say why instead of showing an empty one. */
  explain(error) {
    this.setTasks([]);
    this.description.textContent = needsKey(error)
      ? "The tasks you may submit show once you enter an API key above (this server needs one)."
      : `The tasks could not be read: ${error.message}`;
  }

  buildPayloadFields() {
    const task = this.tasks.get(this.task.value);
    this.payload.querySelectorAll(".field").forEach((node) => node.remove());
    this.description.textContent = task?.description || "";
    if (!task) return;
    const schema = task.inputSchema || {};
    const properties = schema.properties || {};
    const required = new Set(schema.required || []);
    if (Object.keys(properties).length === 0) {
      const field = control("payload", { title: "Payload (a JSON object)", default: {} }, false, schema);
      field.dataset.field = "";
      this.payload.append(field);
      return;
    }
    for (const [name, prop] of Object.entries(properties)) {
      this.payload.append(control(name, prop, required.has(name), schema));
    }
  }

  readPayload() {
    const fields = [...this.payload.querySelectorAll(".field")];
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

  fieldError(path, message) {
    const field = this.payload.querySelector(`.field[data-field="${CSS.escape(path[0] ?? "")}"]`)
      || this.payload.querySelector('.field[data-field=""]');
    if (!field) return false;
    field.querySelector(".error").textContent = message;
    field.querySelector("input, select, textarea").setAttribute("aria-invalid", "true");
    return true;
  }

  clearFieldErrors() {
    this.payload.querySelectorAll(".error").forEach((node) => (node.textContent = ""));
    this.payload.querySelectorAll("[aria-invalid]").forEach((node) => node.removeAttribute("aria-invalid"));
  }

  async submit(event) {
    event.preventDefault();
    this.clearFieldErrors();
    const button = this.form.querySelector("button[type=submit]");
    let payload;
    try {
      payload = this.readPayload();
    } catch (error) {
      this.status.textContent = `The payload is not valid JSON: ${error.message}`;
      return;
    }
    const input = { task: this.task.value, payload };
    const queue = this.form.elements.queue.value.trim();
    const tags = this.form.elements.tags.value.split(",").map((t) => t.trim()).filter(Boolean);
    if (queue) input.queue = queue;
    if (tags.length) input.tags = tags;
    button.disabled = true;
    this.status.textContent = "Submitting…";
    try {
      const result = (await gql(SUBMIT(this.jobFields), { input })).submitJob;
      if (result.__typename === "SubmitJobSuccess") {
        this.onSubmitted(result.job);
        this.status.textContent = `Submitted ${result.job.id} (${result.job.task}).`;
      } else {
        const unplaced = (result.fieldErrors || []).filter((e) => !this.fieldError(e.path, e.message));
        this.status.textContent = [result.message, ...unplaced.map((e) => e.message)].join(" ");
      }
    } catch (error) {
      this.status.textContent = `Not submitted: ${error.message}`;
    } finally {
      button.disabled = false;
    }
  }
}

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
