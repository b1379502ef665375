"""The console's routes, the /docs page and their vendored assets, over HTTP (no browser; the
browser tests are tests/integration/test_console.py)."""

from __future__ import annotations

import hashlib
import json
import re

import pytest

from gql_jobs.service.jobs import JobService
from gql_jobs.web.static_assets import STATIC_DIR
from tests.conftest import ROOT
from tests.web.test_ide import HTML, make_client, references

VIEWS = ("/console", "/console/queues", "/console/workers", "/console/charts", "/console/jobs/JOB-1234")


@pytest.mark.parametrize("path", VIEWS)
def test_every_console_view_is_a_url_serving_the_page(fake_service: JobService, path: str) -> None:
    """A job's page or the queues page can be bookmarked, linked and reloaded."""
    with make_client(fake_service) as client:
        page = client.get(path, headers=HTML)
    assert page.status_code == 200
    assert 'data-base="/console"' in page.text
    assert page.headers["content-security-policy"].startswith("default-src 'none'")
    assert all(
        u.startswith(("/static/", "/console", "/graphql", "/docs", "data:")) for u in references(page.text)
    )


def test_console_assets_include_the_chart_library_without_graphiql(fake_service: JobService) -> None:
    with make_client(fake_service, graphiql=False) as client:
        page = client.get("/console", headers=HTML)
        urls = [u for u in references(page.text) if u.startswith("/static/")]
        assert any("vendor-console/uPlot.iife.min.js" in u for u in urls)
        assert all(client.get(u).status_code == 200 for u in urls)
        for module in ("api", "jobs", "job", "fleet", "charts", "bulk", "submit", "format", "features"):
            assert client.get(f"/static/console/{module}.js").status_code == 200
        assert 'data-docs=""' in page.text  # docs off with GraphiQL: no link to them


def test_docs_load_swagger_ui_from_the_package_under_a_strict_policy(fake_service: JobService) -> None:
    with make_client(fake_service) as client:
        page = client.get("/docs")
        assert page.status_code == 200
        policy = page.headers["content-security-policy"]
        assert "script-src 'self';" in policy and "connect-src 'self'" in policy
        urls = references(page.text)
        assert all(u.startswith("/static/") or u == "data:," for u in urls), urls
        assert {re.sub(r"\?v=.*", "", u) for u in urls if u != "data:,"} == {
            "/static/vendor-docs/swagger-ui.css",
            "/static/vendor-docs/swagger-ui-bundle.js",
            "/static/docs/docs.js",
        }
        assert all(client.get(u).status_code == 200 for u in urls if u != "data:,")
        assert 'data-openapi="/openapi.json"' in page.text
        assert "cdn.jsdelivr.net" not in page.text


def test_docs_assets_vanish_with_the_docs(fake_service: JobService) -> None:
    with make_client(fake_service, graphiql=False) as client:
        assert client.get("/docs").status_code == 404
        assert client.get("/static/vendor-docs/swagger-ui-bundle.js").status_code == 404
        assert client.get("/static/docs/docs.js").status_code == 404


@pytest.mark.parametrize(
    ("folder", "pin", "package"),
    [
        ("vendor-console", "UPLOT", "uplot"),
        ("vendor-docs", "SWAGGER_UI", "swagger-ui-dist"),
    ],
)
def test_vendored_chart_and_docs_files_match_their_checksums_and_pins(
    folder: str, pin: str, package: str
) -> None:
    vendor = STATIC_DIR / folder
    sums = (vendor / "SHA256SUMS").read_text().splitlines()
    assert len(sums) == 2
    for line in sums:
        digest, name = line.split(maxsplit=1)
        assert hashlib.sha256((vendor / name).read_bytes()).hexdigest() == digest, name
        assert "sourceMappingURL" not in (vendor / name).read_text(encoding="utf-8")
    script = (ROOT / "scripts" / "vendor-graphiql").read_text()
    pins = dict(re.findall(r"^([A-Z_]+)=([0-9.]+)", script, re.MULTILINE))
    assert json.loads((vendor / "versions.json").read_text()) == {package: pins[pin]}
    assert "License" in (vendor / "LICENSES.txt").read_text()
