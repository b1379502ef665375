// Apollo Client 4 with InMemoryCache set up as the README says (possibleTypes from the schema,
// `jobs` paged with relayStylePagination(["filter"])), checking what that set-up is for:
//   union: a mutation's union result, `... on Error { code message }` on an error member (needs
//     possibleTypes), next to the same mutation through a cache without them;
//   pages: `jobs(first: 2)` then fetchMore with `after: endCursor` until the end, merged in order;
//   followed: a job read with `job(id:)`, then followed with `jobUpdates` until final: the
//     subscription's Job results update the one normalised Job (read back from the cache).
// One JSON line per check, then `done` with all of them.
// Usage: node apollo.mjs <http url of /graphql> <possibleTypes JSON> <ws | multipart | batch>
//   ws: subscriptions over graphql-ws (GraphQLWsLink), the rest over HttpLink;
//   multipart: everything over HttpLink (multipart HTTP subscriptions);
//   batch: BatchHttpLink for queries and mutations (the 5 submissions go as one request).
import { ApolloClient, ApolloLink, HttpLink, InMemoryCache, gql } from '@apollo/client';
import { BatchHttpLink } from '@apollo/client/link/batch-http';
import { GraphQLWsLink } from '@apollo/client/link/subscriptions';
import { getMainDefinition, relayStylePagination } from '@apollo/client/utilities';
import { createClient as createWsClient } from 'graphql-ws';
import WebSocket from 'ws';
import { FINAL, deadline, emit } from './lib.mjs';

deadline();
const [url, possibleTypesJson, mode = 'ws'] = process.argv.slice(2);
const possibleTypes = JSON.parse(possibleTypesJson);
const PAGE_JOBS = 5;

// Every HTTP request the links made: how many operations it carried (a batch is an array), and
// whether the answer was multipart (a subscription over HTTP).
const requests = [];
async function recordingFetch(input, init) {
  const body = init.body ? JSON.parse(init.body) : null;
  const response = await fetch(input, init);
  const type = response.headers.get('content-type') ?? '';
  requests.push({ operations: Array.isArray(body) ? body.length : 1, multipart: type.startsWith('multipart/') });
  return response;
}

const isSubscription = ({ query }) => {
  const definition = getMainDefinition(query);
  return definition.kind === 'OperationDefinition' && definition.operation === 'subscription';
};

const ws = createWsClient({ url: url.replace(/^http/, 'ws'), webSocketImpl: WebSocket, retryAttempts: 0 });
const http = new HttpLink({ uri: url, fetch: recordingFetch });
const requestLink =
  mode === 'batch' ? new BatchHttpLink({ uri: url, fetch: recordingFetch, batchMax: PAGE_JOBS }) : http;
const subscriptionLink = mode === 'multipart' ? http : new GraphQLWsLink(ws);

function makeCache(types) {
  return new InMemoryCache({
    possibleTypes: types,
    typePolicies: { Job: { keyFields: ['id'] }, Query: { fields: { jobs: relayStylePagination(['filter']) } } },
  });
}
const client = new ApolloClient({
  link: ApolloLink.split(isSubscription, subscriptionLink, requestLink),
  cache: makeCache(possibleTypes),
});

const SUBMIT = gql`
  mutation Submit($input: SubmitJobInput!) {
    submitJob(input: $input) {
      ... on SubmitJobSuccess { job { id status } }
      ... on Error { code message }
    }
  }
`;
const JOB = gql`query Job($id: ID!) { job(id: $id) { id status } }`;
const JOBS = gql`
  query Jobs($filter: JobFilter, $first: Int, $after: String) {
    jobs(filter: $filter, first: $first, after: $after) {
      edges { cursor node { id status } }
      pageInfo { hasNextPage endCursor }
    }
  }
`;
const JOB_UPDATES = gql`subscription JobUpdates($id: ID!) { jobUpdates(id: $id) { id status result } }`;
const JOB_FRAGMENT = gql`fragment CachedJob on Job { id status }`;

const submit = (target, input) => target.mutate({ mutation: SUBMIT, variables: { input } });

// union: the success member, and an error member read through the `Error` interface.
async function unionCheck() {
  const success = await submit(client, { task: 'echo', payload: { hello: 'apollo' } });
  const unknown = await submit(client, { task: 'no-such-task', payload: {} });
  // The same mutation through a cache without possibleTypes, for contrast.
  const bare = new ApolloClient({ link: http, cache: makeCache(undefined) });
  const bareUnknown = await submit(bare, { task: 'no-such-task', payload: {} });
  return {
    success: success.data?.submitJob ?? null,
    unknown: unknown.data?.submitJob ?? null,
    withoutPossibleTypes: bareUnknown.data?.submitJob ?? null,
    errors: [success, unknown].map((r) => r.error?.message ?? null),
  };
}

// pages: PAGE_JOBS jobs under a tag of their own, listed two at a time.
async function pagesCheck() {
  const tag = `apollo-${process.pid}-${Date.now()}`;
  const results = await Promise.all(
    Array.from({ length: PAGE_JOBS }, (_, i) => submit(client, { task: 'echo', payload: { i }, tags: [tag] })),
  );
  const submitted = results.map((r) => r.data.submitJob.job.id);
  const variables = { filter: { tag }, first: 2 };
  const observable = client.watchQuery({ query: JOBS, variables });
  const first = await new Promise((resolve, reject) => {
    const subscription = observable.subscribe({
      next(result) {
        if (result.data && !result.loading) {
          subscription.unsubscribe();
          resolve(result);
        }
      },
      error: reject,
    });
  });
  let pageInfo = first.data.jobs.pageInfo;
  const fetched = [first.data.jobs.edges.length];
  while (pageInfo.hasNextPage && fetched.length <= PAGE_JOBS) {
    const more = await observable.fetchMore({ variables: { after: pageInfo.endCursor } });
    fetched.push(more.data.jobs.edges.length);
    pageInfo = more.data.jobs.pageInfo;
  }
  const merged = client.readQuery({ query: JOBS, variables });
  return {
    tag,
    submitted,
    fetched,
    merged: merged.jobs.edges.map((edge) => edge.node.id),
    hasNextPage: merged.jobs.pageInfo.hasNextPage,
  };
}

// followed: one normalised Job, written by a query and then by the subscription's results.
async function followCheck(jobId) {
  const before = await client.query({ query: JOB, variables: { id: jobId } });
  const statuses = [];
  let result = null;
  await new Promise((resolve, reject) => {
    client.subscribe({ query: JOB_UPDATES, variables: { id: jobId } }).subscribe({
      next(value) {
        if (value.error || !value.data) {
          reject(value.error ?? new Error('an update without data'));
          return;
        }
        const update = value.data.jobUpdates;
        statuses.push(update.status);
        result = update.result;
        if (statuses.length === 1) emit({ event: 'waiting', jobId });
      },
      error: reject,
      complete: resolve,
    });
  });
  const fragment = client.cache.readFragment({ id: client.cache.identify({ __typename: 'Job', id: jobId }), fragment: JOB_FRAGMENT });
  const query = client.readQuery({ query: JOB, variables: { id: jobId } });
  return {
    before: before.data.job.status,
    statuses,
    final: FINAL.has(statuses[statuses.length - 1]),
    result,
    cachedFragment: fragment?.status ?? null,
    cachedQuery: query?.job?.status ?? null,
  };
}

const union = await unionCheck();
emit({ event: 'union', ...union });
const pages = await pagesCheck();
emit({ event: 'pages', ...pages });
const followed = await followCheck(union.success.job.id);
emit({ event: 'followed', ...followed });
await ws.dispose();
emit({ event: 'done', mode, union, pages, followed, requests });
