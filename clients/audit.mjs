// The GraphQL-over-HTTP spec's own audit (graphql-http's serverAudits) against a live server.
// Usage: node audit.mjs <graphql url>. Prints one JSON object: every audit's id, name, status
// ("ok", "warn" or "error") and, for the failures, the reason and the response that caused it.
import { auditServer } from 'graphql-http';

const url = process.argv[2];
const results = await auditServer({ url });
const audits = await Promise.all(
  results.map(async (result) => {
    const entry = { id: result.id, name: result.name, status: result.status };
    if (result.status !== 'ok') {
      entry.reason = result.reason;
      const response = result.response;
      entry.response = {
        status: response.status,
        contentType: response.headers.get('content-type'),
        body: (await response.text()).slice(0, 500),
      };
    }
    return entry;
  }),
);
console.log(JSON.stringify({ audits }));
