// The page of tests/integration/test_browser.py's cross-origin tests: what a frontend team's code
// does with real client libraries. urql submits a job over HTTP (its Authorization header makes
// the browser send a CORS preflight), then graphql-ws follows it (the key in connection_init,
// since browsers cannot set headers on a WebSocket) until it is final.
// Parameters come in the URL: ?api=<http url of /graphql>&key=<API key>[&follow=<job id>]
// (with `follow`, the page only follows that job, submitting nothing).
import { Client, cacheExchange, fetchExchange } from '@urql/core';
import { createClient } from 'graphql-ws';

const SUBMIT = `mutation SubmitFromFrontend($input: SubmitJobInput!) {
  submitJob(input: $input) {
    ... on SubmitJobSuccess { job { id status } }
    ... on Error { message }
  }
}`;
const FOLLOW = `subscription FollowFromFrontend($id: ID!) {
  jobUpdates(id: $id) { id status result }
}`;
const FINAL = new Set(['FINISHED', 'FAILED', 'STOPPED', 'CANCELED']);

const params = new URLSearchParams(location.search);
const api = params.get('api');
const key = params.get('key');
const $ = (id) => document.getElementById(id);

function fail(message) {
  $('error').textContent = message;
  document.body.dataset.state = 'failed';
}

async function submit() {
  const client = new Client({
    url: api,
    exchanges: [cacheExchange, fetchExchange],
    fetchOptions: { headers: { Authorization: `Bearer ${key}` } },
  });
  const input = { task: 'echo', payload: { from: location.origin }, queue: params.get('queue') || 'default' };
  const result = await client.mutation(SUBMIT, { input }).toPromise();
  if (result.error) throw new Error(`submitJob: ${result.error.message}`);
  const outcome = result.data.submitJob;
  if (!outcome.job) throw new Error(`submitJob: ${outcome.__typename}: ${outcome.message}`);
  return outcome.job.id;
}

// graphql-ws hands its sink what went wrong: a CloseEvent, the socket's error Event (a refused
// handshake), or an Error.
function describe(err) {
  if (err instanceof CloseEvent) return `closed ${err.code} ${err.reason}`.trim();
  if (err instanceof Event) return `socket ${err.type}`;
  return String(err);
}

function follow(jobId) {
  $('job-id').textContent = jobId;
  const ws = createClient({
    url: api.replace(/^http/, 'ws'),
    connectionParams: { Authorization: `Bearer ${key}` },
    retryAttempts: 0,
    on: { closed: (event) => { document.body.dataset.closed = String(event.code); } },
  });
  return new Promise((resolve, reject) => {
    ws.subscribe(
      { query: FOLLOW, variables: { id: jobId } },
      {
        next({ data, errors }) {
          if (errors) return reject(new Error(JSON.stringify(errors)));
          const update = data.jobUpdates;
          const item = document.createElement('li');
          item.textContent = update.status;
          $('statuses').append(item);
          $('status').textContent = update.status;
          $('status').dataset.status = update.status;
          if (FINAL.has(update.status)) $('result').textContent = JSON.stringify(update.result);
        },
        error: (err) => reject(new Error(`jobUpdates: ${describe(err)}`)),
        complete: resolve,
      },
    );
  }).finally(() => ws.dispose());
}

(async () => {
  try {
    await follow(params.get('follow') || (await submit()));
    document.body.dataset.state = 'done';
  } catch (err) {
    fail(err.message);
  }
})();
