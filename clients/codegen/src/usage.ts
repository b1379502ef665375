// Uses the generated types the way a frontend would; `tsc --strict --noEmit` must accept it, so the
// union narrows on `__typename`, scalars are `string`/`unknown` (never `any`), inputs type-check and
// an error member's `code` is the `ErrorCode` enum (a union of its values).
import type {
  FollowJobSubscription,
  JobsPageQuery,
  JobsPageQueryVariables,
  SubmitJobMutation,
  SubmitJobMutationVariables,
} from "./__generated__/graphql";

export const variables: SubmitJobMutationVariables = {
  input: { task: "echo", payload: { n: 1 }, tags: ["demo"] },
};

export function submittedId(data: SubmitJobMutation): string | null {
  const result = data.submitJob;
  if (result.__typename === "SubmitJobSuccess") {
    const submittedAt: string | null | undefined = result.job.submittedAt;
    return submittedAt == null ? null : result.job.id;
  }
  if (result.__typename === "InvalidPayloadError") {
    return result.fieldErrors.map((e) => `${e.path}: ${e.message}`).join("; ");
  }
  return result.message;
}

export function retryable(data: SubmitJobMutation): boolean {
  const result = data.submitJob;
  if (result.__typename === "SubmitJobSuccess") {
    return false;
  }
  switch (result.code) {
    case "RATE_LIMITED":
    case "SERVICE_UNAVAILABLE":
    case "SUBMISSION_OUTCOME_UNKNOWN":
      return true;
    default:
      return false;
  }
}

export const page: JobsPageQueryVariables = { first: 20, after: null, tag: "demo" };

export function ids(data: JobsPageQuery): string[] {
  const next: string | null = data.jobs.pageInfo.hasNextPage ? data.jobs.pageInfo.endCursor : null;
  return [...data.jobs.edges.map((edge) => edge.node.id), ...(next === null ? [] : [next])];
}

export function resultOf(data: FollowJobSubscription): unknown {
  return data.jobUpdates.result;
}
