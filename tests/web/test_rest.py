"""The lesson's REST contract against a real Redis and a real RQ worker."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import datetime

import pytest
from fastapi.testclient import TestClient

LESSON_BODY: dict[str, object] = {"task": "heavy_compute", "payload": {"user_id": 101, "message": "hello"}}
STATUS_KEYS = ["job_id", "status", "meta", "enqueued_at", "started_at", "ended_at", "result", "exc_info"]

pytestmark = pytest.mark.integration


def submit(client: TestClient, body: dict[str, object]) -> dict[str, object]:
    response = client.post("/submit-job", json=body)
    assert response.status_code == 200, response.text
    data: dict[str, object] = response.json()
    return data


def test_submit_answers_the_lesson_shape(client: TestClient) -> None:
    data = submit(client, LESSON_BODY)
    assert list(data) == ["job_id", "status", "submitted_at"]
    assert re.fullmatch(r"JOB-[0-9a-f-]{36}", str(data["job_id"]))
    assert data["status"] == "queued"
    assert datetime.fromisoformat(str(data["submitted_at"])).utcoffset() is not None
    assert str(data["submitted_at"]).endswith("+00:00")


def test_status_of_a_queued_job_has_the_lesson_fields_and_metadata(client: TestClient) -> None:
    job = submit(client, LESSON_BODY)
    status = client.get(f"/job-status/{job['job_id']}").json()
    assert list(status) == STATUS_KEYS
    assert status["status"] == "queued"
    assert status["meta"] == {
        "job_id": job["job_id"],
        "submitted_at": job["submitted_at"],
        "payload": LESSON_BODY["payload"],
        "task_name": "heavy_compute",
        "tags": ["api", "v1"],
    }
    assert status["enqueued_at"].endswith("+00:00")
    assert (status["started_at"], status["ended_at"], status["result"], status["exc_info"]) == (None,) * 4


def test_finished_job_returns_the_lessons_result(client: TestClient, drain: Callable[..., None]) -> None:
    job = submit(client, LESSON_BODY)
    drain()
    status = client.get(f"/job-status/{job['job_id']}").json()
    assert status["status"] == "finished"
    assert status["result"] == {
        "echo": {"user_id": 101, "message": "hello"},
        "summary": "Processed keys: ['user_id', 'message']",
    }
    assert status["started_at"] and status["ended_at"] and status["exc_info"] is None


def test_failing_task_ends_failed_with_exc_info(client: TestClient, drain: Callable[..., None]) -> None:
    job = submit(client, {"task": "fail", "payload": {"message": "broken on purpose"}})
    drain()
    status = client.get(f"/job-status/{job['job_id']}").json()
    assert status["status"] == "failed"
    assert status["result"] is None
    assert "Traceback" in status["exc_info"] and "broken on purpose" in status["exc_info"]


def test_unknown_task_is_400_like_the_lesson(client: TestClient) -> None:
    response = client.post("/submit-job", json={"task": "rm_rf", "payload": {}})
    assert (response.status_code, response.json()) == (400, {"detail": "Unknown task: rm_rf"})


def test_payload_not_an_object_is_422(client: TestClient) -> None:
    response = client.post("/submit-job", json={"task": "echo", "payload": [1, 2]})
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["body", "payload"]


def test_payload_failing_the_task_model_is_422_with_field_paths(client: TestClient) -> None:
    response = client.post("/submit-job", json={"task": "add", "payload": {"a": "x", "b": -1}})
    assert response.status_code == 422
    locs = sorted(tuple(item["loc"]) for item in response.json()["detail"])
    assert locs == [("body", "payload", "a"), ("body", "payload", "b")]


def test_oversized_payload_is_413_and_nothing_is_stored(client: TestClient, redis_client: object) -> None:
    response = client.post("/submit-job", json={"task": "echo", "payload": {"blob": "x" * 70_000}})
    assert response.status_code == 413
    assert "65536" in response.json()["detail"]
    assert redis_client.keys("*") == []  # type: ignore[attr-defined]


def test_huge_body_is_refused_before_parsing(client: TestClient) -> None:
    response = client.post(
        "/submit-job", content=b"{" + b" " * 50_000_000 + b"}", headers={"content-type": "application/json"}
    )
    assert response.status_code == 413


@pytest.mark.parametrize("job_id", ["JOB-does-not-exist", "x" * 1000, "a:b", "*", "rq%3Ajob%3Ax"])
def test_unknown_or_malformed_id_is_404(client: TestClient, job_id: str) -> None:
    response = client.get(f"/job-status/{job_id}")
    assert (response.status_code, response.json()) == (404, {"detail": "Job not found"})


def test_openapi_documents_both_routes(client: TestClient) -> None:
    paths = client.get("/openapi.json").json()["paths"]
    assert {"/submit-job", "/job-status/{job_id}"} <= set(paths)
    assert client.get("/docs").status_code == 200


def test_health_and_readiness(client: TestClient) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}
    assert client.get("/readyz").json() == {"status": "ready"}
