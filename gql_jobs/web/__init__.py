"""The web floor: HTTP around the service, for REST and for the GraphQL router alike.

REST routes (`rest`), FastAPI dependencies shared with GraphQL's context (`deps`), health and
metrics (`health`), the request-body guards (`limits`), request ids and request metrics
(`requests`), uvicorn's protocols with header deadlines (`server`), the static asset server
(`static_assets`, files in `static/` and `templates/`), the GraphiQL and console pages (`ide`,
`console`).

May import: the root modules and `gql_jobs.service`. Never `gql_jobs.store`, `rq` or `redis`
(every job operation goes through the service), nor `graphql` (which builds on this floor).
"""
