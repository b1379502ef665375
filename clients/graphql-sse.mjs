// The graphql-sse client (distinct connections mode: one POST with Accept: text/event-stream per
// operation, as Strawberry serves it): follow a job until it is final.
// Usage: node graphql-sse.mjs <http url of /graphql> <job id>
import { createClient } from 'graphql-sse';
import { deadline, emit, follow } from './lib.mjs';

deadline();
const [url, jobId] = process.argv.slice(2);
const client = createClient({ url, singleConnection: false, retryAttempts: 0 });
const followed = await follow((request, sink) => client.subscribe(request, sink), jobId);
client.dispose();
emit({ event: 'done', ...followed });
