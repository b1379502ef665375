// What this server's API offers beyond the basics: the console ships with the API it talks to, so
// these are fixed here rather than discovered (introspection may be off in production).
import { gql } from "./api.js";

const BULK = (field) => `mutation Bulk($filter: JobFilter!, $after: String) {
  ${field}(filter: $filter, after: $after) {
    __typename
    ... on BulkActionResult { matched acted truncated cursor skipped { id reason message } }
    ... on Error { message }
  }
}`;
// Calls one "all matching" action may take (each acts on at most GQL_JOBS_MAX_BULK_JOBS jobs).
const MAX_CALLS = 20;

/**
 * requeueJobs/cancelJobs/deleteJobs on { ids } or { filter }. A truncated answer is followed by the
 * same call (jobs acted on no longer match, so it goes on with the rest; `after` passes the ones it
 * could not take), up to MAX_CALLS. Resolves { count, skipped, truncated }.
 */
async function bulk(action, target) {
  const field = `${action}Jobs`;
  const filter = target.ids ? { ids: target.ids } : target.filter;
  const outcome = { count: 0, skipped: [], truncated: false };
  let after = null;
  for (let call = 0; call < MAX_CALLS; call += 1) {
    const result = (await gql(BULK(field), { filter, after }))[field];
    if (result.__typename !== "BulkActionResult") throw new Error(result.message);
    outcome.count += result.acted;
    outcome.skipped.push(...result.skipped);
    outcome.truncated = result.truncated;
    if (!result.truncated || target.ids) break;
    after = result.cursor;
  }
  return outcome;
}

export const FEATURES = {
  bulk, // (action, { ids } | { filter }) => Promise<{ count, skipped, truncated }>
  attempts: "attempts { outcome workerName startedAt endedAt durationSeconds error { type message } }",
  timeRange: true, // JobFilter.submittedAfter / submittedBefore
};
