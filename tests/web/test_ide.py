"""The self-hosted GraphiQL page, the console page and their assets, over HTTP (no browser)."""

from __future__ import annotations

import gzip
import hashlib
import json
import re
import tomllib
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from gql_jobs.app import create_app
from gql_jobs.service.jobs import JobService
from gql_jobs.settings import Settings
from gql_jobs.web.static_assets import STATIC_DIR, TEMPLATES_DIR
from tests.conftest import ROOT

VENDOR = STATIC_DIR / "vendor"
HTML = {"Accept": "text/html"}


class References(HTMLParser):
    """Every URL a page loads: scripts, stylesheets, icons, and the like."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        for name, value in attrs:
            if name in ("src", "href") and value:
                self.urls.append(value)


def references(page: str) -> list[str]:
    parser = References()
    parser.feed(page)
    return parser.urls


def make_client(fake_service: JobService, **settings: object) -> TestClient:
    values = {"redis_url": "redis://unused", "tasks": ["tests.fixtures"], **settings}
    return TestClient(create_app(Settings.model_validate(values), fake_service))


@pytest.fixture
def web(fake_service: JobService) -> Iterator[TestClient]:
    with make_client(fake_service) as client:
        yield client


def test_graphiql_page_loads_only_same_origin_assets(web: TestClient) -> None:
    response = web.get("/graphql", headers=HTML)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    urls = references(response.text)
    assert {u.split("?")[0] for u in urls if u.startswith("/static/")} >= {
        "/static/vendor/react.production.min.js",
        "/static/vendor/react-dom.production.min.js",
        "/static/vendor/graphiql.min.js",
        "/static/vendor/graphiql.min.css",
        "/static/vendor/plugin-explorer.umd.js",
        "/static/vendor/graphql-ws.min.js",
        "/static/ide/ide.js",
    }
    for url in urls:
        assert url.startswith("/") or url == "data:,", url
        if url.startswith("/"):
            asset = web.get(url)
            assert asset.status_code == 200, url
            assert asset.headers["cache-control"] == "public, max-age=31536000, immutable", url
    assert "unpkg" not in response.text
    assert "<script>" not in response.text, "no inline script: the CSP forbids it"


def test_pages_carry_a_strict_content_security_policy(web: TestClient) -> None:
    for page in (web.get("/graphql", headers=HTML), web.get("/console")):
        policy = dict(
            directive.strip().split(" ", 1)
            for directive in page.headers["content-security-policy"].split(";")
        )
        assert policy["default-src"] == "'none'"
        assert policy["script-src"] == "'self'"
        assert policy["style-src"] == "'self'"
        assert policy["connect-src"] == "'self'"
        assert policy["frame-ancestors"] == "'none'"
        assert "unsafe" not in page.headers["content-security-policy"]
        assert page.headers["x-content-type-options"] == "nosniff"


def test_graphql_still_answers_queries(web: TestClient) -> None:
    response = web.post("/graphql", json={"query": "{ tasks { name } }"})
    assert response.status_code == 200
    assert "sleep" in {t["name"] for t in response.json()["data"]["tasks"]}


def test_assets_are_cached_by_content_hash_and_compressed(web: TestClient) -> None:
    body = (VENDOR / "graphiql.min.js").read_bytes()
    version = hashlib.sha256(body).hexdigest()[:16]
    hashed = web.get(f"/static/vendor/graphiql.min.js?v={version}", headers={"Accept-Encoding": "gzip"})
    assert hashed.status_code == 200
    assert hashed.headers["content-type"] == "text/javascript; charset=utf-8"
    assert hashed.headers["content-encoding"] == "gzip"
    assert hashed.headers["cache-control"] == "public, max-age=31536000, immutable"
    assert hashed.content == body  # httpx decodes the gzip
    assert int(hashed.headers["content-length"]) < len(body) / 2

    stale = web.get("/static/vendor/graphiql.min.js?v=0000", headers={"Accept-Encoding": "identity"})
    assert stale.headers["cache-control"] == "no-cache"
    assert "content-encoding" not in stale.headers
    assert stale.content == body
    again = web.get("/static/vendor/graphiql.min.js", headers={"If-None-Match": stale.headers["etag"]})
    assert again.status_code == 304
    assert web.head("/static/ide/ide.js").status_code == 200


@pytest.mark.parametrize(
    "path",
    [
        "/static/nope.js",
        "/static/../app.py",
        "/static/vendor/../../app.py",
        "/static/%2e%2e/settings.py",
        "/static/vendor/SHA256SUMS",
        "/static/vendor",
        "/static/",
    ],
)
def test_only_known_asset_files_are_served(web: TestClient, path: str) -> None:
    assert web.get(path).status_code == 404


def test_root_redirects_to_the_console(web: TestClient) -> None:
    response = web.get("/", follow_redirects=False)
    assert response.status_code == 307
    assert response.headers["location"] == "/console"
    page = web.get("/console")
    assert page.status_code == 200
    assert 'data-endpoint="/graphql"' in page.text
    urls = references(page.text)
    assert all(u.startswith("/") or u == "data:," for u in urls), urls
    module = next(u for u in urls if "console.js" in u)
    assert web.get(module).status_code == 200
    assert web.get("/static/console/live-socket.js").status_code == 200


def test_graphiql_off_serves_neither_the_ide_nor_its_assets(fake_service: JobService) -> None:
    with make_client(fake_service, graphiql=False) as client:
        assert client.get("/graphql", headers=HTML).status_code == 404
        assert client.get("/static/vendor/graphiql.min.js").status_code == 404
        assert client.get("/static/ide/ide.js").status_code == 404
        # The console is a plain API client, independent of the IDE; it just links to no IDE.
        page = client.get("/console")
        assert page.status_code == 200
        assert 'data-graphiql=""' in page.text
        assert client.get("/static/console/console.js").status_code == 200


DOCS = ("/docs", "/redoc", "/openapi.json")


def test_rest_docs_go_off_with_graphiql(fake_service: JobService) -> None:
    """FastAPI's doc pages load Swagger UI and ReDoc from a public CDN: a production API (GraphiQL
    off, as under `serve`) serves none of them."""
    with make_client(fake_service, graphiql=False) as client:
        assert [client.get(path).status_code for path in DOCS] == [404, 404, 404]
    with make_client(fake_service) as client:
        assert [client.get(path).status_code for path in DOCS] == [200, 200, 200]


@pytest.mark.parametrize(("graphiql", "api_docs"), [(False, True), (True, False)])
def test_rest_docs_have_a_setting_of_their_own(
    fake_service: JobService, graphiql: bool, api_docs: bool
) -> None:
    with make_client(fake_service, graphiql=graphiql, api_docs=api_docs) as client:
        assert client.get("/docs").status_code == (200 if api_docs else 404)
        assert client.get("/graphql", headers=HTML).status_code == (200 if graphiql else 404)


def test_serve_turns_the_rest_docs_off_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    from gql_jobs.app import docs_enabled
    from gql_jobs.cli import production_defaults
    from gql_jobs.settings import load_settings

    for name in ("GQL_JOBS_GRAPHIQL", "GQL_JOBS_INTROSPECTION", "GQL_JOBS_API_DOCS"):
        monkeypatch.setenv(name, "")  # so that monkeypatch restores what production_defaults sets
        monkeypatch.delenv(name)
    production_defaults(load_settings(redis_url="redis://unused"))
    assert not docs_enabled(load_settings(redis_url="redis://unused"))


def test_serve_keeps_what_dot_env_turns_on(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Its off-by-default went into the environment, which wins over `.env`: a `.env` saying
    GQL_JOBS_GRAPHIQL=true was ignored by `serve` outside compose."""
    from gql_jobs.cli import production_defaults
    from gql_jobs.settings import load_settings

    for name in ("GQL_JOBS_GRAPHIQL", "GQL_JOBS_INTROSPECTION", "GQL_JOBS_API_DOCS"):
        monkeypatch.setenv(name, "")  # so that monkeypatch restores what production_defaults sets
        monkeypatch.delenv(name)
    (tmp_path / ".env").write_text("GQL_JOBS_GRAPHIQL=true\n")
    monkeypatch.chdir(tmp_path)
    production_defaults(load_settings(redis_url="redis://unused"))
    settings = load_settings(redis_url="redis://unused")
    assert settings.graphiql and not settings.introspection


def test_a_console_setting_can_turn_the_console_off(fake_service: JobService) -> None:
    settings = Settings.model_validate({"redis_url": "redis://unused"})
    object.__setattr__(settings, "console", False)  # what a GQL_JOBS_CONSOLE setting would do
    with TestClient(create_app(settings, fake_service)) as client:
        assert client.get("/console").status_code == 404
        assert client.get("/", follow_redirects=False).status_code == 404
        assert client.get("/static/console/console.js").status_code == 404


def test_a_proxy_root_path_prefixes_every_url(fake_service: JobService) -> None:
    settings = Settings.model_validate({"redis_url": "redis://unused"})
    app = create_app(settings, fake_service)
    with TestClient(app, root_path="/jobs") as client:
        page = client.get("/graphql", headers=HTML)
        assert all(u.startswith("/jobs/static/") for u in references(page.text) if u != "data:,")
        assert 'data-endpoint="/jobs/graphql"' in page.text
        console = client.get("/console")
        assert 'data-endpoint="/jobs/graphql"' in console.text


# -- the vendored files ------------------------------------------------------------------------------


def test_vendored_files_match_their_checksums_and_pinned_versions() -> None:
    sums = (VENDOR / "SHA256SUMS").read_text().splitlines()
    assert len(sums) == 7
    for line in sums:
        digest, name = line.split(maxsplit=1)
        assert hashlib.sha256((VENDOR / name).read_bytes()).hexdigest() == digest, name
    versions = json.loads((VENDOR / "versions.json").read_text())
    script = (ROOT / "scripts" / "vendor-graphiql").read_text()
    pins = dict(re.findall(r"^([A-Z_]+)=([0-9.]+)", script, re.MULTILINE))
    assert versions["graphiql"] == pins["GRAPHIQL"]
    assert versions["@graphiql/plugin-explorer"] == pins["PLUGIN_EXPLORER"]
    assert versions["react"] == versions["react-dom"] == pins["REACT"]
    assert versions["graphql-ws"] == pins["GRAPHQL_WS"]
    assert "MIT License" in (VENDOR / "LICENSES.txt").read_text()


def test_vendored_assets_stay_small() -> None:
    total = sum(p.stat().st_size for p in VENDOR.iterdir())
    assert total < 3_000_000, f"{total} bytes vendored"
    compressed = sum(len(gzip.compress(p.read_bytes())) for p in VENDOR.glob("*.js"))
    assert compressed < 700_000


def test_vendored_bundles_need_no_eval_and_no_source_maps() -> None:
    for path in [*VENDOR.glob("*.js"), *VENDOR.glob("*.css")]:
        text = path.read_text(encoding="utf-8")
        assert "sourceMappingURL" not in text, path.name
        assert not re.search(r"(?<![\w.])eval\(", text), path.name


def test_package_data_ships_the_static_files_and_templates() -> None:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    patterns = config["tool"]["setuptools"]["package-data"]["gql_jobs.web"]
    package = STATIC_DIR.parent
    shipped = {p for pattern in patterns for p in package.glob(pattern) if p.is_file()}
    needed = {p for p in [*STATIC_DIR.rglob("*"), *TEMPLATES_DIR.glob("*")] if p.is_file()}
    assert needed <= shipped, sorted(str(p.relative_to(package)) for p in needed - shipped)


def test_static_sources_reference_no_third_party_host() -> None:
    ours = [*(STATIC_DIR / "ide").iterdir(), *(STATIC_DIR / "console").iterdir(), *TEMPLATES_DIR.iterdir()]
    for path in ours:
        text = path.read_text(encoding="utf-8")
        hosts = set(re.findall(r"https?://([^/\s\"'`]+)", text)) - {"github.com"}
        assert not hosts, f"{path.name}: {hosts}"
