"""The worker floor: RQ workers running our tasks, beside the API (a separate process).

`supervisor.run_worker` is the entry point (`gql-jobs worker`): it restarts a worker that quits
unexpectedly and reaps what it leaves behind. `worker.GqlJobsWorker` is RQ's worker with our
heartbeat timing; `job.EventedJob` publishes job events and outcome metrics on RQ's own
pipeline; `progress` is what `gql_jobs.report_progress` does inside a job. Every private RQ name
they rely on is reached through `gql_jobs.store.rq_adapter`.

May import: the root modules, `gql_jobs.store`, `rq` and `redis`. Never `service`, `web` or
`graphql`; nothing but the CLI (and `progress`, the public API) imports this floor.
"""
