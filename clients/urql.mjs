// urql (@urql/core) with its default exchanges (document cache, fetch), and subscriptions through
// subscriptionExchange over graphql-ws: a query, a mutation whose result is a union (a success and
// an error member), then a subscription to the submitted job until it is final.
// Usage: node urql.mjs <http url of /graphql>
import { Client, cacheExchange, fetchExchange, subscriptionExchange } from '@urql/core';
import { createClient as createWsClient } from 'graphql-ws';
import WebSocket from 'ws';
import { FINAL, deadline, emit, follow } from './lib.mjs';

deadline();
const [url] = process.argv.slice(2);
const ws = createWsClient({ url: url.replace(/^http/, 'ws'), webSocketImpl: WebSocket, retryAttempts: 0 });
const client = new Client({
  url,
  exchanges: [
    cacheExchange,
    fetchExchange,
    subscriptionExchange({
      forwardSubscription(request) {
        const input = { ...request, query: request.query || '' };
        return { subscribe: (sink) => ({ unsubscribe: ws.subscribe(input, sink) }) };
      },
    }),
  ],
});

const SUBMIT = `mutation ($input: SubmitJobInput!) {
  submitJob(input: $input) {
    ... on SubmitJobSuccess { job { id status } }
    ... on UnknownTaskError { task }
    ... on Error { code message }
  }
}`;

function plain(result) {
  return { data: result.data ?? null, error: result.error ? result.error.message : null };
}

const query = await client.query('{ tasks { name } }', {}).toPromise();
const submitted = await client.mutation(SUBMIT, { input: { task: 'echo', payload: { hello: 'urql' } } }).toPromise();
const unknown = await client.mutation(SUBMIT, { input: { task: 'no-such-task', payload: {} } }).toPromise();
const jobId = submitted.data.submitJob.job.id;
const followed = await follow(
  (request, sink) => {
    const subscription = client.subscription(request.query, request.variables).subscribe((result) => {
      if (result.error) sink.error(result.error);
      else sink.next(result);
      // urql's sources do not tell a subscriber that the server completed: a final status does.
      if (result.data && FINAL.has(result.data.jobUpdates.status)) {
        subscription.unsubscribe();
        sink.complete();
      }
    });
  },
  jobId,
);
await ws.dispose();
emit({
  event: 'done',
  query: plain(query),
  submitted: plain(submitted),
  unknown: plain(unknown),
  ...followed,
});
