"""The service floor: what the API does with jobs, whatever the transport.

`jobs.JobService` is the one entry point of REST, GraphQL and the CLI for job work: it checks
callers (scopes, ownership) and requests (`submission`), and drives the store. `live` fans job
events out to subscribers and follows jobs that publish none (its bookkeeping, without I/O, is in
`watchers` and `polling`).

May import: the root modules and `gql_jobs.store`. Never `rq` or `redis` (the store speaks them),
nor `web`, `graphql` or `worker`.
"""
