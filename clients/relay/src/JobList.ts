// Relay fragments over gql-jobs' schema, compiled by relay-compiler in
// tests/integration/test_frontend_tooling.py: `@refetchable` on `Job` needs `Job implements Node`
// and `Query.node(id:)`; `@connection` needs `jobs` to be a Relay connection.
import { graphql } from "relay-runtime";

export const jobRow = graphql`
  fragment JobRow_job on Job @refetchable(queryName: "JobRowRefetchQuery") {
    id
    status
    task
  }
`;

export const jobList = graphql`
  fragment JobList_query on Query
  @argumentDefinitions(first: { type: "Int", defaultValue: 20 }, after: { type: "String" })
  @refetchable(queryName: "JobListPaginationQuery") {
    jobs(first: $first, after: $after) @connection(key: "Jobs_jobs") {
      edges {
        node {
          id
          ...JobRow_job
        }
      }
    }
  }
`;

export const jobListPage = graphql`
  query JobListPageQuery {
    ...JobList_query
  }
`;
