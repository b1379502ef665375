// Talking to the GraphQL API: fetch for queries and mutations, the key from sessionStorage.
const KEY_STORAGE = "gql-jobs:api-key";

export const endpoint = new URL(document.body.dataset.endpoint, window.location.href);

export function apiKey() {
  return window.sessionStorage.getItem(KEY_STORAGE) || "";
}

export function setApiKey(key) {
  if (key) window.sessionStorage.setItem(KEY_STORAGE, key);
  else window.sessionStorage.removeItem(KEY_STORAGE);
}

/** An error the server answered, with its `extensions.code` (e.g. UNAUTHENTICATED) when it gave one. */
export class ApiError extends Error {
  constructor(message, code, status) {
    super(message);
    this.code = code;
    this.status = status;
  }
}

export async function gql(query, variables = {}) {
  const headers = {
    "Content-Type": "application/json",
    Accept: "application/graphql-response+json, application/json",
  };
  if (apiKey()) headers.Authorization = `Bearer ${apiKey()}`;
  const response = await fetch(endpoint, {
    method: "POST",
    headers,
    body: JSON.stringify({ query, variables }),
  });
  let body;
  try {
    body = await response.json();
  } catch {
    throw new ApiError(`The server answered ${response.status} ${response.statusText}`, null, response.status);
  }
  if (body.errors?.length) {
    const code = body.errors[0].extensions?.code || null;
    throw new ApiError(body.errors.map((e) => e.message).join("; "), code, response.status);
  }
  if (!response.ok) throw new ApiError(`The server answered ${response.status}`, null, response.status);
  return body.data;
}

/** True when the error says a (valid) key is missing. */
export function needsKey(error) {
  return error?.status === 401 || error?.status === 403
    || ["UNAUTHENTICATED", "UNAUTHORIZED", "FORBIDDEN"].includes(error?.code);
}
