"""The transcription API: a real uvicorn server on loopback, real models, real clients."""

from __future__ import annotations

import concurrent.futures
import io
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager

import httpx
import pytest
import soundfile

from tests.browser import free_port, wait_healthy
from tests.conftest import REPO, TINY_EN_REGISTRY

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
    assert verbose["duration"] > 1 and "fox" in verbose["segments"][0]["text"].lower()
    assert 0 <= verbose["segments"][0]["start"] < verbose["segments"][-1]["end"] \
        <= verbose["duration"]
    srt = _post(server, fox_wav, response_format="srt").text
    assert srt.startswith("1\n00:00:0")
    vtt = _post(server, fox_wav, response_format="vtt").text
    assert vtt.startswith("WEBVTT\n\n00:00:0")


def test_error_cases_are_json_with_the_right_status(server, fox_wav):
    bad = _post(server, b"this is not audio at all")
    assert bad.status_code == 400 and "error" in bad.json()
    unknown = _post(server, fox_wav, model="whisper:does-not-exist")
    assert unknown.status_code == 404 and "unknown ASR model" in unknown.json()["error"]["message"]
    huge = _post(server, b"\0" * (2 * 2**20))
    assert huge.status_code == 413
    fmt = _post(server, fox_wav, response_format="docx")
    assert fmt.status_code == 400
    empty = _post(server, b"")
    assert empty.status_code == 400 and "error" in empty.json()
    granularity = _post(server, fox_wav, response_format="verbose_json",
                        **{"timestamp_granularities[]": "char"})
    assert granularity.status_code == 400 and "word or segment" in \
        granularity.json()["error"]["message"]
    streamed_bad = _post(server, b"this is not audio at all", stream="true")
    assert streamed_bad.status_code == 400  # refused before any event is sent


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


# --- timestamps, streaming, long files, model lifetime (issue 16) ---------------------------

TWO = ["The quick brown fox jumps over the lazy dog.",
       "Please close the door when you leave the room."]


def _wav(audio) -> bytes:
    from core.audio import SAMPLE_RATE

    buffer = io.BytesIO()
    soundfile.write(buffer, audio, SAMPLE_RATE, format="WAV")
    return buffer.getvalue()


@pytest.fixture(scope="module")
def two_sentences() -> tuple[bytes, float]:
    """Two sentences a second apart: two segments for a model that times its text."""
    from core.audio import SAMPLE_RATE
    from core.demo_data import synthesize

    import numpy as np

    audio = np.concatenate([synthesize(TWO[0], "en-us"), np.zeros(SAMPLE_RATE, np.float32),
                            synthesize(TWO[1], "en-us")])
    return _wav(audio), audio.size / SAMPLE_RATE


@pytest.fixture(scope="module")
def timed_server(tmp_path_factory) -> Iterator[str]:
    """tiny.en (word timestamps), tiny random transformers Whisper (segments), Wav2Vec2 (words
    from CTC frames), Seamless (none), and a hub model that is not downloaded."""
    from tests.tiny_models import build_seamless_v2, build_wav2vec2, build_whisper

    root = tmp_path_factory.mktemp("timed")
    registry = root / "asr.toml"
    registry.write_text(TINY_EN_REGISTRY + f"""
[models."whisper:tiny-random"]
source = "{build_whisper(root / 'whisper')}"
[models."wav2vec2:tiny-random"]
source = "{build_wav2vec2(root / 'w2v')}"
[models."seamless:tiny-random"]
source = "{build_seamless_v2(root / 'seamless')}"
[models."whisper:not-downloaded"]
source = "openai/whisper-tiny-ert-not-downloaded"
""")
    with api_server("--registry", str(registry), "--max-upload-mb", "8") as url:
        yield url


def _monotonic_inside(items: list[dict], duration: float) -> None:
    starts = [i["start"] for i in items]
    assert starts == sorted(starts)
    assert all(0 <= i["start"] <= i["end"] <= duration for i in items)


@pytest.mark.parametrize("model, words", [("faster-whisper:tiny.en", True),
                                          ("wav2vec2:tiny-random", True),
                                          ("whisper:tiny-random", False)])
def test_segment_and_word_timestamps_are_monotonic_and_inside_the_clip(
        timed_server, two_sentences, model, words):
    wav, duration = two_sentences
    form = {"model": model, "response_format": "verbose_json", "language": "en"}
    if words:
        form["timestamp_granularities[]"] = "word"
    body = _post(timed_server, wav, **form).json()
    assert body["segments"], body
    _monotonic_inside(body["segments"], duration)
    if words:
        assert body["words"]
        _monotonic_inside(body["words"], duration)
        for segment in body["segments"]:  # each word inside a segment
            assert any(s["start"] <= w["start"] <= w["end"] <= s["end"] + 1e-6
                       for w in body["words"] for s in [segment]) or not segment["text"]
    if model == "faster-whisper:tiny.en":
        assert len(body["segments"]) == 2  # one per sentence: real times, not the whole clip
        assert "lazy" in body["segments"][0]["text"].lower()
        assert "door" in body["segments"][1]["text"].lower()
        assert body["segments"][0]["end"] < body["segments"][1]["start"]
        lazy = next(w for w in body["words"] if "lazy" in w["word"].lower())
        door = next(w for w in body["words"] if "door" in w["word"].lower())
        assert lazy["end"] < door["start"]


def test_srt_of_real_segments_reads_back_with_a_subtitle_parser(timed_server, two_sentences):
    import srt

    wav, duration = two_sentences
    cues = list(srt.parse(_post(timed_server, wav, response_format="srt").text))
    assert len(cues) == 2 and "lazy" in cues[0].content.lower() and "door" in cues[1].content
    assert cues[0].end <= cues[1].start and cues[1].end.total_seconds() <= duration


def test_a_model_without_the_timestamps_asked_for_answers_400(timed_server, two_sentences):
    wav, _ = two_sentences
    none = _post(timed_server, wav, model="seamless:tiny-random", response_format="srt",
                 language="en")
    assert none.status_code == 400
    assert "cannot give segment timestamps" in none.json()["error"]["message"]
    segments_only = _post(timed_server, wav, model="whisper:tiny-random",
                          response_format="verbose_json", **{"timestamp_granularities[]": "word"})
    assert segments_only.status_code == 400
    assert "segment timestamps only" in segments_only.json()["error"]["message"]


def test_the_openai_client_streams_deltas_then_the_full_text(timed_server, two_sentences):
    from openai import OpenAI

    wav, _ = two_sentences
    client = OpenAI(base_url=f"{timed_server}/v1", api_key="unused", max_retries=0)
    events = list(client.audio.transcriptions.create(
        model="faster-whisper:tiny.en", file=("two.wav", wav), stream=True))
    kinds = [e.type for e in events]
    assert kinds[-1] == "transcript.text.done" and set(kinds[:-1]) == {"transcript.text.delta"}
    assert len(kinds) == 3  # a delta per segment
    assert "".join(e.delta for e in events[:-1]) == events[-1].text
    assert events[-1].text == _post(timed_server, wav).json()["text"]
    # A model without timestamps streams too: the text of each piece cut at pauses.
    plain = list(client.audio.transcriptions.create(
        model="seamless:tiny-random", file=("two.wav", wav), stream=True, language="en"))
    assert plain[-1].type == "transcript.text.done"


def test_a_long_file_is_cut_at_pauses_and_its_pieces_batched(tmp_path):
    from core.audio import SAMPLE_RATE
    from core.demo_data import synthesize

    import numpy as np

    sentences = [synthesize(TWO[i % 2], "en-us") for i in range(14)]
    gap = np.zeros(SAMPLE_RATE, np.float32)
    audio = np.concatenate([part for s in sentences for part in (s, gap)])
    assert audio.size / SAMPLE_RATE > 60
    with api_server("--model", "faster-whisper:tiny.en", "--max-upload-mb", "8") as url:
        text = _post(url, _wav(audio)).json()["text"].lower()
        queue = httpx.get(f"{url}/health").json()["queues"]["faster-whisper:tiny.en"]
    assert text.count("door") >= 6 and text.count("lazy") >= 6  # every piece, in order
    assert text.index("lazy") < text.index("door")
    assert queue["largest_batch"] > 1  # the pieces shared forward passes


def test_an_idle_model_is_unloaded_after_its_ttl(fox_wav):
    with api_server("--model", "faster-whisper:tiny.en", "--model-ttl", "1") as url:
        assert _post(url, fox_wav).status_code == 200
        assert httpx.get(f"{url}/api/ps").json()["models"] == ["faster-whisper:tiny.en"]
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and httpx.get(f"{url}/api/ps").json()["models"]:
            time.sleep(0.2)
        assert httpx.get(f"{url}/api/ps").json()["models"] == []
        assert _post(url, fox_wav).status_code == 200  # and loads again when asked
    with api_server("--model", "faster-whisper:tiny.en", "--model-ttl", "0") as url:
        assert _post(url, fox_wav).status_code == 200
        assert httpx.get(f"{url}/api/ps").json()["models"] == []  # gone with its request
    with api_server("--model", "faster-whisper:tiny.en", "--model-ttl", "-1") as url:
        assert _post(url, fox_wav).status_code == 200
        time.sleep(2)
        assert httpx.get(f"{url}/api/ps").json()["models"] == ["faster-whisper:tiny.en"]


def test_load_and_unload_routes_need_the_key_and_answer_like_speaches():
    key = {"Authorization": "Bearer s3cret"}
    model = "faster-whisper:tiny.en"
    with api_server("--api-key", "s3cret") as url:
        assert httpx.post(f"{url}/api/ps/{model}").status_code == 401
        assert httpx.delete(f"{url}/api/ps/{model}").status_code == 401
        assert httpx.get(f"{url}/api/ps").status_code == 401
        assert httpx.post(f"{url}/api/ps/{model}", headers=key, timeout=60).status_code == 201
        assert httpx.post(f"{url}/api/ps/{model}", headers=key).status_code == 409
        assert httpx.get(f"{url}/api/ps", headers=key).json()["models"] == [model]
        listed = {m["id"]: m["loaded"] for m in
                  httpx.get(f"{url}/v1/models", headers=key).json()["data"]}
        assert listed[model] is True and listed["whisper:tiny"] is False
        assert httpx.delete(f"{url}/api/ps/{model}", headers=key).status_code == 200
        assert httpx.delete(f"{url}/api/ps/{model}", headers=key).status_code == 404
        assert httpx.get(f"{url}/api/ps", headers=key).json()["models"] == []
        assert httpx.post(f"{url}/api/ps/whisper:nope", headers=key).status_code == 404


# --- one decode behind every format; errors no client retries; whisper-1 (issue 27) ---------

def _one_line(text: str) -> str:
    return " ".join(text.split())


def _cue_text(body: str) -> str:
    """The text of srt or vtt cues, joined: what is left without numbers, times and header."""
    lines = [line for line in body.splitlines() if line.strip() and "-->" not in line
             and line != "WEBVTT" and not line.isdigit()]
    return _one_line(" ".join(lines))


@pytest.fixture(scope="module")
def lights_wav() -> bytes:
    """A sentence tiny.en decodes differently with and without timestamp tokens ("the
    lights" / "my light"): two decoding paths would show."""
    from core.demo_data import synthesize

    return _wav(synthesize("Please turn off the lights when you leave the room.", "en"))


@pytest.mark.parametrize("model", ["faster-whisper:tiny.en", "whisper:tiny-random",
                                   "wav2vec2:tiny-random"])
def test_every_response_format_gives_the_same_text(timed_server, lights_wav, model):
    from openai import OpenAI

    wav = lights_wav
    form = {"model": model, "language": "en"}
    texts = {"json": _post(timed_server, wav, **form).json()["text"],
             "text": _post(timed_server, wav, response_format="text", **form).text,
             "verbose_json": _post(timed_server, wav, response_format="verbose_json",
                                   **form).json()["text"]}
    for fmt in ("srt", "vtt"):
        texts[fmt] = _cue_text(_post(timed_server, wav, response_format=fmt, **form).text)
    client = OpenAI(base_url=f"{timed_server}/v1", api_key="unused", max_retries=0)
    texts["stream"] = list(client.audio.transcriptions.create(
        model=model, file=("lights.wav", wav), stream=True, language="en"))[-1].text
    assert texts["json"].strip(), texts
    assert {fmt: _one_line(t) for fmt, t in texts.items()} == \
        {fmt: _one_line(texts["json"]) for fmt in texts}


def test_verbose_json_segments_carry_the_engines_confidence_where_it_gives_one(
        timed_server, two_sentences):
    wav, _ = two_sentences
    form = {"response_format": "verbose_json", "language": "en"}
    engine = _post(timed_server, wav, model="faster-whisper:tiny.en", **form).json()["segments"]
    assert all(s["avg_logprob"] < 0 and 0 <= s["no_speech_prob"] <= 1 for s in engine)
    none = _post(timed_server, wav, model="whisper:tiny-random", **form).json()["segments"]
    assert none and all(s["avg_logprob"] is None and s["no_speech_prob"] is None for s in none)


def test_a_model_that_cannot_load_is_a_400_the_openai_client_does_not_retry(
        timed_server, two_sentences):
    import openai

    wav, _ = two_sentences
    sent: list[str] = []
    http = httpx.Client(timeout=120, event_hooks={"request": [lambda r: sent.append(r.url.path)]})
    client = openai.OpenAI(base_url=f"{timed_server}/v1", api_key="unused", http_client=http)
    assert client.max_retries > 0  # the client's default: it would retry a 5xx
    with pytest.raises(openai.BadRequestError) as refused:
        client.audio.transcriptions.create(model="whisper:not-downloaded",
                                           file=("two.wav", wav))
    assert sent == ["/v1/audio/transcriptions"]  # one request, no retry
    error = refused.value.body
    assert error["code"] == "model_unavailable" and error["param"] == "model"
    assert error["type"] == "invalid_request_error"
    assert "not in the local cache, and the hub is unreachable" in error["message"]
    loading = httpx.post(f"{timed_server}/api/ps/whisper:not-downloaded", timeout=120)
    assert loading.status_code == 400 and set(loading.json()["error"]) == \
        {"message", "type", "param", "code"}


def test_whisper_1_transcribes_with_the_default_model(timed_server, two_sentences):
    from openai import OpenAI

    wav, _ = two_sentences  # timed_server's registry default: faster-whisper:tiny.en
    client = OpenAI(base_url=f"{timed_server}/v1", api_key="unused", max_retries=0)
    result = client.audio.transcriptions.create(model="whisper-1", file=("two.wav", wav))
    assert "door" in result.text.lower()
    assert result.text == _post(timed_server, wav, model="faster-whisper:tiny.en").json()["text"]
    listed = {m["id"]: m for m in httpx.get(f"{timed_server}/v1/models").json()["data"]}
    assert listed["whisper-1"]["alias_of"] == "faster-whisper:tiny.en"
