// Apollo Client 4 reading @defer and @stream answers (multipart/mixed) over HttpLink, with the
// incremental handler the server's format needs: GraphQL17Alpha9Handler (`pending`, `incremental`,
// `completed`, `hasNext`, as graphql-core 3.3 answers; Apollo's default handler refuses @defer,
// Defer20220824Handler reads the older format). Each query is watched, every result it emits is
// recorded (its dataState and what it holds), and the cache is read back at the end.
//   defer: `tasks` at once, `queues` in a deferred fragment;
//   stream: `tasks @stream(initialCount: 1)`;
//   plain: the same `tasks` without directives, for comparison.
// Usage: node apollo-defer.mjs <http url of /graphql>
import { ApolloClient, HttpLink, InMemoryCache, gql } from '@apollo/client';
import { GraphQL17Alpha9Handler } from '@apollo/client/incremental';
import { deadline, emit } from './lib.mjs';

deadline();
const [url] = process.argv.slice(2);

const requests = [];
async function recordingFetch(input, init) {
  const response = await fetch(input, init);
  requests.push({
    accept: new Headers(init.headers).get('accept'),
    contentType: response.headers.get('content-type'),
    status: response.status,
  });
  return response;
}

const client = new ApolloClient({
  link: new HttpLink({ uri: url, fetch: recordingFetch }),
  cache: new InMemoryCache(),
  incrementalHandler: new GraphQL17Alpha9Handler(),
});

const PLAIN = gql`query Plain { tasks { name } }`;
const DEFERRED = gql`
  query Deferred {
    tasks { name }
    ... @defer(label: "queues") { queues { name } }
  }
`;
const STREAMED = gql`query Streamed { tasks @stream(initialCount: 1) { name } }`;

// Every result a watched query emits until it is no longer loading. `dataState` is `streaming`
// while a deferred fragment is missing; a streamed list is `complete` (its shape is) while still
// `loading` (networkStatus 9, streaming) with its first items only.
function watch(query) {
  return new Promise((resolve, reject) => {
    const emitted = [];
    const subscription = client.watchQuery({ query, fetchPolicy: 'network-only' }).subscribe({
      next(result) {
        if (result.error) {
          subscription.unsubscribe();
          reject(result.error);
          return;
        }
        emitted.push({
          dataState: result.dataState,
          loading: result.loading,
          tasks: result.data?.tasks?.length ?? null,
          queues: Array.isArray(result.data?.queues),
        });
        if (!result.loading) {
          subscription.unsubscribe();
          resolve(emitted);
        }
      },
      error: reject,
    });
  });
}

const plain = await client.query({ query: PLAIN, fetchPolicy: 'network-only' });
const total = plain.data.tasks.length;
emit({ check: 'plain', total });
const deferred = await watch(DEFERRED);
emit({ check: 'defer', emitted: deferred });
const streamed = await watch(STREAMED);
emit({ check: 'stream', emitted: streamed });
const cached = client.readQuery({ query: DEFERRED });
emit({
  event: 'done',
  total,
  deferred,
  streamed,
  cachedQueues: Array.isArray(cached?.queues),
  requests,
});
process.exit(0);
