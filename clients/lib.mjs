// Shared by the client scripts: one JSON object per stdout line, and a hard deadline so that a
// script can never hang the test that runs it.
export function emit(value) {
  process.stdout.write(JSON.stringify(value) + '\n');
}

export function deadline(seconds = 60) {
  const timer = setTimeout(() => {
    emit({ event: 'timeout', seconds });
    process.exit(2);
  }, seconds * 1000);
  timer.unref();
}

export const JOB_UPDATES = `subscription ($id: ID!) { jobUpdates(id: $id) { id status result } }`;
export const FINAL = new Set(['FINISHED', 'FAILED', 'STOPPED', 'CANCELED']);

// Follows a job until it is final: announces `waiting` once its first update arrived (the test
// then runs a burst worker), and resolves with every status seen.
export function follow(subscribe, jobId) {
  return new Promise((resolve, reject) => {
    const statuses = [];
    let result = null;
    subscribe(
      { query: JOB_UPDATES, variables: { id: jobId } },
      {
        next(value) {
          if (value.errors) {
            reject(new Error(JSON.stringify(value.errors)));
            return;
          }
          const update = value.data.jobUpdates;
          statuses.push(update.status);
          result = update.result;
          if (statuses.length === 1) emit({ event: 'waiting', jobId });
        },
        error(err) {
          reject(err instanceof Error ? err : new Error(JSON.stringify(err)));
        },
        complete() {
          resolve({ statuses, result });
        },
      },
    );
  });
}
