# syntax=docker/dockerfile:1
# Build stage: compile wheels (no compilers or pip caches reach the final image).
FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml README.md LICENSE ./
COPY gql_jobs ./gql_jobs
RUN pip wheel --no-cache-dir --wheel-dir /wheels .

# Optional rq-dashboard (compose profile "dashboard"), reading our JSON-serialized jobs.
FROM python:3.11-slim AS dashboard
RUN pip install --no-cache-dir "rq-dashboard>=0.8" "rq>=2.12,<3" && useradd --create-home --uid 10001 app
USER app
EXPOSE 9181
CMD ["rq-dashboard", "--json", "--bind", "0.0.0.0", "--port", "9181"]

# Final stage (the default target): the package and its dependencies only, as an unprivileged user.
FROM python:3.11-slim AS runtime
RUN useradd --create-home --uid 10001 app
COPY --from=build /wheels /wheels
RUN pip install --no-cache-dir /wheels/* && rm -rf /wheels
USER app
WORKDIR /home/app
EXPOSE 8000
HEALTHCHECK --interval=10s --timeout=3s --retries=3 \
  CMD python -c "import urllib.request,sys; sys.exit(urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=2).status != 200)"
CMD ["gql-jobs", "serve", "--host", "0.0.0.0", "--port", "8000"]
