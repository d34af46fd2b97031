"""The transcription API: a real uvicorn server on loopback, real models, real clients."""

from __future__ import annotations

import concurrent.futures
import io
import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager

import httpx
import pytest
import soundfile

from tests.browser import free_port, wait_healthy
from tests.conftest import REPO

pytestmark = pytest.mark.slow
SENTENCE = "the quick brown fox jumps over the lazy dog"


@contextmanager
def api_server(*flags: str, env: dict[str, str] | None = None) -> Iterator[str]:
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "core", "serve", "--port", str(port), *flags],
                            cwd=REPO, env={**os.environ, **(env or {})},
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_healthy(f"http://127.0.0.1:{port}/health", proc=proc)
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait(timeout=20)


@pytest.fixture(scope="module")
def fox_wav() -> bytes:
    from core.audio import SAMPLE_RATE
    from core.demo_data import synthesize

    buffer = io.BytesIO()
    soundfile.write(buffer, synthesize(SENTENCE, "en"), SAMPLE_RATE, format="WAV")
    return buffer.getvalue()


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    with api_server("--model", "faster-whisper:tiny.en", "--max-upload-mb", "1") as url:
        yield url


def _post(url: str, wav: bytes, **form: str) -> httpx.Response:
    return httpx.post(f"{url}/v1/audio/transcriptions", files={"file": ("fox.wav", wav)},
                      data=form, timeout=120)


def test_health_and_models_describe_the_server(server):
    health = httpx.get(f"{server}/health").json()
    assert health["status"] == "ok" and health["device"] == "cpu"
    assert health["memory"]["budget_gb"] > 0
    ids = [m["id"] for m in httpx.get(f"{server}/v1/models").json()["data"]]
    assert "faster-whisper:tiny.en" in ids and "whisper:large-v3" in ids


def test_transcription_in_every_response_format(server, fox_wav):
    body = _post(server, fox_wav, model="faster-whisper:tiny.en").json()
    assert "fox" in body["text"].lower()
    assert "faster-whisper:tiny.en" in httpx.get(f"{server}/health").json()["models_loaded"]
    text = _post(server, fox_wav, response_format="text")
    assert text.headers["content-type"].startswith("text/plain") and "fox" in text.text.lower()
    verbose = _post(server, fox_wav, response_format="verbose_json").json()
    assert verbose["duration"] > 1 and verbose["segments"][0]["end"] == verbose["duration"]
    srt = _post(server, fox_wav, response_format="srt").text
    assert srt.startswith("1\n00:00:00,000 --> 00:00:0")
    vtt = _post(server, fox_wav, response_format="vtt").text
    assert vtt.startswith("WEBVTT\n\n00:00:00.000 --> ")


def test_error_cases_are_json_with_the_right_status(server, fox_wav):
    bad = _post(server, b"this is not audio at all")
    assert bad.status_code == 400 and "error" in bad.json()
    unknown = _post(server, fox_wav, model="whisper:does-not-exist")
    assert unknown.status_code == 404 and "unknown ASR model" in unknown.json()["error"]["message"]
    huge = _post(server, b"\0" * (2 * 2**20))
    assert huge.status_code == 413
    fmt = _post(server, fox_wav, response_format="docx")
    assert fmt.status_code == 400


def test_official_openai_client_transcribes(server, fox_wav, tmp_path):
    from openai import OpenAI

    path = tmp_path / "fox.wav"
    path.write_bytes(fox_wav)
    client = OpenAI(base_url=f"{server}/v1", api_key="unused", max_retries=0)
    with path.open("rb") as handle:
        result = client.audio.transcriptions.create(model="faster-whisper:tiny.en", file=handle)
    assert "fox" in result.text.lower()


def test_api_key_is_required_everywhere_but_health(fox_wav):
    with api_server("--api-key", "s3cret") as url:
        assert httpx.get(f"{url}/health").status_code == 200
        assert httpx.get(f"{url}/v1/models").status_code == 401
        wrong = httpx.get(f"{url}/v1/models", headers={"Authorization": "Bearer nope"})
        assert wrong.status_code == 401 and wrong.json()["error"]["type"] == \
            "authentication_error"
        ok = httpx.get(f"{url}/v1/models", headers={"Authorization": "Bearer s3cret"})
        assert ok.status_code == 200


def test_concurrent_requests_are_batched_and_a_full_queue_answers_503(fox_wav):
    with api_server("--model", "faster-whisper:tiny.en", "--queue-size", "2",
                    "--batch-window-ms", "200") as url:
        assert _post(url, fox_wav).status_code == 200  # load the model first
        with concurrent.futures.ThreadPoolExecutor(12) as pool:
            codes = list(pool.map(lambda _: _post(url, fox_wav).status_code, range(12)))
        assert 503 in codes and 200 in codes
        assert set(codes) <= {200, 503}


def test_server_side_batching_groups_concurrent_requests(fox_wav):
    with api_server("--model", "faster-whisper:tiny.en", "--batch-window-ms", "300") as url:
        assert _post(url, fox_wav).status_code == 200
        with concurrent.futures.ThreadPoolExecutor(4) as pool:
            texts = list(pool.map(lambda _: _post(url, fox_wav).json()["text"], range(4)))
        assert all("fox" in t.lower() for t in texts)
        queue = httpx.get(f"{url}/health").json()["queues"]["faster-whisper:tiny.en"]
        assert queue["largest_batch"] > 1


def test_endpoint_model_evaluates_like_the_in_process_model(tmp_path):
    from core.demo_data import make_demo_dataset
    from core.evaluation import runner
    from core.evaluation.config import RunConfig
    from core.evaluation.run_dir import RunDir

    manifest = make_demo_dataset(tmp_path / "demo", langs=("en",), count=4)
    with api_server("--model", "faster-whisper:tiny.en", "--api-key", "k",
                    env={"ERT_API_KEY": ""}) as url:
        registry = tmp_path / "asr.toml"
        registry.write_text(f"""
[models."faster-whisper:tiny.en"]
source = "bundled:faster-whisper-tiny.en"
[models."api:tiny.en"]
source = "{url}/v1"
endpoint_model = "faster-whisper:tiny.en"
api_key_env = "ERT_TEST_API_KEY"
""")
        os.environ["ERT_TEST_API_KEY"] = "k"
        try:
            outcome = runner.start(RunConfig(
                dataset=str(manifest), models=["faster-whisper:tiny.en", "api:tiny.en"],
                out_dir=str(tmp_path / "runs"), registry_path=str(registry), use_cache=False))
        finally:
            os.environ.pop("ERT_TEST_API_KEY", None)
    rows = RunDir(outcome.run_dir).records().sample_rows()
    local = {r["id"]: r["hypothesis"] for r in rows if r["model"] == "faster-whisper:tiny.en"}
    served = {r["id"]: r["hypothesis"] for r in rows if r["model"] == "api:tiny.en"}
    assert len(local) == 4 and all(r["error"] is None for r in rows)
    assert served == local
