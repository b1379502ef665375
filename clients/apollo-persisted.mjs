// Apollo Client 4 with its persisted-queries link (automatic persisted queries): one query run
// twice, reporting every HTTP request the link made. The first run sends the hash alone, gets
// PersistedQueryNotFound, and sends the document with its hash; the second sends the hash alone.
// Usage: node apollo-persisted.mjs <http url of /graphql> <post | get | json>
//   get: useGETForHashedQueries; json: `Accept: application/json` (a 200 for request errors).
import { createHash } from 'node:crypto';
import { ApolloClient, ApolloLink, HttpLink, InMemoryCache, gql } from '@apollo/client';
import { PersistedQueryLink } from '@apollo/client/link/persisted-queries';
import { deadline, emit } from './lib.mjs';

deadline();
const [url, mode = 'post'] = process.argv.slice(2);
const requests = [];

async function recordingFetch(input, init) {
  const target = new URL(typeof input === 'string' ? input : input.url);
  const body = init.body ? JSON.parse(init.body) : null;
  const extensions = body ? body.extensions : JSON.parse(target.searchParams.get('extensions') || 'null');
  const response = await fetch(input, init);
  requests.push({
    method: init.method || 'GET',
    query: Boolean(body ? body.query : target.searchParams.get('query')),
    hash: extensions?.persistedQuery?.sha256Hash ?? null,
    status: response.status,
  });
  return response;
}

const sha256 = (text) => createHash('sha256').update(text).digest('hex');
const client = new ApolloClient({
  cache: new InMemoryCache(),
  link: ApolloLink.from([
    new PersistedQueryLink({ sha256, useGETForHashedQueries: mode === 'get' }),
    new HttpLink({
      uri: url,
      fetch: recordingFetch,
      headers: mode === 'json' ? { accept: 'application/json' } : {},
    }),
  ]),
});

const TASKS = gql`query Tasks { tasks { name } }`;
const runs = [];
for (let i = 0; i < 2; i += 1) {
  const result = await client.query({ query: TASKS, fetchPolicy: 'no-cache' });
  runs.push({ names: result.data.tasks.map((task) => task.name), error: result.error?.message ?? null });
}
emit({ event: 'done', runs, requests });
