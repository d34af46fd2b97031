"""One clip through several models within the memory budget (core.transcribe).

Fake backends check the bookkeeping (budget, errors as results, WER, order);
the real bundled faster-whisper:tiny.en checks it end to end on espeak-ng speech.
"""

from __future__ import annotations

import core.transcribe as transcribe_module
from core.asr.base import DecodeOptions, Transcript
from core.asr.registry import load_asr_registry
from core.hub import ModelUnavailableError
from core.transcribe import ClipResult, transcribe_clip

import numpy as np
import pytest

from tests.conftest import TINY_EN_REGISTRY

SENTENCE = "the quick brown fox jumps over the lazy dog"
REGISTRY = TINY_EN_REGISTRY + """
[models."whisper:fake"]
source = "fake/model"
memory_gb_cpu = 0.5
[models."whisper:broken"]
source = "fake/broken"
memory_gb_cpu = 0.5
[models."whisper:huge"]
source = "fake/huge"
memory_gb_cpu = 500
"""


@pytest.fixture
def registry(tmp_path):
    path = tmp_path / "asr_models.toml"
    path.write_text(REGISTRY)
    return load_asr_registry(path)


class FakeBackend:
    """Answers with a fixed text; ``whisper:broken`` cannot load."""

    def __init__(self, spec, device, text: str, log: list) -> None:
        self.spec, self.device, self.text, self.log = spec, device, text, log
        self.load_seconds: float | None = None

    def load(self) -> None:
        self.log.append(("load", self.spec.key))
        if self.spec.key == "whisper:broken":
            raise ModelUnavailableError("fake/broken is not on this machine")
        self.load_seconds = 0.25

    def transcribe(self, clips, options: DecodeOptions) -> list[Transcript]:
        self.log.append(("transcribe", self.spec.key, len(clips), options.language,
                         options.batch_size))
        return [Transcript(self.text, 0.5, clips[0].size / 16000, language=options.language)]

    def free(self) -> None:
        self.log.append(("free", self.spec.key))
        self.load_seconds = None


@pytest.fixture
def fake(monkeypatch):
    """Replace the backend factory; returns the call log and a settable answer."""
    state = {"log": [], "text": "the quick brown fox jumps over the lazy cat"}

    def create(spec, device="cpu"):
        state["log"].append(("create", spec.key, device))
        return FakeBackend(spec, device, state["text"], state["log"])

    monkeypatch.setattr(transcribe_module, "create_backend", create)
    return state


def audio(seconds: float = 2.0) -> np.ndarray:
    return np.zeros(int(seconds * 16000), dtype=np.float32)


def test_a_model_over_the_budget_is_an_error_result_and_the_next_model_still_runs(
        registry, fake):
    results = list(transcribe_clip(audio(), ["whisper:huge", "whisper:fake"],
                                   registry=registry, budget_gb=2.0))
    assert [r.model for r in results] == ["whisper:huge", "whisper:fake"]
    huge, ok = results
    assert huge.error == "needs 500.0 GB on cpu; 2.0 GB may be used now"
    assert huge.text == "" and huge.wer is None and huge.load_seconds is None
    assert ("create", "whisper:huge", "cpu") not in fake["log"]  # never loaded
    assert ok.error is None and ok.text == fake["text"]


def test_without_a_budget_a_share_of_the_free_memory_is_the_limit(registry, fake, monkeypatch):
    monkeypatch.setattr(transcribe_module, "available_memory_gb", lambda machine, device: 0.6)
    limit = 0.6 * transcribe_module.BUDGET_SHARE
    assert limit < 0.5 < 0.6  # the fake model fits what is free, not the budget's share
    (result,) = transcribe_clip(audio(), ["whisper:fake"], registry=registry)
    assert result.error == f"needs 0.5 GB on cpu; {limit:.1f} GB may be used now"
    assert not fake["log"]
    monkeypatch.setattr(transcribe_module, "available_memory_gb", lambda machine, device: 8.0)
    (result,) = transcribe_clip(audio(), ["whisper:fake"], registry=registry)
    assert result.error is None


def test_an_unknown_model_is_an_error_result_not_an_exception(registry, fake):
    results = list(transcribe_clip(audio(), ["whisper:nope", "whisper:fake"],
                                   registry=registry, budget_gb=2.0))
    unknown, ok = results
    assert unknown.model == "whisper:nope"
    assert unknown.error and "whisper:nope" in unknown.error
    assert "whisper:fake" in unknown.error  # the message lists the known models
    assert ok.error is None and ok.text == fake["text"]


def test_a_model_that_cannot_load_is_an_error_result_and_is_freed(registry, fake):
    broken, ok = transcribe_clip(audio(), ["whisper:broken", "whisper:fake"],
                                 registry=registry, budget_gb=2.0)
    assert broken.error == "ModelUnavailableError: fake/broken is not on this machine"
    assert ("free", "whisper:broken") in fake["log"]
    assert ok.error is None


def test_each_model_is_loaded_used_and_freed_before_the_next_one(registry, fake):
    list(transcribe_clip(audio(), ["whisper:fake", "faster-whisper:tiny.en"],
                         language="en", registry=registry, budget_gb=2.0))
    assert [entry[:2] for entry in fake["log"]] == [
        ("create", "whisper:fake"), ("load", "whisper:fake"), ("transcribe", "whisper:fake"),
        ("free", "whisper:fake"),
        ("create", "faster-whisper:tiny.en"), ("load", "faster-whisper:tiny.en"),
        ("transcribe", "faster-whisper:tiny.en"), ("free", "faster-whisper:tiny.en")]
    transcribe = [e for e in fake["log"] if e[0] == "transcribe"]
    assert all(e[2:] == (1, "en", 1) for e in transcribe)  # one clip, its language, batch 1


def test_results_come_one_at_a_time_as_each_model_finishes(registry, fake):
    results = transcribe_clip(audio(), ["whisper:fake", "faster-whisper:tiny.en"],
                              registry=registry, budget_gb=2.0)
    first = next(results)
    assert first.model == "whisper:fake"
    assert [e for e in fake["log"] if e[0] == "create"] == [("create", "whisper:fake", "cpu")]
    assert next(results).model == "faster-whisper:tiny.en"


def test_timing_and_wer_are_filled_against_a_reference(registry, fake):
    (result,) = transcribe_clip(audio(3.0), ["whisper:fake"], reference=SENTENCE,
                                registry=registry, budget_gb=2.0)
    assert result.audio_seconds == pytest.approx(3.0)
    assert result.seconds == 0.5 and result.load_seconds == 0.25
    assert result.rtfx == pytest.approx(6.0)
    assert result.wer == pytest.approx(1 / 9)  # dog -> cat


def test_no_reference_means_no_wer(registry, fake):
    for reference in (None, "", "   "):
        (result,) = transcribe_clip(audio(), ["whisper:fake"], reference=reference,
                                    registry=registry, budget_gb=2.0)
        assert result.error is None and result.wer is None


def test_a_failed_transcript_is_an_error_without_wer(registry, fake, monkeypatch):
    def failing(self, clips, options):
        return [Transcript("", 0.1, 2.0, error="RuntimeError: decoder blew up")]

    monkeypatch.setattr(FakeBackend, "transcribe", failing)
    (result,) = transcribe_clip(audio(), ["whisper:fake"], reference=SENTENCE,
                                registry=registry, budget_gb=2.0)
    assert result.error == "RuntimeError: decoder blew up" and result.wer is None


def test_a_result_without_compute_time_has_no_rtfx():
    assert ClipResult(model="m", audio_seconds=2.0).rtfx is None


# --- the real bundled model -------------------------------------------------------------------


@pytest.fixture(scope="module")
def fox():
    from core.demo_data import synthesize

    return synthesize(SENTENCE, "en")


@pytest.mark.slow
def test_the_bundled_model_fills_text_and_wer_on_speech(registry, fox):
    (result,) = transcribe_clip(fox, ["faster-whisper:tiny.en"], reference=SENTENCE,
                                language="en", registry=registry)
    assert result.error is None, result.error
    assert {"quick", "fox", "lazy"} <= set(result.text.lower().replace(".", "").split())
    assert result.wer is not None and result.wer < 0.35
    assert result.seconds > 0 and result.load_seconds and result.load_seconds > 0
    assert result.audio_seconds == pytest.approx(fox.size / 16000)
    assert result.rtfx and result.rtfx > 0


@pytest.mark.slow
def test_a_real_model_runs_after_one_over_the_budget_and_one_unknown(registry, fox):
    results = list(transcribe_clip(fox, ["whisper:huge", "whisper:nope",
                                         "faster-whisper:tiny.en"],
                                   reference=SENTENCE, registry=registry, budget_gb=4.0))
    assert [r.model for r in results] == ["whisper:huge", "whisper:nope",
                                          "faster-whisper:tiny.en"]
    assert results[0].error.startswith("needs 500.0 GB")
    assert results[1].error and "whisper:nope" in results[1].error
    assert results[2].error is None and "fox" in results[2].text.lower()
    assert results[2].wer is not None and results[2].wer < 0.35
