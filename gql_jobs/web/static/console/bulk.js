// Bulk actions over chosen jobs, and the confirmation they ask for first.
import { gql } from "./api.js";
import { $ } from "./format.js";

export const BULK_VERBS = { requeue: "Requeue", cancel: "Cancel", delete: "Delete" };
const SINGLE = { requeue: "requeueJob", cancel: "cancelJob", delete: "deleteJob" };
const CHUNK = 20;
const SUCCESS = { requeue: "RequeueJobSuccess", cancel: "CancelJobSuccess", delete: "DeleteJobSuccess" };

/** Asks in a modal <dialog>; resolves true on "Go ahead", false on "Keep them" or Escape. */
export function confirmAction(text) {
  const dialog = $("#confirm");
  $("#confirm-text").textContent = text;
  return new Promise((resolve) => {
    const done = (answer) => {
      dialog.removeEventListener("close", onClose);
      if (dialog.open) dialog.close();
      resolve(answer);
    };
    const onClose = () => done(false);
    dialog.addEventListener("close", onClose);
    $("#confirm-ok").onclick = () => done(true);
    $("#confirm-no").onclick = () => done(false);
    dialog.showModal();
    $("#confirm-no").focus();
  });
}

/**
 * Runs `action` on `target` ({ ids } or { filter }); resolves { count, skipped }.
 * With the bulk mutations (`features.bulk`) it is one of them; without, one document of aliased
 * single mutations (ids only), so that selected rows still go in one request.
 */
export async function bulkAct(features, action, target, jobFields) {
  if (features.bulk) return features.bulk(action, target);
  const ids = target.ids || [];
  const field = SINGLE[action];
  const skipped = [];
  // The server bounds aliases per document (GQL_JOBS_MAX_QUERY_ALIASES, 30 by default).
  for (let start = 0; start < ids.length; start += CHUNK) {
    const chunk = ids.slice(start, start + CHUNK);
    const parts = chunk.map((_, i) => `j${i}: ${field}(id: $id${i}) { __typename }`);
    const header = chunk.map((_, i) => `$id${i}: ID!`).join(", ");
    const variables = Object.fromEntries(chunk.map((id, i) => [`id${i}`, id]));
    const data = await gql(`mutation Bulk(${header}) { ${parts.join("\n")} }`, variables);
    skipped.push(...chunk.filter((_, i) => data[`j${i}`].__typename !== SUCCESS[action]));
  }
  void jobFields;
  return { count: ids.length - skipped.length, skipped };
}
