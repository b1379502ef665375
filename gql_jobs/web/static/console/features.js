// What this server's API offers beyond the basics the console always uses. The console ships with
// the API it talks to, so these are fixed here rather than discovered (introspection may be off).
export const FEATURES = {
  bulk: null, // (action, { ids } | { filter }) => Promise<{ count, skipped }>; null: one request of aliases
  attempts: "", // the fields of Job.attempts to ask for, "" when the API has none
  timeRange: false, // JobFilter.submittedAfter / submittedBefore
};
