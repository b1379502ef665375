// GraphiQL for gql-jobs, from same-origin files only (see gql_jobs/ide.py).
// Queries and mutations go over fetch with the headers editor's headers; subscriptions over
// graphql-transport-ws (graphql-ws client) with those headers as the connection_init payload,
// which is where the server looks for the API key on a WebSocket.
"use strict";

(function () {
  const { React, ReactDOM, GraphiQL, GraphiQLPluginExplorer, graphqlWs } = window;
  const { parse, getOperationAST } = GraphiQL.GraphQL;
  const root = document.getElementById("graphiql");
  const endpoint = new URL(root.dataset.endpoint, window.location.href);
  const socketUrl = new URL(endpoint);
  socketUrl.protocol = endpoint.protocol === "https:" ? "wss:" : "ws:";

  const DEFAULT_QUERY = `# Submit a job, then follow it live.
#
# 1. API key: open Headers (below) and put
#    {"Authorization": "Bearer <your key>"}
#    (a server without keys needs none).
# 2. Run "Submit": click in it, press Ctrl-Enter.
# 3. Run "Follow": it streams the job's progress
#    until it ends. It follows the id given in
#    Variables, or else the job Submit created.
#
# Explorer (left bar) builds queries by clicking;
# Docs lists every type and field.

mutation Submit {
  submitJob(input: {task: "sleep", payload: {seconds: 3, steps: 6}, tags: ["graphiql"]}) {
    __typename
    ... on SubmitJobSuccess { job { id status submittedAt } }
    ... on Error { message }
  }
}

subscription Follow($id: ID!) {
  jobUpdates(id: $id) {
    id
    status
    progress { current total fraction message }
    result
    error { message }
  }
}

query Recent {
  jobs {
    totalCount
    edges { node { id task status progress { fraction } submittedAt } }
  }
}
`;

  let lastJobId = null;

  function operationOf(params) {
    try {
      return getOperationAST(parse(params.query), params.operationName || undefined);
    } catch (error) {
      return null; // the server will say what is wrong with the document
    }
  }

  // `$id` left out of Variables means "the job Submit just created".
  function withJobId(params, operation) {
    const wantsId = (operation?.variableDefinitions || []).some((d) => d.variable.name.value === "id");
    const variables = params.variables || {};
    if (!wantsId || variables.id || !lastJobId) return params;
    return { ...params, variables: { ...variables, id: lastJobId } };
  }

  function remember(body) {
    const id = body?.data?.submitJob?.job?.id;
    if (id) lastJobId = id;
  }

  async function overHttp(params, headers) {
    const response = await fetch(endpoint, {
      method: "POST",
      credentials: "same-origin",
      headers: {
        "Content-Type": "application/json",
        Accept: "application/graphql-response+json, application/json",
        ...headers,
      },
      body: JSON.stringify(params),
    });
    const text = await response.text();
    let body;
    try {
      body = JSON.parse(text);
    } catch (error) {
      return { errors: [{ message: `HTTP ${response.status}: ${text.slice(0, 500)}` }] };
    }
    remember(body);
    return body;
  }

  // One WebSocket client per distinct set of headers (they are its connection_init payload).
  let socket = null;
  function socketFor(headers) {
    const key = JSON.stringify(headers);
    if (socket?.key !== key) {
      socket?.client.dispose();
      const client = graphqlWs.createClient({
        url: socketUrl.href,
        connectionParams: headers,
        lazy: true,
        retryAttempts: 0,
      });
      socket = { key, client };
    }
    return socket.client;
  }

  function describe(error) {
    if (Array.isArray(error)) return { errors: error };
    if (error && typeof error.code === "number") {
      const reason = error.reason || "connection closed";
      return { errors: [{ message: `WebSocket closed (${error.code}): ${reason}` }] };
    }
    return { errors: [{ message: String(error?.message || error) }] };
  }

  function overWebSocket(params, headers) {
    return {
      subscribe(sink) {
        const dispose = socketFor(headers).subscribe(params, {
          next: (result) => sink.next(result),
          error: (error) => {
            sink.next(describe(error));
            sink.complete();
          },
          complete: () => sink.complete(),
        });
        return { unsubscribe: dispose };
      },
    };
  }

  function fetcher(params, options) {
    const headers = options?.headers || {};
    const operation = operationOf(params);
    const request = withJobId(params, operation);
    return operation?.operation === "subscription"
      ? overWebSocket(request, headers)
      : overHttp(request, headers);
  }

  // The console keeps its key in sessionStorage; reuse it when GraphiQL opens in that tab.
  const consoleKey = window.sessionStorage.getItem("gql-jobs:api-key");
  const defaultHeaders = consoleKey
    ? JSON.stringify({ Authorization: `Bearer ${consoleKey}` }, null, 2)
    : "";

  const explorer = GraphiQLPluginExplorer.explorerPlugin();
  ReactDOM.createRoot(root).render(
    React.createElement(GraphiQL, {
      fetcher,
      plugins: [explorer],
      defaultQuery: DEFAULT_QUERY,
      defaultHeaders,
      defaultEditorToolsVisibility: true,
      isHeadersEditorEnabled: true,
      // Tabs and headers (API keys) live as long as the browser tab, never on disk.
      storage: window.sessionStorage,
      shouldPersistHeaders: true,
      inputValueDeprecation: true,
    }),
  );
})();
