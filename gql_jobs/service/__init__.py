"""The service floor: what the API does with jobs, whatever the transport.

`jobs.JobService` is the one entry point of REST and GraphQL for job work, async only: it checks
callers (scopes, ownership) and requests (`submission`), and drives the store. `live` fans job
events out to subscribers and follows jobs that publish none (its bookkeeping, without I/O, is in
`watchers` and `polling`); `follow` holds the rules of a live stream (one job to its end, or the
events a caller may see), so every transport streams alike.

May import: the root modules and `gql_jobs.store`. Never `rq` or `redis` (the store speaks them),
nor `web`, `graphql` or `worker`.
"""
