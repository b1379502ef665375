"""The GraphQL transport: Strawberry types, resolvers and the router mounted at /graphql."""
