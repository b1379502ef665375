"""The service floor: what the API does with jobs, whatever the transport.

`jobs.JobService` is the one entry point of REST and GraphQL for job work, async only: it checks
callers (scopes, ownership) and requests (`submission`), and drives the store. What is not work on
a job the caller names it delegates, once the caller is checked: bulk actions (`bulk`, under the
rules of `actions`), worker and queue control (`control`), what a caller may see of tasks, queues
and workers (`inventory`), and the bounds of a job history request (`history`). `live` fans job
events out to subscribers and follows jobs that publish none (its bookkeeping, without I/O, is in
`watchers` and `polling`); `follow` holds the rules of a live stream (one job to its end, or the
events a caller may see), so every transport streams alike.

May import: the root modules and `gql_jobs.store`. Never `rq` or `redis` (the store speaks them),
nor `web`, `graphql` or `worker`.
"""
