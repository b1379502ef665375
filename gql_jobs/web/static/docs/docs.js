// Starts the vendored Swagger UI on this server's OpenAPI document (see gql_jobs/web/docs.py).
const root = document.getElementById("swagger-ui");
window.ui = window.SwaggerUIBundle({
  url: root.dataset.openapi,
  domNode: root,
  deepLinking: true,
  presets: [window.SwaggerUIBundle.presets.apis],
  layout: "BaseLayout",
  validatorUrl: null, // the default sends the document to validator.swagger.io
});
