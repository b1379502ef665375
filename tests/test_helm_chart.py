"""The Helm chart (deploy/helm/gql-jobs), rendered by Helm's own engine and checked offline.

No cluster and no `helm` binary: `helm-python-sdk` carries Helm 4's Go library (its `render` is
`helm template`, its `lint` is `helm lint`), `kubernetes-validate` carries the Kubernetes OpenAPI
schemas, and KEDA's CRDs (tests/schemas, from KEDA v2.20.2's config/crd/bases) validate the
ScaledObject and TriggerAuthentication. Beyond the schemas, the chart is held to the app it
deploys: every variable it sets is a setting that loads, its commands parse, its probes answer,
the workers' stop grace outlasts the job timeout, KEDA counts the list RQ really uses.
"""

from __future__ import annotations

import copy
import json
import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import redis
import yaml
from fastapi.testclient import TestClient
from rq import Queue

from gql_jobs import __version__
from gql_jobs.cli import _parser
from gql_jobs.settings import Settings, variable_names

helm = pytest.importorskip("helm_python", reason="helm-python-sdk ships Helm for linux x86_64 only")

ROOT = Path(__file__).resolve().parent.parent
CHART = ROOT / "deploy" / "helm" / "gql-jobs"
CRDS = Path(__file__).resolve().parent / "schemas"
#: The oldest Kubernetes the chart declares (Chart.yaml kubeVersion), and the newest schemas we have.
KUBE_VERSIONS = ("1.25.0", kubernetes_validate.latest_version())
#: Metadata the KEDA redis scalers read (pkg/scalers/redis_scaler.go, v2.20): a misspelt key is ignored.
KEDA_REDIS_METADATA = {
    "address", "addresses", "host", "hosts", "port", "ports", "username", "sentinelMaster", "listName",
    "listLength", "activationListLength", "databaseIndex", "enableTLS", "unsafeSsl",
}  # fmt: skip
SENTINELS = ["sentinel-0.sentinel:26379", "sentinel-1.sentinel:26380", "sentinel-2.sentinel"]
SENTINEL: dict[str, Any] = {
    "redis": {
        "password": "p@ss word/1",
        "sentinel": {
            "enabled": True,
            "addresses": SENTINELS,
            "master": "jobs",
            "password": "sentinel-secret",
        },
    },
}
Rendered = tuple[str, list[dict[str, Any]]]
#: Values a user may install with: each is rendered, validated and checked below.
SCENARIOS: dict[str, dict[str, Any]] = {
    "defaults": {},
    "sentinel": SENTINEL,
    "plain-redis-with-password-tls-and-keys": {
        "redis": {"host": "redis.example", "port": 6380, "db": 2, "password": "s3cr:t@/x", "tls": True},
        "secrets": {"apiKeys": {"a" * 64: {"principal": "billing", "scopes": ["submit", "read"]}}},
        "settings": {"RQ_DEFAULT_TIMEOUT": "3600", "GQL_JOBS_METRICS_ACCESS": "key"},
        "api": {"forwardedAllowIps": "10.0.0.0/8"},
        "worker": {"queues": ["high", "default", "low"], "pool": 4},
        "networkPolicy": {
            "apiFrom": [{"namespaceSelector": {"matchLabels": {"name": "ingress"}}}],
            "redisTo": [{"podSelector": {"matchLabels": {"app": "redis"}}}],
            "workerExtraEgress": [{"ports": [{"port": 443, "protocol": "TCP"}]}],
        },
    },
    "existing-secret": {
        "secrets": {"existingSecret": "gql-jobs-prod", "existingSecretHasRedisPasswords": True},
        **SENTINEL,
    },
    "no-keda-no-hpa-no-policies": {
        "api": {"autoscaling": {"enabled": False}, "replicas": 3, "podDisruptionBudget": {"enabled": False}},
        "worker": {"keda": {"enabled": False}, "replicas": 2, "podDisruptionBudget": {"enabled": False}},
        "networkPolicy": {"enabled": False},
    },
}


def render(values: dict[str, Any]) -> list[dict[str, Any]]:
    """`helm template jobs deploy/helm/gql-jobs -n jobs`, as parsed documents."""
    manifests = helm.Chart.load(CHART).render(copy.deepcopy(values), name="jobs", namespace="jobs")
    return [
        document
        for path, text in sorted(manifests.items())
        if path.endswith(".yaml")
        for document in yaml.safe_load_all(text)
        if document
    ]


def by_kind(documents: list[dict[str, Any]]) -> dict[tuple[str, str], dict[str, Any]]:
    return {(d["kind"], d["metadata"]["name"]): d for d in documents}


def one(documents: list[dict[str, Any]], kind: str, suffix: str = "") -> dict[str, Any]:
    found = [d for d in documents if d["kind"] == kind and d["metadata"]["name"].endswith(suffix)]
    assert len(found) == 1, (kind, suffix, [d["metadata"]["name"] for d in found])
    return found[0]


def template(documents: list[dict[str, Any]], suffix: str) -> dict[str, Any]:
    """The pod template of the Deployment named `...<suffix>`."""
    pod: dict[str, Any] = one(documents, "Deployment", suffix)["spec"]["template"]
    return pod


def container(deployment: dict[str, Any]) -> dict[str, Any]:
    containers: list[dict[str, Any]] = deployment["spec"]["template"]["spec"]["containers"]
    assert len(containers) == 1
    return containers[0]


def environment(documents: list[dict[str, Any]]) -> dict[str, str]:
    """What the pods get through envFrom: the ConfigMap's data and the chart's Secret, if any."""
    env = dict(one(documents, "ConfigMap", "-settings")["data"])
    secrets = [d for d in documents if d["kind"] == "Secret"]
    for secret in secrets:
        env.update(secret["stringData"])
    return env


@pytest.fixture(scope="module", params=sorted(SCENARIOS))
def scenario(request: pytest.FixtureRequest) -> Rendered:
    return request.param, render(SCENARIOS[request.param])


def _strict(schema: Any) -> Any:
    """As `kubectl apply --validate=strict`: a field the CRD does not declare is an error."""
    if isinstance(schema, dict):
        schema = {key: _strict(value) for key, value in schema.items()}
        declared = "properties" in schema and not schema.get("x-kubernetes-preserve-unknown-fields")
        if declared and "additionalProperties" not in schema:
            schema["additionalProperties"] = False
        return schema
    if isinstance(schema, list):
        return [_strict(item) for item in schema]
    return schema


@pytest.fixture(scope="module")
def crd_schemas() -> dict[tuple[str, str], dict[str, Any]]:
    schemas = {}
    for path in CRDS.glob("keda.sh_*.yaml"):
        crd = yaml.safe_load(path.read_text())
        for version in crd["spec"]["versions"]:
            api_version = f"{crd['spec']['group']}/{version['name']}"
            schema = version["schema"]["openAPIV3Schema"]
            schema["properties"]["metadata"] = {"type": "object"}  # checked by Kubernetes' ObjectMeta
            schemas[(api_version, crd["spec"]["names"]["kind"])] = _strict(schema)
    return schemas


# -- Helm itself ----------------------------------------------------------------------------------


def test_helm_lint_finds_nothing_to_fix() -> None:
    report = helm.lint(CHART, strict=True)
    assert report["errors"] == []
    assert [m for m in report["messages"] if m["severity"] >= 2] == []  # warnings or errors


def test_the_chart_deploys_this_release_of_gql_jobs() -> None:
    chart = yaml.safe_load((CHART / "Chart.yaml").read_text())
    assert chart["appVersion"] == __version__
    api = one(render({}), "Deployment", "-api")
    assert container(api)["image"] == f"gql-jobs:{__version__}"


def test_every_scenario_renders_the_whole_deployment(scenario: Rendered) -> None:
    name, documents = scenario
    kinds = {d["kind"] for d in documents}
    assert {"Deployment", "Service", "ConfigMap", "ServiceAccount"} <= kinds
    assert ("Secret" in kinds) == (name != "existing-secret")
    if name == "no-keda-no-hpa-no-policies":
        assert not kinds & {"ScaledObject", "HorizontalPodAutoscaler", "NetworkPolicy", "PodDisruptionBudget"}
    else:
        assert {"ScaledObject", "HorizontalPodAutoscaler", "NetworkPolicy", "PodDisruptionBudget"} <= kinds


# -- the schemas ----------------------------------------------------------------------------------


@pytest.mark.parametrize("kube_version", KUBE_VERSIONS)
def test_every_kubernetes_object_is_valid_for_its_schema(scenario: Rendered, kube_version: str) -> None:
    for document in scenario[1]:
        if not document["apiVersion"].startswith("keda.sh/"):
            kubernetes_validate.validate(document, kube_version, strict=True)  # raises on any problem


def test_the_kubernetes_schemas_catch_a_misspelt_field() -> None:
    api = one(render({}), "Deployment", "-api")
    container(api)["readinessProb"] = container(api).pop("readinessProbe")
    with pytest.raises(kubernetes_validate.ValidationError, match="readinessProb"):
        kubernetes_validate.validate(api, KUBE_VERSIONS[0], strict=True)


def test_keda_objects_are_valid_for_kedas_crds(
    scenario: Rendered, crd_schemas: dict[tuple[str, str], dict[str, Any]]
) -> None:
    for document in scenario[1]:
        if document["apiVersion"].startswith("keda.sh/"):
            schema = crd_schemas[(document["apiVersion"], document["kind"])]
            jsonschema.validate(document, schema, cls=jsonschema.Draft7Validator)


def test_the_strict_crd_schema_catches_a_misspelt_field(
    crd_schemas: dict[tuple[str, str], dict[str, Any]],
) -> None:
    scaled = one(render({}), "ScaledObject")
    scaled["spec"]["cooldownPeriods"] = scaled["spec"].pop("cooldownPeriod")
    with pytest.raises(jsonschema.ValidationError, match="cooldownPeriods"):
        jsonschema.validate(scaled, crd_schemas[("keda.sh/v1alpha1", "ScaledObject")])


# -- the chart against the app --------------------------------------------------------------------


def test_every_variable_the_chart_sets_is_a_setting_that_loads(
    scenario: Rendered, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    known = {name for field in Settings.model_fields for name in variable_names(field)}
    env = environment(scenario[1])
    assert set(env) <= known, set(env) - known
    monkeypatch.chdir(tmp_path)  # no .env of the checkout
    for name in [n for n in os.environ if n.startswith(("GQL_JOBS_", "REDIS_URL", "RQ_"))]:
        monkeypatch.delenv(name)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    settings = Settings()
    if scenario[0] in ("sentinel", "existing-secret"):
        assert settings.sentinels == SENTINELS
        assert settings.sentinel_master == "jobs"
    if scenario[0] == "sentinel":
        assert settings.redis_password is not None and settings.sentinel_password is not None
        assert settings.redis_password.get_secret_value() == "p@ss word/1"
        assert "REDIS_URL" not in env  # the sentinels name the master
    if scenario[0] == "defaults":
        assert settings.redis_url == "redis://redis:6379/0"
        assert settings.api_keys == {}


def test_the_redis_url_carries_the_password_redis_py_reads_back() -> None:
    values = SCENARIOS["plain-redis-with-password-tls-and-keys"]
    url = environment(render(values))["REDIS_URL"]
    assert url.startswith("rediss://")
    parsed = redis.Redis.from_url(url).connection_pool.connection_kwargs
    assert (parsed["host"], parsed["port"], parsed["db"]) == ("redis.example", 6380, 2)
    assert parsed["password"] == values["redis"]["password"]


def test_both_pods_read_the_settings_and_keys_from_the_configmap_and_secret(
    scenario: Rendered,
) -> None:
    name, documents = scenario
    secret_name = (
        one(documents, "Secret")["metadata"]["name"] if name != "existing-secret" else "gql-jobs-prod"
    )
    for suffix in ("-api", "-worker"):
        sources = container(one(documents, "Deployment", suffix))["envFrom"]
        assert {"configMapRef": {"name": one(documents, "ConfigMap")["metadata"]["name"]}} in sources
        assert {"secretRef": {"name": secret_name}} in sources
        assert "env" not in container(one(documents, "Deployment", suffix))  # nothing set around them


@pytest.mark.parametrize("component", ["api", "worker"])
def test_commands_are_real_cli_commands(scenario: Rendered, component: str) -> None:
    command = container(one(scenario[1], "Deployment", f"-{component}"))["command"]
    assert command[:2] == ["gql-jobs", "serve" if component == "api" else "worker"]
    args = _parser().parse_args(command[1:])  # exits (fails the test) on an unknown command or option
    if component == "worker":
        assert args.queues == (SCENARIOS[scenario[0]].get("worker", {}).get("queues") or ["default"])


def test_the_api_listens_where_its_service_and_probes_point(scenario: Rendered) -> None:
    documents = scenario[1]
    api = container(one(documents, "Deployment", "-api"))
    args = _parser().parse_args(api["command"][1:])
    assert args.host == "0.0.0.0"
    (port,) = api["ports"]
    assert (port["name"], port["containerPort"]) == ("http", args.port)
    assert one(documents, "Service", "-api")["spec"]["ports"][0]["targetPort"] == "http"
    assert api["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}
    assert api["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}


def test_the_probes_hit_real_routes(client: TestClient) -> None:
    api = container(one(render({}), "Deployment", "-api"))
    for probe in ("readinessProbe", "livenessProbe"):
        assert client.get(api[probe]["httpGet"]["path"]).status_code == 200


@pytest.mark.parametrize(
    ("settings", "grace", "expected"),
    [
        ({}, None, 960),  # the chart's RQ_DEFAULT_TIMEOUT=900, plus a minute
        ({"RQ_DEFAULT_TIMEOUT": "3600"}, None, 3660),
        ({"RQ_DEFAULT_TIMEOUT": "60", "GQL_JOBS_DEFAULT_TIMEOUT": "7200"}, None, 7260),  # prefixed wins
        ({}, 2000, 2000),
    ],
)
def test_worker_stop_grace_outlasts_the_job_timeout(
    settings: dict[str, str], grace: int | None, expected: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    values: dict[str, Any] = {"settings": {"RQ_DEFAULT_TIMEOUT": "900", **settings}}
    values["worker"] = {"terminationGracePeriodSeconds": grace}
    documents = render(values)
    pod = one(documents, "Deployment", "-worker")["spec"]["template"]["spec"]
    assert pod["terminationGracePeriodSeconds"] == expected
    for name in [n for n in os.environ if n.startswith(("GQL_JOBS_", "RQ_"))]:
        monkeypatch.delenv(name)
    for name, value in one(documents, "ConfigMap")["data"].items():
        monkeypatch.setenv(name, value)
    assert pod["terminationGracePeriodSeconds"] > Settings(_env_file=None).default_timeout


def test_a_grace_shorter_than_the_job_timeout_is_refused() -> None:
    with pytest.raises(helm.HelmError, match="must exceed the job timeout"):
        render({"worker": {"terminationGracePeriodSeconds": 900}})


def test_keda_scales_the_worker_deployment_on_rqs_own_queue_lists(
    scenario: Rendered,
) -> None:
    name, documents = scenario
    if name == "no-keda-no-hpa-no-policies":
        assert one(documents, "Deployment", "-worker")["spec"]["replicas"] == 2
        return
    worker = one(documents, "Deployment", "-worker")
    assert "replicas" not in worker["spec"]  # KEDA owns it
    scaled = one(documents, "ScaledObject")
    assert scaled["spec"]["scaleTargetRef"] == {"name": worker["metadata"]["name"]}
    assert scaled["spec"]["minReplicaCount"] == 0
    queues = _parser().parse_args(container(worker)["command"][1:]).queues
    triggers = scaled["spec"]["triggers"]
    connection = redis.Redis()  # never connects: only RQ's key naming is used
    lists = [Queue(queue, connection=connection).key for queue in queues]
    assert [trigger["metadata"]["listName"] for trigger in triggers] == lists
    sentinel = name in ("sentinel", "existing-secret")
    for trigger in triggers:
        assert trigger["type"] == ("redis-sentinel" if sentinel else "redis")
        assert set(trigger["metadata"]) <= KEDA_REDIS_METADATA
        assert all(isinstance(value, str) for value in trigger["metadata"].values())
        if sentinel:
            assert trigger["metadata"]["addresses"] == ",".join(SENTINELS)


def test_keda_reads_the_redis_passwords_from_the_apps_secret(scenario: Rendered) -> None:
    name, documents = scenario
    auths = [d for d in documents if d["kind"] == "TriggerAuthentication"]
    if name in ("defaults", "no-keda-no-hpa-no-policies"):
        assert auths == []  # no password: no authentication
        return
    (auth,) = auths
    refs = {ref["parameter"]: ref for ref in auth["spec"]["secretTargetRef"]}
    expected = {"password", "sentinelPassword"} if name in ("sentinel", "existing-secret") else {"password"}
    assert set(refs) == expected
    secret = next((d for d in documents if d["kind"] == "Secret"), None)
    for ref in refs.values():
        if secret is not None:
            assert ref["name"] == secret["metadata"]["name"] and ref["key"] in secret["stringData"]
        assert ref["key"] in {n for f in ("redis_password", "sentinel_password") for n in variable_names(f)}
    for trigger in one(documents, "ScaledObject")["spec"]["triggers"]:
        assert trigger["authenticationRef"] == {"name": auth["metadata"]["name"]}


def test_the_hpa_scales_the_api_on_cpu_it_requests() -> None:
    documents = render({})
    hpa, api = one(documents, "HorizontalPodAutoscaler"), one(documents, "Deployment", "-api")
    assert hpa["spec"]["scaleTargetRef"]["name"] == api["metadata"]["name"]
    assert "replicas" not in api["spec"]
    assert container(api)["resources"]["requests"]["cpu"]  # CPU utilisation needs a request


def _pod_labels(documents: list[dict[str, Any]], component: str) -> dict[str, str]:
    labels: dict[str, str] = template(documents, f"-{component}")["metadata"]["labels"]
    return labels


def _selects(selector: dict[str, str], labels: dict[str, str]) -> bool:
    return bool(selector) and selector.items() <= labels.items()


def test_selectors_pick_their_own_pods_only(scenario: Rendered) -> None:
    documents = scenario[1]
    api, worker = _pod_labels(documents, "api"), _pod_labels(documents, "worker")
    for document in documents:
        kind, name = document["kind"], document["metadata"]["name"]
        component = "api" if name.endswith("-api") else "worker" if name.endswith("-worker") else None
        if kind in ("Deployment", "PodDisruptionBudget"):
            selector = document["spec"]["selector"]["matchLabels"]
        elif kind == "NetworkPolicy":
            selector = document["spec"]["podSelector"]["matchLabels"]
        elif kind == "Service":
            selector = document["spec"]["selector"]
        else:
            continue
        mine, other = (api, worker) if component == "api" else (worker, api)
        assert _selects(selector, mine) and not _selects(selector, other), (kind, name)


def test_network_policies_open_the_api_port_only_and_reach_redis(
    scenario: Rendered,
) -> None:
    name, documents = scenario
    if name == "no-keda-no-hpa-no-policies":
        return
    api_policy = one(documents, "NetworkPolicy", "-api")
    worker_policy = one(documents, "NetworkPolicy", "-worker")
    assert [rule["ports"] for rule in api_policy["spec"]["ingress"]] == [
        [{"port": "http", "protocol": "TCP"}]
    ]
    assert worker_policy["spec"]["ingress"] == []  # nothing calls a worker
    expected = {26379, 26380, 6379} if name in ("sentinel", "existing-secret") else {6379}
    if name == "plain-redis-with-password-tls-and-keys":
        expected = {6380}
    for policy in (api_policy, worker_policy):
        assert set(policy["spec"]["policyTypes"]) == {"Ingress", "Egress"}
        ports = {p["port"] for rule in policy["spec"]["egress"] for p in rule["ports"] if p["port"] != 53}
        assert expected <= ports


def test_pods_run_as_the_images_unprivileged_user(scenario: Rendered) -> None:
    uid = re.search(r"useradd .*--uid (\d+) app", (ROOT / "Dockerfile").read_text())
    assert uid is not None
    for suffix in ("-api", "-worker"):
        pod = one(scenario[1], "Deployment", suffix)["spec"]["template"]["spec"]
        assert pod["securityContext"]["runAsUser"] == int(uid.group(1))
        assert pod["securityContext"]["runAsNonRoot"] is True
        context = pod["containers"][0]["securityContext"]
        assert context["readOnlyRootFilesystem"] and not context["allowPrivilegeEscalation"]
        assert {"name": "tmp", "mountPath": "/tmp"} in pod["containers"][0]["volumeMounts"]  # tempfile's dir


def test_disruption_budgets_keep_the_api_up_and_let_workers_drain() -> None:
    documents = render({})
    assert one(documents, "PodDisruptionBudget", "-api")["spec"]["minAvailable"] == 1
    # KEDA may take the workers to zero: minAvailable would block every drain then.
    worker_budget = one(documents, "PodDisruptionBudget", "-worker")["spec"]
    assert worker_budget == {**worker_budget, "maxUnavailable": 1} and "minAvailable" not in worker_budget


def test_a_settings_change_rolls_the_pods() -> None:
    def checksums(values: dict[str, Any]) -> Iterator[str]:
        for suffix in ("-api", "-worker"):
            annotations = template(render(values), suffix)["metadata"]["annotations"]
            yield annotations["checksum/settings"] + annotations["checksum/secrets"]

    assert set(checksums({})).isdisjoint(checksums({"settings": {"GQL_JOBS_RATE_LIMIT": "5"}}))


def test_the_values_schema_knows_every_setting_and_no_other() -> None:
    schema = json.loads((CHART / "values.schema.json").read_text())
    allowed = set(schema["properties"]["settings"]["propertyNames"]["enum"])
    names = {name for field in Settings.model_fields for name in variable_names(field)}
    assert allowed == names, (
        f"settings added {sorted(names - allowed)}, gone {sorted(allowed - names)}: list every name in "
        "deploy/helm/gql-jobs/values.schema.json, properties.settings.propertyNames.enum"
    )


@pytest.mark.parametrize(
    ("values", "problem"),
    [
        ({"settings": {"GQL_JOBS_RATE_LIMT": "5"}}, "GQL_JOBS_RATE_LIMT"),  # a misspelt setting
        ({"worker": {"pol": 4}}, "pol"),
        ({"worker": {"pool": "four"}}, "/worker/pool"),
        ({"redis": {"sentinel": {"addresses": ["a:26379,b:26379"]}}}, "/redis/sentinel/addresses"),
    ],
)
def test_values_the_chart_does_not_know_fail_the_render(values: dict[str, Any], problem: str) -> None:
    with pytest.raises(helm.HelmValuesError, match=re.escape(problem)):
        render(values)
