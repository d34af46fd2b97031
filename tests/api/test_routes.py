"""The app's composition (core.api.app with its routers, guard and error handlers) in
process, with no model loaded: every route is there, the gate and the errors answer in
OpenAI's shape, and the routers share one Runtime that the lifespan starts and closes."""

from __future__ import annotations

from core.api.app import create_app
from core.api.runtime import Runtime
from core.api.settings import ServeSettings

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from tests.conftest import TINY_EN_REGISTRY

KEY = {"Authorization": "Bearer k"}
TINY = "faster-whisper:tiny.en"


@pytest.fixture
def client(tmp_path) -> Iterator[TestClient]:
    registry = tmp_path / "asr.toml"
    registry.write_text(TINY_EN_REGISTRY)
    settings = ServeSettings(api_key="k", max_upload_mb=1, budget_gb=2.0,
                             registry_path=str(registry))
    with TestClient(create_app(settings)) as test_client:
        yield test_client


def _post(client: TestClient, data: bytes = b"not audio", **form: str):
    return client.post("/v1/audio/transcriptions", headers=KEY,
                       files={"file": ("a.wav", data)}, data=form)


def _error(response, status: int, code: str | None, param: str | None = None) -> str:
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert (error["code"], error["param"]) == (code, param)
    return error["message"]


def test_every_route_is_composed_with_its_methods(client):
    paths = client.get("/openapi.json", headers=KEY).json()["paths"]
    assert {path: sorted(ops) for path, ops in paths.items()} == {
        "/health": ["get"], "/v1/models": ["get"], "/api/ps": ["get"],
        "/api/ps/{model_id}": ["delete", "post"], "/v1/audio/transcriptions": ["post"]}
    assert paths["/api/ps/{model_id}"]["post"]["responses"].keys() >= {"201"}


def test_health_is_open_and_reads_the_shared_runtime(client):
    health = client.get("/health").json()
    assert health["status"] == "ok" and health["device"] == "cpu"
    assert health["models_loaded"] == [] and health["queues"] == {}
    assert health["memory"]["budget_gb"] == 2.0 and health["memory"]["models_gb"] == 0


def test_the_gate_wants_the_key_and_refuses_oversized_requests(client):
    for bad in ({}, {"Authorization": "Bearer nope"}, {"Authorization": "k"}):
        response = client.get("/v1/models", headers=bad)
        assert _error(response, 401, "invalid_api_key").startswith("missing or invalid API key")
        assert response.json()["error"]["type"] == "authentication_error"
    huge = _post(client, b"\0" * (2 * 2**20))
    assert _error(huge, 413, "file_too_large", "file") == "request of 2.0 MB is over the 1 MB limit"


def test_models_list_the_registry_and_whisper_1_as_the_default(client):
    listed = {m["id"]: m for m in client.get("/v1/models", headers=KEY).json()["data"]}
    assert listed[TINY]["loaded"] is False and listed[TINY]["languages"] == ["en"]
    assert listed["whisper-1"]["alias_of"] == TINY
    assert client.get("/api/ps", headers=KEY).json() == {"models": []}


def test_model_routes_answer_unknown_and_not_loaded(client):
    assert "unknown ASR model" in _error(client.post("/api/ps/whisper:nope", headers=KEY),
                                         404, "model_not_found", "model")
    assert _error(client.delete(f"/api/ps/{TINY}", headers=KEY), 404, "model_not_loaded") \
        == f"{TINY} is not loaded"
    assert _error(client.delete("/api/ps/whisper-1", headers=KEY), 404, "model_not_loaded") \
        == f"{TINY} is not loaded"  # whisper-1 resolves to the default


def test_transcription_refusals_come_before_any_decode(client):
    _error(_post(client, model="whisper:nope"), 404, "model_not_found", "model")
    assert _error(_post(client, response_format="docx"), 400, "invalid_value",
                  "response_format").startswith("response_format must be one of json")
    assert "word or segment, not char" in _error(
        _post(client, **{"timestamp_granularities[]": "char"}), 400, "invalid_value",
        "timestamp_granularities[]")
    _error(_post(client), 400, "invalid_audio", "file")
    _error(_post(client, stream="true"), 400, "invalid_audio", "file")
    _error(_post(client, b""), 400, "invalid_audio", "file")
    assert client.get("/health").json()["models_loaded"] == []  # none of them loaded a model


def test_starlette_errors_are_in_openais_shape_and_validation_keeps_fastapis(client):
    assert _error(client.get("/nope", headers=KEY), 404, None) == "Not Found"
    assert _error(client.put("/health"), 405, None) == "Method Not Allowed"
    missing = client.post("/v1/audio/transcriptions", headers=KEY)
    assert missing.status_code == 422 and missing.json()["detail"][0]["loc"] == ["body", "file"]


def test_the_lifespan_starts_and_closes_the_one_runtime(tmp_path):
    registry = tmp_path / "asr.toml"
    registry.write_text(TINY_EN_REGISTRY)
    app = create_app(ServeSettings(api_key=None, budget_gb=1.0, registry_path=str(registry)))
    runtime = app.state.runtime
    assert isinstance(runtime, Runtime) and runtime.default_model == TINY
    assert runtime.max_bytes == 25 * 2**20
    with pytest.raises(RuntimeError):
        runtime.pool  # noqa: B018  (not before start-up)
    closed: list[str] = []
    with TestClient(app) as test_client:
        assert test_client.get("/health").status_code == 200
        pool = runtime.pool
        original = pool.close
        pool.close = lambda: (closed.append("pool"), original())[1]
    assert closed == ["pool"]
