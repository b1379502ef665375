"""Relay's global object identification: the `Node` interface, which `Job` implements.

Our own interface rather than Strawberry's `relay.Node`: that one makes `id` a base64 "Job:<id>"
GlobalID, which would change `Job.id` for every client. Jobs are the only nodes, so a job's id
(the RQ job id, `JOB-<uuid4>` for jobs submitted here) is already unique among them, and
`node(id:)` takes the same id as `job(id:)`. Relay's compiler needs exactly this: an interface
`Node { id: ID! }` and `Query.node(id: ID!): Node` (for `@refetchable`).
"""

from __future__ import annotations

import strawberry


@strawberry.interface(
    description=(
        "An object with a globally unique id, refetchable with `node(id:)` (Relay's object "
        "identification). Jobs are the only nodes: a node's id is its job's id."
    )
)
class Node:
    id: strawberry.ID = strawberry.field(description="Globally unique; `node(id:)` refetches the object.")
