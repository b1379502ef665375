// The graphql-ws client (graphql-transport-ws over a WebSocket): follow a job until it is final.
// Usage: node graphql-ws.mjs <http url of /graphql> <job id>
import { createClient } from 'graphql-ws';
import WebSocket from 'ws';
import { deadline, emit, follow } from './lib.mjs';

deadline();
const [url, jobId] = process.argv.slice(2);
const client = createClient({ url: url.replace(/^http/, 'ws'), webSocketImpl: WebSocket, retryAttempts: 0 });
const followed = await follow((request, sink) => client.subscribe(request, sink), jobId);
await client.dispose();
emit({ event: 'done', ...followed });
