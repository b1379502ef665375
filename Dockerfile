# syntax=docker/dockerfile:1
# Build stage: compile wheels (no compilers or pip caches reach the final image).
FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml README.md LICENSE ./
COPY gql_jobs ./gql_jobs
RUN pip wheel --no-cache-dir --wheel-dir /wheels .

# Optional rq-dashboard (compose profile "dashboard"), reading our JSON-serialized jobs with the API's own
# rq and redis (from the wheels above) and the versions pinned in constraints/dashboard.txt. It sees every
# job of every tenant and bypasses API keys: it starts only with basic auth set (RQ_DASHBOARD_USERNAME
# and RQ_DASHBOARD_PASSWORD); keep it off the public network.
FROM python:3.11-slim AS dashboard
COPY --from=build /wheels /wheels
COPY constraints/dashboard.txt /tmp/dashboard.txt
RUN pip install --no-cache-dir -r /tmp/dashboard.txt /wheels/rq-*.whl /wheels/redis-*.whl \
  && rm -rf /wheels /tmp/dashboard.txt && useradd --create-home --uid 10001 app
USER app
ENV RQ_DASHBOARD_BIND=0.0.0.0 RQ_DASHBOARD_PORT=9181
EXPOSE 9181
CMD ["sh", "-c", "if [ -z \"$RQ_DASHBOARD_USERNAME\" ] || [ -z \"$RQ_DASHBOARD_PASSWORD\" ]; then echo 'rq-dashboard: set RQ_DASHBOARD_USERNAME and RQ_DASHBOARD_PASSWORD (it bypasses API keys and tenants)' >&2; exit 1; fi; exec rq-dashboard --json --show-full-args"]

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
